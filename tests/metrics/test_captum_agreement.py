"""Agreement with captum.metrics.infidelity and sensitivity_max on the same model, inputs,
attributions, settings and random draws (handed to Captum through its perturb_func), within 1e-5
relative. Captum's forward_func is the quantity our `output` names: the target logit (the model
itself, as in Captum's examples) or the target probability."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from explainbench import explainers
from explainbench import metrics
from tests.metrics.conftest import predicted

RTOL = 1e-5


@pytest.fixture(params=["tiny_cnn", "logreg"])
def model(request):
    return request.getfixturevalue(request.param)


def captum_perturbation(noise: torch.Tensor):
    """Captum calls perturb_func(inputs repeated sample-major); we return our draws."""
    flat = noise.flatten(0, 1)

    def perturb(inputs):
        assert inputs.shape == flat.shape
        return flat, inputs - flat

    return perturb


@pytest.mark.parametrize("output,normalize", [("logit", False), ("probability", False),
                                              ("logit", True)])
def test_infidelity_matches_captum(model, image_task, images, output, normalize):
    from captum.metrics import infidelity

    n, seed = 10, 6
    y = predicted(model, images)
    a = explainers.get("saliency").explain(model, image_task, images, y)
    ours = metrics.get("infidelity", n_perturb_samples=n, output=output, normalize=normalize)(
        model, image_task, images, a, y, seed=seed)
    noise = torch.randn((8, n, 1, 28, 28), generator=torch.Generator().manual_seed(seed)) * 0.003
    forward = model if output == "logit" else (lambda x: torch.softmax(model(x), dim=1))
    ref = infidelity(forward, captum_perturbation(noise), images, a.unsqueeze(1), target=y,
                     n_perturb_samples=n, normalize=normalize)
    np.testing.assert_allclose(ours.scores.numpy(), ref.double().numpy(), rtol=RTOL)


def test_infidelity_is_scale_invariant_and_no_map_is_the_worst(model, image_task, images):
    """Yeh et al. rescale each explanation optimally: a map times 7 scores the same; an all-zero
    map scores E[drop^2], which any map that predicts the drops at all beats. The raw score
    (normalize=False) is what ranked maps by their scale."""
    y = predicted(model, images)
    a = explainers.get("saliency").explain(model, image_task, images, y)
    infidelity = metrics.get("infidelity")
    base = infidelity(model, image_task, images, a, y, seed=2)
    scaled = infidelity(model, image_task, images, 7 * a, y, seed=2)
    zero = infidelity(model, image_task, images, torch.zeros_like(a), y, seed=2)
    torch.testing.assert_close(scaled.scores, base.scores, rtol=1e-6, atol=0)
    drops = zero.extras["output_drop"]
    torch.testing.assert_close(zero.scores, (drops ** 2).mean(1))  # beta = 0: E[drop^2]
    assert (base.scores <= zero.scores + 1e-15).all() and base.scores.mean() < zero.scores.mean()
    raw = metrics.get("infidelity", normalize=False)
    assert not torch.allclose(raw(model, image_task, images, 7 * a, y, seed=2).scores,
                              raw(model, image_task, images, a, y, seed=2).scores)


def test_infidelity_on_text_uses_word_removal(tiny_transformer, text_task, text_inputs):
    """Text: I is the indicator of the words replaced by [MASK]; the same Captum formula with a
    perturbation that returns that indicator and the masked ids (as float, cast back inside)."""
    from captum.metrics import infidelity

    n, seed, p = 6, 3, 0.3
    y = predicted(tiny_transformer, text_inputs)
    a = torch.randn(text_inputs.shape, generator=torch.Generator().manual_seed(0))
    a = a * text_task.feature_mask(text_inputs)
    ours = metrics.get("infidelity", n_perturb_samples=n, mask_prob=p)(
        tiny_transformer, text_task, text_inputs, a, y, seed=seed)
    draws = torch.rand((8, n, text_inputs.shape[1]), generator=torch.Generator().manual_seed(seed))
    removed = (draws < p) & text_task.feature_mask(text_inputs).unsqueeze(1)
    masked = text_inputs.unsqueeze(1).masked_fill(removed, text_task.tokenizer.mask_id)

    def perturb(inputs):  # Captum differences x - (x - I); ids travel as floats
        indicator = removed.flatten(0, 1).float()
        return indicator, masked.flatten(0, 1).float()

    ref = infidelity(lambda ids: tiny_transformer(ids.long()), perturb, text_inputs.float(),
                     a.float(), target=y, n_perturb_samples=n, normalize=True)  # our default
    np.testing.assert_allclose(ours.scores.numpy(), ref.double().numpy(), rtol=RTOL, atol=1e-10)
    assert removed.any(), "the test must remove some words"


def test_max_sensitivity_matches_captum_sensitivity_max(model, image_task, images):
    from captum.metrics import sensitivity_max

    n, seed, radius = 5, 8, 0.02
    saliency = explainers.get("saliency")
    y = predicted(model, images)
    a = saliency.explain(model, image_task, images, y, seed=seed)
    ours = metrics.get("max_sensitivity", n_perturb_samples=n)(
        model, image_task, images, a, y, seed=seed, explainer=saliency)
    delta = (torch.rand((8, n, 1, 28, 28), generator=torch.Generator().manual_seed(seed)) * 2 - 1) * radius
    flat = delta.flatten(0, 1)

    def perturb(inputs, perturb_radius):
        assert perturb_radius == radius and inputs.shape == flat.shape
        return inputs + flat

    def explain(inputs, target):  # a tuple in, a tuple out, like Captum's attribution methods
        if isinstance(inputs, tuple):
            return tuple(explain(x, target) for x in inputs)
        return saliency.explain(model, image_task, inputs, target, seed=seed).unsqueeze(1)

    ref = sensitivity_max(explain, images, perturb_func=perturb, perturb_radius=radius,
                          n_perturb_samples=n, target=y)
    np.testing.assert_allclose(ours.scores.numpy(), ref.double().numpy(), rtol=RTOL)


def test_max_sensitivity_needs_the_explainer_and_images(tiny_cnn, image_task, images, tiny_lstm,
                                                        text_task, text_inputs):
    from explainbench.core.errors import BenchError

    metric = metrics.get("max_sensitivity")
    y = predicted(tiny_cnn, images)
    with pytest.raises(BenchError, match="--explainer"):
        metric(tiny_cnn, image_task, images, torch.rand(8, 28, 28), y)
    with pytest.raises(BenchError, match="images only"):
        metric(tiny_lstm, text_task, text_inputs, torch.rand(text_inputs.shape),
               torch.zeros(8, dtype=torch.long), explainer=explainers.get("saliency"))
    assert metric.supports(text_task) and metric.supports(image_task) is None
