"""rule_precision and rule_coverage against known answers: models whose decision hangs on known
features, so the precision and coverage of any rule are known in closed form."""

from __future__ import annotations

import pytest
import torch

from explainbench import explainers, metrics
from explainbench.core.tasks import ImageTask
from tests.explainers.test_anchor import PatchRule, WordRule, bright

N = 2000
SIGMA = (0.25 / N) ** 0.5  # the standard error of a share near 1/2 from N draws


def patch_map(*patches, value=1.0, rest=0.0):
    """A pixel map that is `value` on the given 4x4 patches (grid labels) and `rest` elsewhere."""
    a = torch.full((28, 28), rest)
    for p in patches:
        r, c = divmod(p, 7)
        a[4 * r : 4 * r + 4, 4 * c : 4 * c + 4] = value
    return a


def _score(name, model, task, inputs, attributions, targets, **params):
    metric = metrics.get(name, n_samples=N, segmentation="grid", **params)
    return metric(model, task, inputs, attributions, targets, seed=0).scores


def test_the_feature_a_model_reads_is_a_precise_rule_that_covers_half():
    model, task, x = PatchRule([17]), ImageTask(), bright(1)
    a = patch_map(17)[None]
    y = torch.ones(1).long()
    assert float(_score("rule_precision", model, task, x, a, y)[0]) == 1.0
    assert abs(float(_score("rule_coverage", model, task, x, a, y)[0]) - 0.5) < 4 * SIGMA


def test_a_wrong_feature_keeps_the_prediction_only_when_the_right_one_survives():
    model, task, x = PatchRule([17]), ImageTask(), bright(1)
    a = patch_map(5)[None]  # the model reads patch 17, which stays on with probability 1/2
    precision = float(_score("rule_precision", model, task, x, a, torch.ones(1).long())[0])
    assert abs(precision - 0.5) < 4 * SIGMA


def test_top_k_of_a_dense_map_and_pixels_averaged_over_superpixels():
    model, task, x = PatchRule([8, 40]), ImageTask(), bright(1)
    # every pixel marked; patches 8 and 40 highest on average although a single pixel of patch
    # 3 is the largest value of all: superpixels rank by their mean, 3 gets (2 + 15 * .1) / 16
    a = patch_map(8, 40, value=0.5, rest=0.1)
    a[0, 12] = 2.0
    y = torch.ones(1).long()
    assert float(_score("rule_precision", model, task, x, a[None], y, k=2)[0]) == 1.0
    coverage = float(_score("rule_coverage", model, task, x, a[None], y, k=2)[0])
    assert abs(coverage - 0.25) < 4 * (0.1875 / N) ** 0.5
    # k = 1 keeps one of the two needed patches: precision = P(the other is on) = 1/2
    assert abs(float(_score("rule_precision", model, task, x, a[None], y, k=1)[0]) - 0.5) < 4 * SIGMA


def test_a_sparse_map_gives_its_own_support_and_the_empty_map_the_empty_rule():
    model, task, x = PatchRule([17]), ImageTask(), bright(2)
    a = torch.stack([patch_map(17, 30), torch.zeros(28, 28)])
    y = torch.ones(2).long()
    coverage = _score("rule_coverage", model, task, x, a, y)  # k = 10, but 2 and 0 are marked
    assert abs(float(coverage[0]) - 0.25) < 4 * (0.1875 / N) ** 0.5
    assert float(coverage[1]) == 1.0
    precision = _score("rule_precision", model, task, x, a, y)
    assert float(precision[0]) == 1.0
    assert abs(float(precision[1]) - 0.5) < 4 * SIGMA  # nothing kept: patch 17 on half the time


def test_text_rules_are_words(text_task, text_inputs, tiny_tokenizer):
    model = WordRule(3, tiny_tokenizer.mask_id)
    right = torch.zeros(3, text_inputs.shape[1])
    right[:, 3] = 1.0
    wrong = torch.zeros_like(right)
    wrong[:, 1] = 1.0
    y = torch.ones(3).long()
    metric = metrics.get("rule_precision", n_samples=N)
    assert torch.equal(metric(model, text_task, text_inputs[:3], right, y).scores, torch.ones(3))
    low = metric(model, text_task, text_inputs[:3], wrong, y).scores
    assert ((low - 0.5).abs() < 4 * SIGMA).all()
    coverage = metrics.get("rule_coverage", n_samples=N)(model, text_task, text_inputs[:3], right, y)
    assert ((coverage.scores - 0.5).abs() < 4 * SIGMA).all()


def test_an_anchors_rule_is_the_anchor_and_as_precise_as_the_search_found():
    model, task, x = PatchRule([8, 40]), ImageTask(), bright(1)
    y = torch.ones(1).long()
    maps, records = explainers.get("anchor", segmentation="grid").explain_with_records(
        model, task, x, y, seed=0)
    precision = _score("rule_precision", model, task, x, maps, y)
    coverage = _score("rule_coverage", model, task, x, maps, y)
    assert float(precision[0]) == float(records["anchor_precision"][0]) == 1.0
    assert abs(float(coverage[0]) - float(records["anchor_coverage"][0])) < 8 * (0.1875 / N) ** 0.5


def test_a_samples_scores_do_not_depend_on_its_chunk(tiny_cnn, images, image_task):
    model, task, inputs = tiny_cnn, image_task, images
    a = torch.rand(4, 28, 28, generator=torch.Generator().manual_seed(0))
    y = task.probabilities(model, inputs[:4]).argmax(1)
    metric = metrics.get("rule_precision", n_samples=64)
    together = metric(model, task, inputs[:4], a, y, seed=3).scores
    alone = metric(model, task, inputs[2:3], a[2:3], y[2:3], seed=3).scores
    assert together[2] == alone[0]


@pytest.mark.parametrize("name", ["rule_precision", "rule_coverage"])
def test_registered_with_direction_and_category(name):
    spec = metrics.spec(name)
    assert spec.category == "rules" and spec.higher_is_better
    assert spec.defaults == {"k": 10, "n_samples": 1000, "segmentation": "slic"}
