"""anchor: anchor-exp's beam search driven by explainbench's sampler. Known answers: models whose
decision hangs on known features, so the anchor, its precision and its coverage are known."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from explainbench import explainers
from explainbench.core.tasks import ImageTask

PATCH = 4  # the grid segmentation: 4x4 patches, label = row * 7 + column


def patch_mean(x, label):
    r, c = divmod(label, 7)
    return x[:, 0, PATCH * r : PATCH * (r + 1), PATCH * c : PATCH * (c + 1)].mean(dim=(1, 2))


class PatchRule(nn.Module):
    """Class 1 while every patch in `needed` is lit (mean > 0.5), else class 0."""

    def __init__(self, needed):
        super().__init__()
        self.needed = list(needed)
        self.dummy = nn.Parameter(torch.zeros(1))  # a device for the explainers

    def forward(self, x):
        lit = torch.ones(len(x))
        for p in self.needed:
            lit = lit * (patch_mean(x, p) > 0.5).float()
        return torch.stack([torch.full_like(lit, 0.5), lit], dim=1)


def bright(n=2):
    return torch.ones(n, 1, 28, 28)


def _anchor(**params):
    return explainers.get("anchor", segmentation="grid", **params)


def test_a_model_that_reads_one_patch_is_anchored_on_that_patch():
    model, task = PatchRule([17]), ImageTask()
    maps, records = _anchor().explain_with_records(model, task, bright(), torch.ones(2).long(),
                                                   seed=0, sample_ids=[3, 4])
    assert records["anchor_features"].tolist() == [[17], [17]]
    assert torch.equal(records["anchor_precision"], torch.ones(2))
    # coverage: the share of 10,000 perturbations with patch 17 on, 1/2 within 4 sigma
    assert (records["anchor_coverage"] - 0.5).abs().max() < 4 * (0.25 / 10_000) ** 0.5
    expected = torch.zeros(28, 28)
    expected[8:12, 12:16] = 1.0  # patch 17: row 2, column 3; the only feature, weight 1
    assert torch.equal(maps, expected.expand(2, 28, 28))


def test_two_needed_patches_make_an_anchor_of_two_weighted_by_order():
    model, task = PatchRule([8, 40]), ImageTask()
    maps, records = _anchor().explain_with_records(model, task, bright(1), torch.ones(1).long(),
                                                   seed=0, sample_ids=[0])
    first, second = records["anchor_features"][0].tolist()
    assert {first, second} == {8, 40}
    assert float(records["anchor_precision"][0]) == 1.0
    assert abs(float(records["anchor_coverage"][0]) - 0.25) < 4 * (0.1875 / 10_000) ** 0.5
    # the feature added first weighs 1, the second 1/2
    assert float(patch_mean(maps[:, None], first)[0]) == 1.0
    assert float(patch_mean(maps[:, None], second)[0]) == 0.5
    assert int((maps > 0).sum()) == 2 * PATCH * PATCH


def test_a_prediction_no_feature_moves_has_the_empty_anchor():
    model, task = PatchRule([17]), ImageTask()
    maps, records = _anchor(max_anchor_size=2).explain_with_records(
        model, task, bright(1), torch.zeros(1).long(), seed=0)
    # class 0 is what the model says while patch 17 is dark; explained class 1 would need it
    # lit, class 0 needs it dark, which no anchor of "kept" features can say: the search falls
    # back to its most precise candidate, below the threshold
    assert float(records["anchor_precision"][0]) < 0.95
    constant = PatchRule([])  # class 1 whatever the input
    maps, records = _anchor().explain_with_records(constant, task, bright(1), torch.ones(1).long(),
                                                   seed=0)
    assert records["anchor_features"].tolist() == [[-1]]
    assert float(records["anchor_precision"][0]) == 1.0 and float(records["anchor_coverage"][0]) == 1.0
    assert int(records["anchor_size"][0]) == 0 and not maps.any()


class WordRule(nn.Module):
    """Positive while the token at `position` is not [MASK]."""

    def __init__(self, position, mask_id):
        super().__init__()
        self.position, self.mask_id = position, mask_id
        self.dummy = nn.Parameter(torch.zeros(1))

    def forward(self, ids):
        kept = (ids[:, self.position] != self.mask_id).float()
        return torch.stack([torch.full_like(kept, 0.5), kept], dim=1)


def test_text_anchors_are_the_words_the_model_reads(text_task, text_inputs, tiny_tokenizer):
    model = WordRule(3, tiny_tokenizer.mask_id)  # position 3: the third word ([CLS] is 0)
    maps, records = explainers.get("anchor").explain_with_records(
        model, text_task, text_inputs[:3], torch.ones(3).long(), seed=0, sample_ids=[0, 1, 2])
    assert records["anchor_features"].tolist() == [[2], [2], [2]]  # word number 2, from 0
    assert torch.equal(records["anchor_precision"], torch.ones(3))
    expected = torch.zeros_like(maps)
    expected[:, 3] = 1.0
    assert torch.equal(maps, expected)


def test_a_sample_gets_the_same_anchor_whatever_its_batch(cases):
    model, task, inputs = cases["cnn"]
    explainer = explainers.get("anchor", coverage_samples=500, max_anchor_size=2, tau=0.5)
    both, rec_both = explainer.explain_with_records(model, task, inputs[:2], seed=5,
                                                    sample_ids=[10, 11])
    alone, rec_alone = explainer.explain_with_records(model, task, inputs[1:2], seed=5,
                                                      sample_ids=[11])
    assert torch.equal(both[1:], alone)
    size = int(rec_alone["anchor_size"][0])
    assert torch.equal(rec_both["anchor_features"][1, :size], rec_alone["anchor_features"][0, :size])
    assert torch.equal(rec_both["anchor_precision"][1:], rec_alone["anchor_precision"])


def test_same_seed_same_anchor_and_the_search_is_counted_in_forward_passes(cases):
    model, task, inputs = cases["transformer"]
    explainer = explainers.get("anchor", coverage_samples=200, max_anchor_size=2)
    rows = []
    handle = model.bert.classifier.register_forward_hook(lambda m, i, o: rows.append(len(i[0])))
    try:
        first = explainer.explain_with_records(model, task, inputs[:2], seed=1, sample_ids=[0, 1])
    finally:
        handle.remove()
    again = explainer.explain_with_records(model, task, inputs[:2], seed=1, sample_ids=[0, 1])
    assert torch.equal(first[0], again[0])
    assert all(torch.equal(first[1][k], again[1][k]) for k in first[1])
    # at least the coverage-free steps of the search went through the model, in batches
    assert sum(rows) >= 2 and max(rows) <= explainer.batch_size


@pytest.mark.parametrize("name", ["threshold", "delta", "tau"])
def test_probabilities_outside_0_1_are_refused(name):
    from explainbench.core.params import ParameterError

    with pytest.raises(ParameterError, match=name):
        explainers.get("anchor", **{name: 1.5})
