"""What the faithfulness metrics must do, checked without a reference library: analytic cases on
the linear model, identities between metrics, text (per-sample counts, [CLS]/[PAD] untouched),
determinism and input errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from explainbench import metrics
from explainbench.core.errors import BenchError
from tests.metrics.conftest import predicted, tie_free


@pytest.fixture(scope="module")
def logreg_real(ci_model, mnist_test_images):
    """The ci-profile mnist_logreg, 32 real test images, predicted classes and the exact
    attributions of its logits, input x gradient = W[c] * x (the Shapley values of the logit
    against a black image), and the gradient W[c] itself."""
    model = ci_model("mnist_logreg")
    x, _ = mnist_test_images(0, 32)
    y = predicted(model, x)
    w = model.weight[y].detach().view(-1, 28, 28)
    return model, x, y, w * x[:, 0], w


def test_exact_logreg_attributions_beat_random_orderings_on_every_sample(logreg_real, image_task):
    """Deletion with the true ordering is below deletion with a random ordering, and insertion
    above, for every sample (zero substrate: where W[c] * x is exactly each pixel's contribution;
    insertion also from the paper's blurred canvas)."""
    model, x, y, exact, _ = logreg_real
    for name, substrate, better in (("deletion", "zero", torch.lt), ("insertion", "zero", torch.gt),
                                    ("insertion", "blur", torch.gt)):
        metric = metrics.get(name, steps=20, substrate=substrate)
        true = metric(model, image_task, x, exact, y).scores
        for seed in range(3):
            shuffled = metric(model, image_task, x, tie_free((32, 28, 28), seed), y).scores
            assert better(true, shuffled).all(), (name, substrate, seed)


def test_exact_attributions_correlate_and_linear_infidelity_vanishes(logreg_real, image_task):
    model, x, y, exact, gradient = logreg_real
    corr = metrics.get("faithfulness_correlation", nr_runs=50, substrate="zero")
    assert corr(model, image_task, x, exact, y, seed=0).scores.min() > 0.8
    assert corr(model, image_task, x, tie_free((32, 28, 28), 0), y, seed=0).scores.abs().mean() < 0.3
    # the logit is linear: f(x) - f(x - I) = W[c] . I exactly, so the gradient has no infidelity
    infidelity = metrics.get("infidelity")
    assert infidelity(model, image_task, x, gradient, y).scores.max() < 1e-9
    assert infidelity(model, image_task, x, exact, y).scores.min() > 1e-8


def test_srg_is_lif_minus_mif_with_the_same_noise(tiny_cnn, image_task, images):
    a, y = tie_free((8, 28, 28), 0), predicted(tiny_cnn, images)
    run = {name: metrics.get(name, steps=10)(tiny_cnn, image_task, images, a, y, seed=5)
           for name in ("mif", "lif", "srg")}  # default substrate: noise, drawn from the seed
    torch.testing.assert_close(run["srg"].scores, run["lif"].scores - run["mif"].scores)
    torch.testing.assert_close(run["srg"].extras["mif"], run["mif"].curve)
    # removing everything leaves the same noise image in both orders
    torch.testing.assert_close(run["mif"].curve[:, -1], run["lif"].curve[:, -1])


def test_lif_of_reversed_attributions_is_mif(tiny_cnn, image_task, images):
    a, y = tie_free((8, 28, 28), 1), predicted(tiny_cnn, images)
    most = metrics.get("mif", steps=8, substrate="zero")(tiny_cnn, image_task, images, a, y)
    least = metrics.get("lif", steps=8, substrate="zero")(tiny_cnn, image_task, images, -a, y)
    torch.testing.assert_close(most.scores, least.scores)


def test_metrics_of_one_explanation_share_their_removal_curves(tiny_cnn, image_task, images):
    """deletion with the zero substrate is MIF with it; SRG needs MIF and LIF: with one `shared`
    dict the three curves are evaluated once each, and the scores are those computed alone."""
    a, y = tie_free((8, 28, 28), 2), predicted(tiny_cnn, images)
    rows = []
    hook = tiny_cnn.register_forward_hook(lambda m, i, o: rows.append(len(i[0])))
    try:
        alone = {name: metrics.get(name, steps=7, substrate="zero")(
            tiny_cnn, image_task, images, a, y, seed=1) for name in ("deletion", "mif", "lif", "srg")}
        rows_alone, rows[:] = sum(rows), []
        shared: dict = {}
        together = {name: metrics.get(name, steps=7, substrate="zero")(
            tiny_cnn, image_task, images, a, y, seed=1, shared=shared)
            for name in ("deletion", "mif", "lif", "srg")}
        rows_together = sum(rows)
    finally:
        hook.remove()
    for name in alone:
        torch.testing.assert_close(together[name].scores, alone[name].scores)
    torch.testing.assert_close(alone["deletion"].scores, alone["mif"].scores)
    assert rows_alone == 5 * 8 * 8 and rows_together == 2 * 8 * 8  # 8 samples x 8 points


@pytest.mark.parametrize("name", ["deletion", "insertion", "mif", "lif", "srg", "comprehensiveness",
                                  "sufficiency", "faithfulness_correlation", "infidelity"])
def test_text_scores_ignore_attributions_on_cls_and_padding(name, tiny_lstm, text_task, text_inputs):
    """The metrics only ever rank and remove features: attributions put on [CLS]/[PAD] positions
    change nothing. Each review's fractions are of its own words."""
    y = predicted(tiny_lstm, text_inputs)
    a = torch.randn(text_inputs.shape, generator=torch.Generator().manual_seed(0))
    a = a * text_task.feature_mask(text_inputs)
    loud = a + 100.0 * ~text_task.feature_mask(text_inputs)
    metric = metrics.get(name)
    first = metric(tiny_lstm, text_task, text_inputs, a, y, seed=1)
    second = metric(tiny_lstm, text_task, text_inputs, loud, y, seed=1)
    if name == "infidelity":  # the dot product only runs over removed words
        torch.testing.assert_close(first.scores, second.scores)
    else:
        assert torch.equal(first.scores, second.scores)


def test_eraser_bins_are_per_sample_and_read_the_right_curve_points(tiny_lstm, text_task, text_inputs):
    """Comprehensiveness at k = p(x) - deletion curve at k% of the review's words: recomputed
    here by removing each review's own top round(k% * n) words through the task."""
    y = predicted(tiny_lstm, text_inputs)
    a = torch.randn(text_inputs.shape, generator=torch.Generator().manual_seed(2))
    comp = metrics.get("comprehensiveness", bins=(10, 50), substrate="mask")(
        tiny_lstm, text_task, text_inputs, a, y)
    suff = metrics.get("sufficiency", bins=(10, 50), substrate="mask")(
        tiny_lstm, text_task, text_inputs, a, y)
    valid = text_task.feature_mask(text_inputs)
    with torch.no_grad():
        p = torch.softmax(tiny_lstm(text_inputs), 1)[torch.arange(8), y]
        for j, k in enumerate((10, 50)):
            for b in range(8):
                words = valid[b].nonzero().flatten()
                ranked = words[torch.argsort(a[b, words], descending=True, stable=True)]
                top = ranked[: int(np.floor(k / 100 * len(words) + 0.5))]
                without, only = valid[b].clone(), torch.zeros_like(valid[b])
                without[top], only[top] = False, True
                ids = text_task.remove(text_inputs[b:b + 1], torch.stack([without, only]).view(2, -1)[:1], "mask")
                ids_only = text_task.remove(text_inputs[b:b + 1], only.view(1, -1), "mask")
                q = torch.softmax(tiny_lstm(torch.cat([ids, ids_only])), 1)[:, y[b]]
                torch.testing.assert_close(comp.extras["drop"][b, j], p[b] - q[0])
                torch.testing.assert_close(suff.extras["drop"][b, j], p[b] - q[1])


def test_faithfulness_correlation_is_seeded_and_batch_size_free(tiny_cnn, image_task, images):
    a, y = tie_free((8, 28, 28), 3) - 0.5, predicted(tiny_cnn, images)
    metric = metrics.get("faithfulness_correlation", nr_runs=20)
    first = metric(tiny_cnn, image_task, images, a, y, seed=0, batch_size=13)
    again = metric(tiny_cnn, image_task, images, a, y, seed=0, batch_size=256)
    other = metric(tiny_cnn, image_task, images, a, y, seed=1)
    torch.testing.assert_close(first.scores, again.scores, rtol=1e-6, atol=1e-9)
    assert not torch.allclose(first.scores, other.scores)
    subset_sizes = (first.extras["attribution_sums"] != 0).any()  # subsets were drawn
    assert subset_sizes


def test_bad_parameters_and_modalities_are_clear_errors(tiny_lstm, text_task, text_inputs):
    for name, params, allowed in (
            ("deletion", {"steps": 0}, r"an integer in \[1, 1000\]"),
            ("faithfulness_correlation", {"subset_fraction": 0}, r"a number in \(0, 1\]"),
            ("comprehensiveness", {"bins": (0, 5)}, r"a non-empty list, each a number in \(0, 100\]"),
            ("road", {"percentages": (50, 100)},
             r"a non-empty list, each a number in \(0, 100\) or null")):
        # refused when the metric is built (suites, bench validate), before anything runs
        with pytest.raises(BenchError, match=f"metric '{name}': parameter .* is not allowed; "
                                             f".* must be {allowed}"):
            metrics.get(name, **params)
    with pytest.raises(BenchError, match="images only.*token ids"):
        metrics.get("road")(tiny_lstm, text_task, text_inputs, torch.rand(text_inputs.shape),
                            torch.zeros(8, dtype=torch.long))
    with pytest.raises(BenchError, match="unknown parameter 'step'.*valid parameters: steps, substrate"):
        metrics.get("deletion", step=3)
    assert metrics.spec("road").modalities == frozenset({"image"})
    assert metrics.get("road").supports(text_task) is not None


@pytest.mark.parametrize("backend", ["torch", "kernel"])
def test_imputation_solvers_on_both_sides_of_the_split_match_scipy(backend):
    """The direct (up to DIRECT_UP_TO removed) and capacitance (more) branches against Quantus's
    scipy sparse solve, in float64, with the direct side in torch and in road_cpu's kernel."""
    from quantus.functions.perturb_func import noisy_linear_imputation as quantus_imputation

    from explainbench.metrics.road import DIRECT_UP_TO, noisy_linear_imputation

    g = torch.Generator().manual_seed(0)
    x = torch.rand(2, 1, 28, 28, generator=g, dtype=torch.float64)
    order = torch.argsort(torch.rand(2, 784, generator=g), dim=1)
    split = int(DIRECT_UP_TO * 784)
    counts = [0, 1, split, split + 1, 783]  # nothing, one pixel, either side of the split, all but one
    ours = noisy_linear_imputation(x, order, counts, dtype=torch.float64, backend=backend)
    for b in range(2):
        for p, k in enumerate(counts):
            ref = x[b].numpy() if k == 0 else quantus_imputation(x[b].numpy(), order[b, :k].numpy(), noise=0.0)
            np.testing.assert_allclose(ours[b, p].numpy(), ref, rtol=0, atol=1e-10)


@pytest.mark.parametrize("backend", ["torch", "kernel"])
def test_imputation_levels_in_any_order_give_the_same_images(backend):
    """Levels are binned by count inside the solver: a shuffled list of counts gives the same
    images, shuffled the same way."""
    from explainbench.metrics.road import noisy_linear_imputation

    g = torch.Generator().manual_seed(1)
    x = torch.rand(3, 1, 12, 12, generator=g)
    order = torch.argsort(torch.rand(3, 144, generator=g), dim=1)
    counts = torch.tensor([3, 40, 90, 120, 143, 10])
    perm = torch.tensor([4, 0, 5, 2, 1, 3])
    noise = torch.randn((3, 6, 143), generator=g) * 0.01
    ours = noisy_linear_imputation(x, order, counts, noise, backend=backend)
    shuffled = noisy_linear_imputation(x, order, counts[perm], noise[:, perm], backend=backend)
    torch.testing.assert_close(shuffled, ours[:, perm], rtol=0, atol=1e-6)


@pytest.mark.parametrize("shape,first", [((28, 28), "left half"), ((28, 28), "separator"),
                                         ((10, 9), "right half"), ((6, 2), "random")])
def test_imputation_kernel_parts_match_scipy(shape, first):
    """The direct kernel solves each half of the image and the middle column separately: orders
    that remove one part first (the other parts empty at the early levels, or the halves empty
    while the separator fills) and images too narrow to split (width 2: one part) against
    Quantus's scipy solve, float64."""
    from quantus.functions.perturb_func import noisy_linear_imputation as quantus_imputation

    from explainbench.metrics.road import noisy_linear_imputation
    from explainbench.metrics.road_cpu import separator_parts

    height, width = shape
    F = height * width
    g = torch.Generator().manual_seed(4)
    x = torch.rand(1, 1, height, width, generator=g, dtype=torch.float64)
    part = torch.from_numpy(separator_parts(height, width))
    key = torch.rand(F, generator=g)
    if first != "random":  # that part's pixels first, each part in random order
        key = key + (part != {"left half": 0, "right half": 1, "separator": 2}[first])
    order = torch.argsort(key).view(1, F)
    counts = sorted({1, 2, height // 2, height, F // 4, F // 2, int(0.75 * F)} - {0})
    ours = noisy_linear_imputation(x, order, counts, dtype=torch.float64, backend="kernel")
    for p, k in enumerate(counts):
        ref = quantus_imputation(x[0].numpy(), order[0, :k].numpy(), noise=0.0)
        np.testing.assert_allclose(ours[0, p].numpy(), ref, rtol=0, atol=1e-10)


def test_separator_parts_cut_the_grid_in_two():
    """No pixel left of the separator column has an 8-neighbour right of it, so the two halves
    couple only through the separator; narrow images are one part."""
    from explainbench.metrics.road import _grid
    from explainbench.metrics.road_cpu import separator_parts

    for height, width in ((28, 28), (9, 14), (5, 3), (4, 7)):
        part = torch.from_numpy(separator_parts(height, width))
        neighbours, weights, _, _ = _grid(height, width)
        linked = part[neighbours] + part.view(-1, 1)  # 0 + 1: a left pixel next to a right one
        assert not ((linked == 1) & (weights > 0)).any()
        assert (part == 2).sum() == height and (part == 0).any() and (part == 1).any()
    assert (separator_parts(6, 2) == 0).all()


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_imputation_kernel_matches_the_torch_solves(dtype):
    """road_cpu's compiled loops against the batched torch solves on a non-square image, with
    noise, repeated and unsorted counts and more levels than solve groups on both sides of the
    split (direct up to 94 of 126 pixels; 100, 110, 117 and 125 through the known pixels): the
    same LAPACK factorisations, so the images agree to the last bits of the triangular solves.
    Split over three threads the kernels give the very same images."""
    from explainbench.metrics.road import noisy_linear_imputation

    g = torch.Generator().manual_seed(3)
    x = torch.rand(5, 1, 9, 14, generator=g, dtype=dtype)
    order = torch.argsort(torch.rand(5, 126, generator=g), dim=1)
    counts = torch.tensor([40, 0, 110, 7, 94, 40, 1, 117, 63, 20, 125, 100, 88])
    noise = torch.randn((5, 13, 125), generator=g, dtype=dtype) * 0.01
    torch_images = noisy_linear_imputation(x, order, counts, noise, dtype=dtype, backend="torch")
    kernel_images = noisy_linear_imputation(x, order, counts, noise, dtype=dtype, backend="kernel")
    tolerance = 1e-6 if dtype == torch.float32 else 1e-12
    torch.testing.assert_close(kernel_images, torch_images, rtol=0, atol=tolerance)
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(3)  # the kernels split the batch over torch's thread count
        split = noisy_linear_imputation(x, order, counts, noise, dtype=dtype, backend="kernel")
    finally:
        torch.set_num_threads(threads)
    assert torch.equal(split, kernel_images)
    with pytest.raises(ValueError, match="unknown ROAD backend 'numba'; choose auto, torch or kernel"):
        noisy_linear_imputation(x, order, counts, backend="numba")


def test_imputation_kernel_reports_a_matrix_that_is_not_positive_definite():
    """A system that is not positive definite comes back as the 1-based position of the failing
    pixel in the elimination order (left half, right half, separator), and nothing is written
    for that sample. On a 4 x 4 image the first 5 pixels in raster order are the left half's
    0, 1, 4, the separator's 2 and the right half's 3; zeroing degrees breaks one part."""
    from explainbench.metrics.road import _grid
    from explainbench.metrics.road_cpu import separator_parts, solve_direct

    neighbours, weights, degree, _ = _grid(4, 4)
    x = np.random.default_rng(0).random((1, 16))
    order = np.arange(16)[None]
    for zeroed, expected in (((0, 1, 4), 1), ((3,), 4), ((2,), 5)):
        broken = degree.numpy().copy()
        broken[list(zeroed)] = 0.0
        out = np.full((1, 1, 16), -1.0)
        info = solve_direct(x, order, order.copy(), neighbours.numpy(), weights.numpy(), broken,
                            separator_parts(4, 4), [5], [0], None, out)
        assert info == expected
        assert (out == -1.0).all()


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_in_place_cholesky_matches_torch_in_the_lower_triangle(dtype):
    from explainbench.metrics.road import _cholesky_in_place

    g = torch.Generator().manual_seed(2)
    m = torch.randn((4, 50, 50), generator=g, dtype=dtype)
    spd = m @ m.mT + 50 * torch.eye(50, dtype=dtype)
    expected = torch.linalg.cholesky(spd)
    factor = _cholesky_in_place(spd.clone())
    torch.testing.assert_close(factor.tril(), expected)
    with pytest.raises(torch.linalg.LinAlgError):
        _cholesky_in_place(-spd.clone())
