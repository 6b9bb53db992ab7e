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
 - RegionPerturbation returns the drop p(x) - p(x_k) for k = 1..R; our AOPC (Samek et al.) also
   averages the k = 0 term (zero), so with one pixel per region, AOPC == sum(quantus) / (785).
 - Quantus's `Sufficiency` is Dasgupta et al. 2022 (does the same explanation imply the same
   prediction among neighbours), not ERASER's; ERASER's comprehensiveness and sufficiency are
   checked through PixelFlipping's one-pixel-per-step curves in MoRF and LeRF order instead.
 - Quantus's ROAD floors the pixel counts (int(784 * p / 100)); we round half up. The test uses
   percentages where both give the same count. Quantus reports the MoRF accuracy per percentage;
   we also check the imputed images and probabilities it evaluates, recorded at the model.
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


# ----------------------------------------------------------------------------- AOPC, SRG


def test_morf_lerf_srg_match_region_perturbation(logreg, image_task, images):
    """One pixel per region, every region: RegionPerturbation's curve is our drop curve after
    the unperturbed point, and AOPC is its sum over the 785 points (the first is 0)."""
    import quantus

    x, a = images[:4], tie_free((4, 28, 28), seed=7)
    y = predicted(logreg, x)
    region = dict(patch_size=1, regions_evaluation=784, perturb_baseline=0.0, **COMMON)
    results = {}
    for order in ("morf", "lerf"):
        ours = metrics.get(order, steps=784, substrate="zero")(logreg, image_task, x, a, y)
        ref = np.array(run_quantus(quantus.RegionPerturbation(order=order, **region), logreg, x, y, a))
        np.testing.assert_allclose(ours.curve[:, 1:].numpy(), ref, rtol=RTOL, atol=1e-7)
        np.testing.assert_allclose(ours.scores.numpy(), ref.sum(1) / 785, rtol=RTOL)
        results[order] = ref
    srg = metrics.get("srg", steps=784, substrate="zero")(logreg, image_task, x, a, y)
    np.testing.assert_allclose(srg.scores.numpy(),
                               (results["morf"].sum(1) - results["lerf"].sum(1)) / 785, rtol=RTOL)


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


def test_road_matches_quantus_road_with_the_same_noise(model, image_task, images, monkeypatch):
    import quantus

    from explainbench.metrics.road import road_noise

    percentages = [5, 10, 25, 30, 50, 60, 75, 85, 99]  # counts where floor == round half up
    seed, x = 4, images[:4]
    a, y = tie_free((4, 28, 28), seed=17), predicted(model, x)
    ours = metrics.get("road", percentages=percentages)(model, image_task, x, a, y, seed=seed)

    counts = torch.tensor([int(784 * p / 100) for p in percentages])
    unit = road_noise(counts, 4, 2, torch.Generator().manual_seed(seed), 1.0)  # the same draws
    calls = iter([(p, b) for p in range(len(counts)) for b in range(4)])  # Quantus's order

    def randn(*shape):
        p, b = next(calls)
        assert int(np.prod(shape)) == int(counts[p])  # (k,): spsolve squeezes one channel
        return unit[b, 0, p, :counts[p]].double().numpy().reshape(shape)  # MoRF noise

    monkeypatch.setattr(np.random, "randn", randn)
    recorder = Recorder(model).eval()
    accuracy = run_quantus(quantus.ROAD(percentages=percentages, noise=0.01, **COMMON),
                           recorder, x, y, a)
    np.testing.assert_array_equal(ours.extras["morf_correct"].double().mean(0).numpy(),
                                  np.array([accuracy[p] for p in percentages]))
    # the images Quantus evaluated, one batch per percentage, and their probabilities
    seen = torch.stack(recorder.inputs[-len(percentages):], dim=1)  # (4, P, 1, 28, 28)
    from explainbench.metrics.road import _removal_order, noisy_linear_imputation

    ours_images = noisy_linear_imputation(x, _removal_order(a, True), counts,
                                          unit[:, 0].mul(0.01))
    np.testing.assert_allclose(ours_images.numpy(), seen.numpy(), rtol=0, atol=1e-6)
    probs = probability(model, seen.flatten(0, 1), y.repeat_interleave(len(percentages)))
    np.testing.assert_allclose(ours.extras["morf"].numpy(), probs.reshape(4, -1), rtol=RTOL)
