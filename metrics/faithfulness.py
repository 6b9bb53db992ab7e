"""Faithfulness: does removing what an explanation calls important change the model's output?

Each metric is a pure function over batched tensors on the model's device that returns per-sample
scores (and the curve where there is one), and takes features away only through `Task.remove`, so
it is written once for images and text. Features are the positions of `task.feature_mask`; counts
and fractions are per sample (reviews have different lengths); [CLS] and [PAD] are never touched.
`substrate=None` means the paper's substrate for the task's modality (`removal.PAPER_SUBSTRATES`).
"""

from __future__ import annotations

import torch
from torch import Tensor

from explainbench.core.errors import BenchError
from explainbench.metrics.base import MetricResult
from explainbench.metrics.ordering import ranks_of, tie_broken_order, tie_noise
from explainbench.metrics.removal import (batched_output, check_fraction, counts_for_fractions, evaluate_removals,
                             feature_ranks, removal_curve, resolve_substrate)

ERASER_BINS = (1, 5, 10, 20, 50)  # percent of the features, DeYoung et al. 2020


def _fractions(steps: int, device) -> Tensor:
    if int(steps) < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    return torch.linspace(0.0, 1.0, int(steps) + 1, dtype=torch.float64, device=device)


def _curve(model, task, inputs, attributions, targets, *, steps, substrate, descending, insert,
           batch_size, generator, seed, fill=None) -> Tensor:
    """Probability (B, steps + 1) at removed (inserted) fractions 0, 1/steps, ..., 1."""
    ranks, n = feature_ranks(task, inputs, attributions, descending=descending, seed=seed)
    counts = counts_for_fractions(n, _fractions(steps, inputs.device))
    return removal_curve(model, task, inputs, ranks, counts, targets, substrate=substrate,
                         insert=insert, batch_size=batch_size, generator=generator, fill=fill)


def _trapezoid(curve: Tensor, steps: int) -> Tensor:
    return torch.trapezoid(curve.double(), dx=1.0 / int(steps), dim=1)


# ----------------------------------------------------------------------------- RISE


def deletion(model, task, inputs: Tensor, attributions: Tensor, targets: Tensor, *,
             steps: int = 20, substrate: str | None = None, batch_size: int = 256,
             generator: torch.Generator | None = None, shared: dict | None = None,
             seed: int = 0) -> MetricResult:
    """Deletion (Petsiuk et al. 2018, RISE, arXiv:1806.07421): features are removed in order of
    decreasing attribution in `steps` equal increments; the curve is the target-class probability
    at removed fractions 0, 1/steps, ..., 1 and the score its trapezoid area on [0, 1].
    Lower is better. Paper substrate: black pixels (`zero`); text `mask`."""
    substrate = resolve_substrate(task, substrate, "deletion")
    curve = _shared_curve(shared, model, task, inputs, attributions, targets, steps=steps,
                          substrate=substrate, descending=True, batch_size=batch_size,
                          generator=generator, seed=seed)
    return MetricResult(_trapezoid(curve, steps), curve)


def insertion(model, task, inputs: Tensor, attributions: Tensor, targets: Tensor, *,
              steps: int = 20, substrate: str | None = None, batch_size: int = 256,
              generator: torch.Generator | None = None, seed: int = 0) -> MetricResult:
    """Insertion (Petsiuk et al. 2018): start from the substrate alone and put features back in
    order of decreasing attribution; the score is the area under the probability curve at inserted
    fractions 0, 1/steps, ..., 1. Higher is better. Paper substrate: a blurred copy of the image
    (`blur`); text `mask` (an all-[MASK] review)."""
    substrate = resolve_substrate(task, substrate, "insertion")
    curve = _curve(model, task, inputs, attributions, targets, steps=steps, substrate=substrate,
                   descending=True, insert=True, batch_size=batch_size, generator=generator,
                   seed=seed)
    return MetricResult(_trapezoid(curve, steps), curve)


# ----------------------------------------------------------------------------- pixel flipping


def mif(model, task, inputs: Tensor, attributions: Tensor, targets: Tensor, *,
        steps: int = 20, substrate: str | None = None, batch_size: int = 256,
        generator: torch.Generator | None = None, shared: dict | None = None,
             seed: int = 0) -> MetricResult:
    """Most influential first (MIF, Bluecher et al. 2022, arXiv:2202.06861; the MoRF order of
    pixel flipping, Samek et al. 2017, carried to full removal): the target probability as the
    features are removed in order of decreasing attribution in `steps` equal increments, fractions
    0, 1/steps, ..., 1; the score is the curve's trapezoid area on [0, 1]. Lower is better. With
    the same substrate it is exactly `deletion`. Default substrate: uniform noise (`noise`, drawn
    once per sample); text `mask`."""
    substrate = resolve_substrate(task, substrate, "pixel_flipping")
    curve = _shared_curve(shared, model, task, inputs, attributions, targets, steps=steps,
                          substrate=substrate, descending=True, batch_size=batch_size,
                          generator=generator, seed=seed)
    return MetricResult(_trapezoid(curve, steps), curve)


def lif(model, task, inputs: Tensor, attributions: Tensor, targets: Tensor, *,
        steps: int = 20, substrate: str | None = None, batch_size: int = 256,
        generator: torch.Generator | None = None, shared: dict | None = None,
             seed: int = 0) -> MetricResult:
    """Least influential first (LIF, Bluecher et al. 2022): as `mif` with the features removed in
    order of increasing attribution (ties at random: metrics/ordering.py). A faithful explanation removes the
    unimportant features first, so the probability stays high: higher is better."""
    substrate = resolve_substrate(task, substrate, "pixel_flipping")
    curve = _shared_curve(shared, model, task, inputs, attributions, targets, steps=steps,
                          substrate=substrate, descending=False, batch_size=batch_size,
                          generator=generator, seed=seed)
    return MetricResult(_trapezoid(curve, steps), curve)


def srg(model, task, inputs: Tensor, attributions: Tensor, targets: Tensor, *,
        steps: int = 20, substrate: str | None = None, batch_size: int = 256,
        generator: torch.Generator | None = None, shared: dict | None = None,
             seed: int = 0) -> MetricResult:
    """Symmetric relevance gain (Bluecher et al. 2022): LIF area minus MIF area with the same
    substrate draw. Much less sensitive to the substrate than either curve alone (its
    out-of-distribution effect cancels). Higher is better. The curve is LIF - MIF per step."""
    substrate = resolve_substrate(task, substrate, "pixel_flipping")
    shared = {} if shared is None else shared  # one substrate draw for both orders
    curves = [_shared_curve(shared, model, task, inputs, attributions, targets, steps=steps,
                            substrate=substrate, descending=descending, batch_size=batch_size,
                            generator=generator, seed=seed) for descending in (True, False)]
    most, least = curves
    return MetricResult(_trapezoid(least, steps) - _trapezoid(most, steps), least - most,
                        {"mif": most, "lif": least})


def _shared_curve(shared: dict | None, model, task, inputs, attributions, targets, *, steps,
                  substrate, descending, batch_size, generator, seed) -> Tensor:
    """A removal curve (inserting nothing) computed once per scoring call when several metrics
    ask for it (deletion, MIF, LIF, SRG with the same steps and substrate): `shared` is the dict
    the caller passes to every metric of one explanation batch. The substrate fill is the first
    draw from each metric's generator, which is seeded alike, so it is the same for all of them."""
    key = ("removal_curve", int(steps), substrate, bool(descending), int(seed))
    if shared is not None and key in shared:
        return shared[key]
    fill_key = ("fill", substrate)
    if shared is not None and fill_key in shared:
        fill = shared[fill_key]
    else:
        fill = task.substrate_fill(inputs, substrate, generator=generator)
        if shared is not None:
            shared[fill_key] = fill
    curve = _curve(model, task, inputs, attributions, targets, steps=steps, substrate=substrate,
                   descending=descending, insert=False, batch_size=batch_size, generator=None,
                   seed=seed, fill=fill)
    if shared is not None:
        shared[key] = curve
    return curve


# ----------------------------------------------------------------------------- AOPC (Samek)


def region_ranks(attributions: Tensor, region: int, noise_of=None) -> tuple[Tensor, int]:
    """Each pixel's region rank (0 = the region of largest attribution sum) and the number of
    regions: the image cut into a grid of `region` x `region` blocks, ranked by the sum of their
    attributions, ties by `noise_of(n_blocks)` ((B, n_blocks) tie-break values; aopc passes the
    random ones of metrics/ordering.py; without it, by block index). Where a side is not a multiple of `region` the grid is
    centred and the blocks at both edges are partial, as in Quantus's RegionPerturbation (which
    pads floor(r/2) and ceil(r/2) of the missing r pixels with zero attribution)."""
    B, H, W = attributions.shape

    def blocks(size: int) -> Tensor:
        missing = (region - size % region) % region
        return (torch.arange(size, device=attributions.device) + missing // 2) // region

    rows, cols = blocks(H), blocks(W)
    n_cols = int(cols.max()) + 1
    block = (rows[:, None] * n_cols + cols[None, :]).reshape(-1)  # (H * W,) block of each pixel
    n_blocks = int(block.max()) + 1
    sums = torch.zeros(B, n_blocks, dtype=torch.float64, device=attributions.device)
    sums.index_add_(1, block, attributions.reshape(B, -1).double())
    noise = noise_of(n_blocks) if noise_of is not None else torch.zeros_like(sums)
    rank_of_block = ranks_of(tie_broken_order(sums, True, noise))
    return rank_of_block[:, block].view(B, H, W), n_blocks


def aopc(model, task, inputs: Tensor, attributions: Tensor, targets: Tensor, *,
         region: int = 1, steps: int = 100, substrate: str | None = None, batch_size: int = 256,
         generator: torch.Generator | None = None, seed: int = 0) -> MetricResult:
    """AOPC (Samek et al. 2017, arXiv:1509.06321, eq. 12): the regions most relevant first (MoRF)
    are perturbed one after another, L = `steps` of them, and
    AOPC = 1/(L+1) sum_{k=0..L} [p(x) - p(x with its k most relevant regions perturbed)]. Regions
    are the non-overlapping `region` x `region` blocks of the image ranked by their summed
    attribution; perturbed pixels take the substrate's value (the paper: uniform noise, `noise`,
    drawn once per sample). The paper's 9 x 9 regions and L = 100 on 224 x 224 images cover the
    same share of the image as 1 x 1 regions and L = 100 on 28 x 28 ones (81/224^2 ~ 1/28^2), the
    defaults. Unlike `mif`, it never reaches full removal: at most L regions. Higher is better.
    Images only (the paper's regions are image patches; ERASER's comprehensiveness is the text
    analogue). The curve is the probability drop at k = 0..L."""
    if task.modality != "image":
        raise BenchError(f"metric 'aopc' is defined for images only (Samek et al. perturb image "
                         f"regions); for text ({task.name}) use comprehensiveness, ERASER's AOPC")
    substrate = resolve_substrate(task, substrate, "aopc")
    ranks, n_regions = region_ranks(attributions, int(region),
                                    lambda n: tie_noise(inputs, seed, n))
    L = min(int(steps), n_regions)
    counts = torch.arange(L + 1, device=inputs.device).expand(len(inputs), -1)
    curve = removal_curve(model, task, inputs, ranks.reshape(len(inputs), -1), counts, targets,
                          substrate=substrate, insert=False, batch_size=batch_size,
                          generator=generator)
    drop = curve[:, :1] - curve
    return MetricResult(drop.double().mean(dim=1), drop,
                        {"fractions": torch.arange(L + 1, dtype=torch.float64) * region**2 /
                         attributions[0].numel()})


# ----------------------------------------------------------------------------- ERASER


def _bin_counts(task, inputs, attributions, bins, seed):
    bins = tuple(float(b) for b in bins)
    if not bins or any(not 0 < b <= 100 for b in bins):
        raise ValueError(f"bins are percentages in (0, 100], got {list(bins)}")
    ranks, n = feature_ranks(task, inputs, attributions, descending=True, seed=seed)
    fractions = torch.tensor(bins, dtype=torch.float64, device=inputs.device) / 100.0
    return ranks, n, counts_for_fractions(n, fractions)


def comprehensiveness(model, task, inputs: Tensor, attributions: Tensor, targets: Tensor, *,
                      bins=ERASER_BINS, substrate: str | None = None, batch_size: int = 256,
                      generator: torch.Generator | None = None, seed: int = 0) -> MetricResult:
    """Comprehensiveness (DeYoung et al. 2020, ERASER, arXiv:1911.03429): p(x) - p(x without its
    top-k% features), averaged over the bins k (percent of each sample's own features, rounded
    half up). Higher is better. Paper substrate: text tokens deleted (`pad`); images `zero`.
    extras["drop"]: (B, bins) the drop at each bin."""
    substrate = resolve_substrate(task, substrate, "eraser")
    ranks, n, counts = _bin_counts(task, inputs, attributions, bins, seed)
    counts = torch.cat([torch.zeros_like(counts[:, :1]), counts], dim=1)  # k = 0: p(x)
    curve = removal_curve(model, task, inputs, ranks, counts, targets, substrate=substrate,
                          insert=False, batch_size=batch_size, generator=generator)
    drop = curve[:, :1] - curve[:, 1:]
    return MetricResult(drop.double().mean(dim=1), None, {"drop": drop})


def sufficiency(model, task, inputs: Tensor, attributions: Tensor, targets: Tensor, *,
                bins=ERASER_BINS, substrate: str | None = None, batch_size: int = 256,
                generator: torch.Generator | None = None, seed: int = 0) -> MetricResult:
    """Sufficiency (DeYoung et al. 2020, ERASER): p(x) - p(only the top-k% features of x kept),
    averaged over the bins k. Lower is better (the top features alone keep the prediction).
    Not Quantus's `Sufficiency`, which is Dasgupta et al. 2022's nearest-neighbour notion.
    extras["drop"]: (B, bins) the drop at each bin."""
    substrate = resolve_substrate(task, substrate, "eraser")
    ranks, n, counts = _bin_counts(task, inputs, attributions, bins, seed)
    counts = torch.cat([n.view(-1, 1).to(counts), counts], dim=1)  # keeping all: p(x)
    curve = removal_curve(model, task, inputs, ranks, counts, targets, substrate=substrate,
                          insert=True, batch_size=batch_size, generator=generator)
    drop = curve[:, :1] - curve[:, 1:]
    return MetricResult(drop.double().mean(dim=1), None, {"drop": drop})


# ----------------------------------------------------------------------------- Bhatt et al.


def random_subsets(valid: Tensor, sizes: Tensor, runs: int, generator: torch.Generator | None) -> Tensor:
    """(runs, B, F) bool: for each run and sample, a uniformly random subset of `sizes[b]` of the
    sample's valid features: those whose i.i.d. uniform key is at most the `sizes[b]`-th smallest
    (a linear-time partition, not a sort; float64 keys, so a tie is a 2^-53 event). Drawn on the
    CPU run by run (so the draws do not depend on batch sizes) and moved to the device: the same
    seed gives the same subsets on every device."""
    import numpy as np

    B, F = valid.shape
    invalid, sizes = (~valid).cpu().numpy(), sizes.cpu().numpy()
    groups = [(m, np.flatnonzero(sizes == m)) for m in np.unique(sizes) if m > 0]
    out = np.zeros((runs, B, F), dtype=bool)
    threshold = np.full((B, 1), -1.0)  # size 0: nothing is below
    for r in range(runs):
        keys = torch.rand((B, F), generator=generator, dtype=torch.float64).numpy()
        keys[invalid] = 2.0  # never chosen
        for m, rows in groups:  # one partition per distinct subset size (images: one)
            threshold[rows, 0] = np.partition(keys[rows], m - 1, axis=1)[:, m - 1]
        np.less_equal(keys, threshold, out=out[r])
    return torch.from_numpy(out).to(valid.device)


def pearson(a: Tensor, b: Tensor, dim: int = -1) -> Tensor:
    a = a.double() - a.double().mean(dim=dim, keepdim=True)
    b = b.double() - b.double().mean(dim=dim, keepdim=True)
    return (a * b).sum(dim) / torch.sqrt((a * a).sum(dim) * (b * b).sum(dim))


def faithfulness_correlation(model, task, inputs: Tensor, attributions: Tensor, targets: Tensor, *,
                             nr_runs: int = 100, subset_fraction: float = 0.25,
                             substrate: str | None = None, batch_size: int = 256,
                             generator: torch.Generator | None = None) -> MetricResult:
    """Faithfulness correlation (Bhatt et al. 2020, arXiv:2005.00631): over `nr_runs` random
    subsets S of `subset_fraction` of each sample's features, the Pearson correlation between the
    attribution sum over S and the probability drop p(x) - p(x with S removed). Higher is better.
    Paper substrate: a baseline value (`zero`, Quantus's "black" on MNIST); text `mask`.
    NaN where the drops (or sums) do not vary, as scipy.stats.pearsonr."""
    substrate = resolve_substrate(task, substrate, "faithfulness_correlation")
    fraction = check_fraction("subset_fraction", subset_fraction)
    runs = int(nr_runs)
    if runs < 2:
        raise ValueError(f"nr_runs must be >= 2 for a correlation, got {nr_runs}")
    valid = task.feature_mask(inputs).flatten(1)
    sizes = counts_for_fractions(valid.sum(dim=1), torch.tensor([fraction]))[:, 0]
    subsets = random_subsets(valid, sizes, runs, generator)  # (R, B, F)
    B = len(inputs)
    flat_attributions = attributions.flatten(1).double()
    attribution_sums = torch.stack([(flat_attributions * subsets[r]).sum(dim=-1) for r in range(runs)])
    fill = task.substrate_fill(inputs, substrate, generator=generator)
    flat = subsets.view(runs * B, -1)
    samples = torch.arange(B, device=inputs.device).repeat(runs)  # run-major, like Quantus
    perturbed = evaluate_removals(model, task, inputs, targets, samples, lambda rows, b: ~flat[rows],
                                  substrate=substrate, fill=fill, batch_size=batch_size)
    drops = batched_output(model, task, inputs, targets, batch_size=batch_size) - perturbed.view(runs, B)
    return MetricResult(pearson(attribution_sums, drops, dim=0), None,
                        {"attribution_sums": attribution_sums.T, "drops": drops.T})
