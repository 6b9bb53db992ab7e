"""Agreement with Quantus 0.6 on the same model, inputs, attributions and settings (and the same
random draws where there are any), within 1e-5 relative.

Settings every Quantus call shares: normalise=False and abs=False (our metrics score the
attributions as given), softmax=True (target-class probabilities), a constant baseline 0.0 for our
`zero` substrate (Quantus's "black" is the per-image minimum, which differs on images without a
black pixel), and tie-free attributions (Quantus ranks with numpy's unstable argsort).

Where the definitions differ on purpose the test states it and checks the mapping:
 - Our curves start at the unperturbed input (fraction 0) and are integrated over [0, 1] with step
   1/steps; Quantus's PixelFlipping curve starts after the first step and its AUC uses dx = 1.
   So curve[:, 1:] == quantus curve, and score == (quantus_auc + (c0 + c1) / 2) / steps.
 - RegionPerturbation returns the drop p(x) - p(x_k) for k = 1..L; our AOPC (Samek et al.) also
   averages the k = 0 term (zero), so AOPC == sum(quantus) / (L + 1).
 - MIF and LIF are pixel flipping to full removal in MoRF and LeRF order: PixelFlipping on a and
   on -a (tie-free, so -a's descending order is a's ascending one); SRG = LIF - MIF areas.
 - Quantus's `Sufficiency` is Dasgupta et al. 2022 (does the same explanation imply the same
   prediction among neighbours), not ERASER's; ERASER's comprehensiveness and sufficiency are
   checked through PixelFlipping's one-pixel-per-step curves in MoRF and LeRF order instead.
 - Quantus's ROAD reports the MoRF accuracy per percentage (the counts floored, int(784 p / 100),
   as ours); its LeRF side is ROAD on -a. Our road_*_accuracy is a sample's mean over the
   percentages, so its mean over samples is the mean of Quantus's values; we also check the
   imputed images and probabilities it evaluates, recorded at the model.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from explainbench import metrics
from tests.metrics.conftest import predicted, tie_free

RTOL = 1e-5
COMMON = dict(normalise=False, abs=False, disable_warnings=True, display_progressbar=False)


def run_quantus(metric, model, x, y, a, **kwargs):
    return metric(model=model, x_batch=x.numpy(), y_batch=y.numpy(),
                  a_batch=a.reshape(len(x), 1, 28, 28).numpy(), channel_first=True, device="cpu",
                  softmax=True, **kwargs)


def probability(model, x, y):
    with torch.no_grad():
        return torch.softmax(model(x), dim=1)[torch.arange(len(y)), y].numpy()


@pytest.fixture(autouse=True)
def numpy_trapz(monkeypatch):
    """Quantus 0.6 integrates with np.trapz, which NumPy 2 renamed np.trapezoid (same function)."""
    if not hasattr(np, "trapz"):
        monkeypatch.setattr(np, "trapz", np.trapezoid, raising=False)


@pytest.fixture(params=["tiny_cnn", "logreg"])
def model(request):
    return request.getfixturevalue(request.param)


# ----------------------------------------------------------------------------- deletion, insertion


@pytest.mark.parametrize("steps", [16, 28])
def test_deletion_matches_pixel_flipping(model, image_task, images, steps):
    import quantus

    a, y = tie_free((8, 28, 28), seed=steps), predicted(model, images)
    ours = metrics.get("deletion", steps=steps, substrate="zero")(model, image_task, images, a, y)
    flipping = dict(features_in_step=784 // steps, perturb_baseline=0.0, **COMMON)
    curve = np.array(run_quantus(quantus.PixelFlipping(**flipping), model, images, y, a))
    auc = np.array(run_quantus(quantus.PixelFlipping(return_auc_per_sample=True, **flipping),
                               model, images, y, a))
    c = ours.curve.numpy()
    np.testing.assert_allclose(c[:, 1:], curve, rtol=RTOL)
    np.testing.assert_allclose(c[:, 0], probability(model, images, y), rtol=RTOL)
    np.testing.assert_allclose(ours.scores.numpy(), (auc + (c[:, 0] + c[:, 1]) / 2) / steps, rtol=RTOL)


def put_back(original: np.ndarray):
    """A Quantus perturb_func that inserts: it copies the original pixels at the indices."""
    def perturb(arr, indices, **kwargs):
        out, rows = arr.copy(), np.arange(len(arr))[:, None]
        out[rows, indices] = original[rows, indices]
        return out
    return perturb


def test_insertion_matches_pixel_flipping_from_the_blurred_canvas(model, image_task, images):
    """Insertion is PixelFlipping run from the RISE canvas (the blurred image) with a perturbation
    that puts the original pixels back, most relevant first."""
    import quantus

    steps = 16
    a, y = tie_free((8, 28, 28), seed=5), predicted(model, images)
    ours = metrics.get("insertion", steps=steps)(model, image_task, images, a, y)  # paper: blur
    canvas = image_task.substrate_image(images, "blur")
    flipping = quantus.PixelFlipping(features_in_step=784 // steps, **COMMON,
                                     perturb_func=put_back(images.reshape(8, -1).numpy()))
    curve = np.array(run_quantus(flipping, model, canvas, y, a))
    c = ours.curve.numpy()
    np.testing.assert_allclose(c[:, 1:], curve, rtol=RTOL)
    np.testing.assert_allclose(c[:, 0], probability(model, canvas, y), rtol=RTOL)


# ----------------------------------------------------------------------------- pixel flipping, AOPC


def test_mif_lif_srg_match_pixel_flipping_in_both_orders(logreg, image_task, images):
    import quantus

    steps = 28
    x, a = images[:4], tie_free((4, 28, 28), seed=7) - 0.5  # both signs: Quantus refuses -a < 0
    y = predicted(logreg, x)
    flipping = quantus.PixelFlipping(features_in_step=784 // steps, perturb_baseline=0.0, **COMMON)
    areas = {}
    for name, attributions in (("mif", a), ("lif", -a)):
        ours = metrics.get(name, steps=steps, substrate="zero")(logreg, image_task, x, a, y)
        ref = np.array(run_quantus(flipping, logreg, x, y, attributions))
        np.testing.assert_allclose(ours.curve[:, 1:].numpy(), ref, rtol=RTOL, atol=1e-7)
        full = np.concatenate([probability(logreg, x, y)[:, None], ref], axis=1)
        areas[name] = np.trapezoid(full, dx=1 / steps, axis=1)
        np.testing.assert_allclose(ours.scores.numpy(), areas[name], rtol=RTOL)
    srg = metrics.get("srg", steps=steps, substrate="zero")(logreg, image_task, x, a, y)
    np.testing.assert_allclose(srg.scores.numpy(), areas["lif"] - areas["mif"], rtol=RTOL, atol=1e-7)


@pytest.mark.parametrize("region,steps", [(1, 100), (4, 20), (3, 30)])
def test_aopc_matches_region_perturbation(model, image_task, images, region, steps):
    """Samek et al.'s AOPC: the L most relevant regions perturbed in turn; 3 x 3 regions leave
    partial blocks at the edge of a 28-pixel side, which Quantus pads."""
    import quantus

    x, a = images[:4], tie_free((4, 28, 28), seed=region)
    y = predicted(model, x)
    ours = metrics.get("aopc", region=region, steps=steps, substrate="zero")(model, image_task,
                                                                             x, a, y)
    ref = np.array(run_quantus(quantus.RegionPerturbation(
        patch_size=region, regions_evaluation=steps, order="morf", perturb_baseline=0.0,
        **COMMON), model, x, y, a))
    np.testing.assert_allclose(ours.curve[:, 1:].numpy(), ref, rtol=RTOL, atol=1e-7)
    np.testing.assert_allclose(ours.scores.numpy(), ref.sum(1) / (steps + 1), rtol=RTOL, atol=1e-8)


# ----------------------------------------------------------------------------- ERASER


def test_comprehensiveness_and_sufficiency_match_one_pixel_pixel_flipping(logreg, image_task, images):
    """Comprehensiveness at k: p(x) minus PixelFlipping (MoRF) after k pixels. Sufficiency at k:
    p(x) minus PixelFlipping in LeRF order (attributions reversed as 1 - a) after 784 - k pixels, when only
    the top k remain."""
    import quantus

    x, a = images[:4], tie_free((4, 28, 28), seed=11)
    y = predicted(logreg, x)
    flipping = quantus.PixelFlipping(features_in_step=1, perturb_baseline=0.0, **COMMON)
    most = np.array(run_quantus(flipping, logreg, x, y, a))
    least = np.array(run_quantus(flipping, logreg, x, y, 1.0 - a))  # reversed, positive
    p = probability(logreg, x, y)[:, None]
    counts = [8, 39, 78, 157, 392]  # 1, 5, 10, 20, 50 % of 784, rounded half up
    comp = metrics.get("comprehensiveness", substrate="zero")(logreg, image_task, x, a, y)
    suff = metrics.get("sufficiency", substrate="zero")(logreg, image_task, x, a, y)
    expected_comp = p - most[:, [k - 1 for k in counts]]
    expected_suff = p - least[:, [784 - k - 1 for k in counts]]
    np.testing.assert_allclose(comp.extras["drop"].numpy(), expected_comp, rtol=RTOL, atol=1e-7)
    np.testing.assert_allclose(suff.extras["drop"].numpy(), expected_suff, rtol=RTOL, atol=1e-7)
    np.testing.assert_allclose(comp.scores.numpy(), expected_comp.mean(1), rtol=RTOL, atol=1e-8)
    np.testing.assert_allclose(suff.scores.numpy(), expected_suff.mean(1), rtol=RTOL, atol=1e-8)


# ----------------------------------------------------------------------------- Bhatt et al.


def quantus_choice_from(subsets: torch.Tensor):
    """A stand-in for np.random.choice that hands Quantus our subsets, in its call order (for
    each run, for each sample of the batch)."""
    calls = iter([np.flatnonzero(subsets[r, b].numpy())
                  for r in range(subsets.shape[0]) for b in range(subsets.shape[1])])

    def choice(n, size, replace=True, **kwargs):
        picked = next(calls)
        assert len(picked) == size and not replace
        return picked

    return choice


def quantus_faithfulness_correlation(monkeypatch, model, task, x, y, a, *, runs: int, seed: int,
                                     subset_size: int) -> np.ndarray:
    """Quantus's FaithfulnessCorrelation (baseline 0) per sample, on the subsets our metric draws
    with `seed`: handed to Quantus through np.random.choice, in its call order."""
    import quantus

    from explainbench.metrics.faithfulness import random_subsets

    subsets = random_subsets(task.feature_mask(x).flatten(1), torch.full((len(x),), subset_size),
                             runs, torch.Generator().manual_seed(seed))
    monkeypatch.setattr(np.random, "choice", quantus_choice_from(subsets))
    metric = quantus.FaithfulnessCorrelation(nr_runs=runs, subset_size=subset_size,
                                             perturb_baseline=0.0, return_aggregate=False, **COMMON)
    return np.array(run_quantus(metric, model, x, y, a))


def test_faithfulness_correlation_matches_quantus_with_the_same_subsets(model, image_task, images,
                                                                        monkeypatch):
    runs, seed = 30, 2
    a, y = tie_free((8, 28, 28), seed=13) - 0.5, predicted(model, images)
    ours = metrics.get("faithfulness_correlation", nr_runs=runs, subset_fraction=0.25,
                       substrate="zero")(model, image_task, images, a, y, seed=seed)
    ref = quantus_faithfulness_correlation(monkeypatch, model, image_task, images, y, a, runs=runs,
                                           seed=seed, subset_size=196)
    # correlations near 0 make a pure relative tolerance meaningless: 1e-5 relative or 1e-7
    np.testing.assert_allclose(ours.scores.numpy(), ref, rtol=RTOL, atol=1e-7)


# ----------------------------------------------------------------------------- ROAD


class Recorder(nn.Module):
    """Records every batch a reference implementation evaluates."""

    def __init__(self, model):
        super().__init__()
        self.model, self.inputs = model, []

    def forward(self, x):
        self.inputs.append(x.detach().clone())
        return self.model(x)


@pytest.mark.parametrize("order", [0, 1], ids=["morf", "lerf"])
def test_road_matches_quantus_road_with_the_same_noise(model, image_task, images, monkeypatch,
                                                       order):
    """MoRF as Quantus's ROAD on a, LeRF as Quantus's ROAD on -a, at every default percentage,
    with the same noise draws; the scalar outputs are means of the same curves."""
    import quantus

    from explainbench.metrics.road import (QUANTUS_PERCENTAGES, _removal_order,
                                           noisy_linear_imputation, road_noise)

    percentages = list(QUANTUS_PERCENTAGES)
    seed, x = 4, images[:4]
    a, y = tie_free((4, 28, 28), seed=17) - 0.5, predicted(model, x)  # both signs, for -a
    ours = metrics.get("road")(model, image_task, x, a, y, seed=seed)
    side = ("morf", "lerf")[order]

    counts = torch.tensor([int(784 * p / 100) for p in percentages])
    unit = road_noise(counts, 4, 2, torch.Generator().manual_seed(seed), 1.0)  # the same draws
    calls = iter([(p, b) for p in range(len(counts)) for b in range(4)])  # Quantus's order

    def randn(*shape):
        p, b = next(calls)
        assert int(np.prod(shape)) == int(counts[p])  # (k,): spsolve squeezes one channel
        return unit[b, order, p, :counts[p]].double().numpy().reshape(shape)

    monkeypatch.setattr(np.random, "randn", randn)
    recorder = Recorder(model).eval()
    accuracy = run_quantus(quantus.ROAD(percentages=percentages, noise=0.01, **COMMON),
                           recorder, x, y, a if order == 0 else -a)
    per_percentage = np.array([accuracy[p] for p in percentages])
    np.testing.assert_array_equal(ours.extras[f"{side}_correct"].double().mean(0).numpy(),
                                  per_percentage)
    # the scalar: each sample's mean over the percentages; over the samples, Quantus's mean
    np.testing.assert_allclose(ours.named[f"road_{side}_accuracy"].mean().item(),
                               per_percentage.mean(), rtol=1e-12)
    # the images Quantus evaluated, one batch per percentage, and their probabilities
    seen = torch.stack(recorder.inputs[-len(percentages):], dim=1)  # (4, P, 1, 28, 28)
    ties = torch.zeros(4, 784)  # tie-free maps: the tie-break never decides
    ours_images = noisy_linear_imputation(x, _removal_order(a, order == 0, ties), counts,
                                          unit[:, order].mul(0.01))
    np.testing.assert_allclose(ours_images.numpy(), seen.numpy(), rtol=0, atol=1e-6)
    probs = probability(model, seen.flatten(0, 1), y.repeat_interleave(len(percentages)))
    np.testing.assert_allclose(ours.named_curves[f"road_{side}"].numpy(), probs.reshape(4, -1),
                               rtol=RTOL)
    np.testing.assert_allclose(ours.named[f"road_{side}"].numpy(), probs.reshape(4, -1).mean(1),
                               rtol=RTOL)
    np.testing.assert_allclose(ours.named["road_gap"].numpy(),
                               (ours.named["road_lerf"] - ours.named["road_morf"]).numpy())
