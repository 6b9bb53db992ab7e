"""The contract, for every registered explainer on every tiny model it supports: right shape,
finite, zero off the features; the same seed gives the same tensor and another seed a different
one (stochastic); a batch explained at once equals its samples explained one by one
(deterministic). New registry entries are covered automatically."""

from __future__ import annotations

import pytest
import torch

from explainbench import explainers
from tests.explainers.conftest import fast

MODALITY = {"cnn": "image", "logreg": "image", "transformer": "text", "lstm": "text"}
REFUSED = {  # (explainer, model) pairs refused on purpose; see test_deliberate_refusals
    ("deeplift", "transformer"): "no rule for the transformer",
    ("deeplift", "lstm"): "no rule for recurrent cells",
    ("grad_cam", "logreg"): "needs a convolutional layer",
    ("grad_cam_pp", "logreg"): "needs a convolutional layer",
    ("attention", "lstm"): "models with additive attention only",
    ("attention_rollout", "lstm"): "transformer models only",
}
ATTRIBUTION = [n for n in explainers.names() if explainers.get_class(n).output == "attribution"]


def pairs(stochastic: bool | None = None):
    """Every (explainer, tiny model) pair the explainer supports: its modality, minus REFUSED."""
    out = []
    for name in ATTRIBUTION:
        cls = explainers.get_class(name)
        if stochastic is not None and cls.stochastic != stochastic:
            continue
        out += [(name, m) for m, modality in MODALITY.items()
                if modality in cls.modalities and (name, m) not in REFUSED]
    return out


def _case(cases, name, model_name):
    model, task, inputs = cases[model_name]
    explainer = fast(name)
    assert explainer.supports(model, task) is None
    return explainer, model, task, inputs


@pytest.mark.parametrize("name, model_name", list(REFUSED))
def test_deliberate_refusals(cases, name, model_name):
    model, task, _ = cases[model_name]
    assert REFUSED[(name, model_name)] in explainers.get(name).supports(model, task)


@pytest.mark.parametrize("name, model_name", pairs())
def test_shape_finite_and_zero_off_features(cases, name, model_name):
    explainer, model, task, inputs = _case(cases, name, model_name)
    inputs = inputs[:4]
    out = explainer.explain(model, task, inputs, seed=0)
    assert out.shape == (4, *task.feature_shape)
    assert out.dtype == torch.float32
    assert torch.isfinite(out).all()
    assert (out[~task.feature_mask(inputs)] == 0).all()
    assert out.abs().sum() > 0, "an all-zero explanation"


@pytest.mark.parametrize("name, model_name", pairs(stochastic=True))
def test_stochastic_explainers_are_functions_of_the_seed(cases, name, model_name):
    explainer, model, task, inputs = _case(cases, name, model_name)
    inputs = inputs[:3]
    first, first_records = explainer.explain_with_records(model, task, inputs, seed=1)
    again, again_records = explainer.explain_with_records(model, task, inputs, seed=1)
    other, other_records = explainer.explain_with_records(model, task, inputs, seed=2)
    assert torch.equal(first, again)
    assert all(torch.equal(first_records[k], again_records[k]) for k in first_records)
    if (name, model_name) == ("smoothgrad", "logreg"):
        # The gradient of a linear model is the same at every noisy copy: the seed cannot matter.
        assert torch.allclose(first, other, atol=1e-6)
    elif first_records:
        # a discrete explanation (Anchor's rule) may well come out the same under two seeds;
        # the estimates recorded with it (its precision and coverage) do not
        assert not (torch.equal(first, other)
                    and all(torch.equal(first_records[k], other_records[k]) for k in first_records))
    else:
        assert not torch.equal(first, other)


@pytest.mark.parametrize("name, model_name", pairs(stochastic=False))
def test_deterministic_explainers_are_batch_invariant(cases, name, model_name):
    explainer, model, task, inputs = _case(cases, name, model_name)
    together = explainer.explain(model, task, inputs, seed=0)
    alone = torch.cat([explainer.explain(model, task, inputs[i : i + 1], seed=0)
                       for i in range(len(inputs))])
    # Perturbation attributions are differences of logits, so float noise in the logits (which
    # batch composition changes in the last bits) sets their absolute floor.
    with torch.no_grad():
        logit_scale = task.forward(model, inputs).abs().max()
    scale = float(torch.maximum(together.abs().max(), logit_scale))
    assert torch.allclose(together, alone, rtol=1e-4, atol=1e-5 * scale)


@pytest.mark.parametrize("name", ATTRIBUTION)
def test_explicit_targets_are_explained(cases, name):
    """Explaining the true label instead of the prediction changes the class-dependent methods."""
    model, task, inputs = cases["cnn"] if "image" in explainers.get_class(name).modalities \
        else cases["transformer"]
    explainer = fast(name)
    if explainer.supports(model, task):
        pytest.skip("not supported")
    predicted = task.probabilities(model, inputs[:2]).argmax(1)
    other = (predicted + 1) % task.num_classes
    a = explainer.explain(model, task, inputs[:2], predicted, seed=0)
    b = explainer.explain(model, task, inputs[:2], other, seed=0)
    class_independent = {"random", "edge", "attention", "attention_rollout"}
    assert torch.equal(a, b) == (name in class_independent)


def test_every_explainer_declares_itself():
    for name in explainers.names():
        cls = explainers.get_class(name)
        assert cls.name == name
        assert cls.modalities and cls.modalities <= {"image", "text"}
        assert cls.reference
        assert cls.output in ("attribution", "examples")
        if cls.needs_background:
            assert {"background", "background_size"} <= set(cls.defaults)


def test_unknown_parameter_is_a_one_line_error():
    from explainbench.core.errors import BenchError

    with pytest.raises(BenchError, match="valid parameters: grid, n_masks, p_keep"):
        explainers.get("rise", n_mask=10)
