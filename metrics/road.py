"""ROAD: RemOve And Debias (Rong et al. 2022, arXiv:2202.00449).

Removed pixels are not set to a constant (which leaks the removal pattern, so the model can read the
mask instead of the missing content) but imputed from their neighbours by noisy linear imputation:
each removed pixel equals the weighted mean of its 8 in-image neighbours (weight 1/6 for the 4 edge
neighbours, 1/12 for the 4 corner ones), solved jointly over all removed pixels, plus Gaussian noise
of standard deviation `noise`: the system of the authors' code and of Quantus's
`noisy_linear_imputation`.

How it is solved, batched on the device, with no per-pixel or per-sample Python. The system over
the removed set R is A[R, R] x_R = (weighted sums of the known neighbours), where A is one fixed
matrix: the weighted graph Laplacian of the pixel grid (in-image degree on the diagonal). The
removed sets of one sample and order are nested (the top 1%, 3%, ... of one ranking), so with the
pixels in removal order every level's matrix is a leading block of the same matrix, and the
Cholesky factor of a leading block is the leading block of the factor: one factorisation serves
every level (a triangular solve of all levels' right-hand sides at once, each truncated to its own
size, then the back substitution).
 - Levels that remove at most 75% of the pixels factor A[R, R] directly, in float32 (measured
   on MNIST saliency orders: at most 6e-7 from the float64 solve up to 80%; past that the matrix
   nears singular and float32 loses 1e-5 by 99%).
 - Levels that remove more have few known pixels K, and are solved through them (the capacitance
   matrix method): with G = A's Green's function grounded at the last pixel in the order (from the
   pseudo-inverse of A, computed once), x = x_g + G[:, K'] f with G[K', K'] f = x_K' - x_g. The
   known sets are nested too, so one factorisation of G[K', K'] in reverse order serves them all.
   In float64: G[K', K'] is ill-conditioned, and float32 loses 3e-6 to 1e-5 in the pixels.
So each (sample, order) costs two Cholesky factorisations (of 75% and 25% of the image) whatever
the number of levels (on the CPU the first is split in two halves, below). The imputed pixels agree with Quantus's float64 scipy solve to 6e-7
(dtype=float64 for the direct side too: 1e-10).

On the CPU both sides run as compiled loops over the samples (road_cpu.py: numba calling
LAPACK and BLAS with no per-sample Python, no copies of leading blocks, the levels solved in
groups against the leading block each group needs, the noise read where road_draws put it), split
over torch's thread count; on other devices as the batched torch operations below, which are
also the reference the kernels are tested against (backend="torch"). The CPU's direct side also
cuts the image in two: with 8 neighbours the middle column separates the left half from the
right one, so A[R, R] with the separator's pixels ordered last is block diagonal but for them.
Each half's removed pixels, in removal order, are again a prefix of that half's at every level:
each half is factored once (two blocks of ~290 pixels instead of one of 588: a quarter of the
flops), and per level only the separator's Schur complement S = A_SS - sum of Y^T Y, Y = L^-1 C
(C the half's coupling to the separator), is formed and factored, in float64: at most 28 pixels,
with the Y^T Y of the level's rows a running sum, as the levels' rows only grow. The same solution
as the factorisation of the whole block (2e-15 apart in float64).

What it costs (one core, MNIST, 50 levels, per sample and order): about 1.6-2 ms (one
factorisation of the 588-pixel block: 2.5-3 ms; the torch path on the CPU: 4-5 ms), against
11-15 ms for the 50 forward passes of mnist_cnn. Of it the direct side is 1.2-1.4 ms: the two
halves' factorisations 0.55, their triangular solves 0.35, the separator 0.1-0.15 (its
per-level systems through the capacitance side's LAPACK helper), building the matrices and
right-hand sides 0.15; the capacitance side 0.4-0.5 ms. Measured and not kept:
 - a sparse left-looking factorisation compiled with numba (float64, exact to 3e-15): 1.8 ms on
   LeRF orders and 4.1 on MoRF ones against 1.3-1.5 for the dense one: 2-3 ns per
   multiply-add of scattered updates, where the dense factorisation runs 20x more flops at
   ~45 GFLOP/s; sparse triangular solves of all levels were no faster than the dense ones;
 - eliminating the first third of the pixels first and updating only the later rows coupled to
   them (a third to a half of them are not): 10% faster on MoRF orders, none on LeRF ones;
 - in torch, solving groups of small levels with smaller leading blocks (fewer flops, no faster:
   torch copies a block view before solving with it; the kernels pass it to BLAS in place);
 - a float32 capacitance side (inaccurate, above). Grounding through the mean instead of one
   pixel (G = pinv(A) + 11^T/n, one bordered row for the total source) cuts the capacitance
   matrix's condition number from 760-2250 to 120-300, but float32 is still 1-2e-6 off;
 - one forward solve for all levels (x_R = x_R - A_RR^-1 (A x)_R: the right-hand side is then the
   same vector for every level): 2-3x less accurate on MoRF orders (1.2e-6 at 75%), whose removed
   pixels are the bright ones, so the difference cancels;
 - a sparse factorisation: in removal order the factor of the 588-pixel A[R, R] needs 1-7 Mflop
   against the dense 68 (most columns stay short until late), but done in torch as 32- or 64-wide
   panels that touch only their nonzero rows it ran 2-3x slower than one dense potrf;
 - interleaving imputation with classification (the model and the solves evict each other's data).

Text: ROAD interpolates a removed value from its neighbours, which token ids do not allow (the mean
of two word ids is no word); the metric is defined for images only and says so for text.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch
from torch import Tensor

from explainbench.core.errors import BenchError
from explainbench.metrics.base import MetricResult
from explainbench.metrics.ordering import tie_broken_order, tie_noise

QUANTUS_PERCENTAGES = tuple(range(1, 100, 2))  # Quantus 0.6 ROAD default: 1%, 3%, ..., 99%

# Levels removing up to this fraction are solved directly, the others through their known pixels.
# Past the middle because the direct system is float32 and the capacitance one float64: measured
# on one core, 0.75 is the fastest split (0.6: 10-20% slower, 0.85: 15% slower), and with the CPU
# kernel's two halves still (0.7: 10-15% slower, 0.8-0.9: 5-30%); float32 also drifts past it
# (the float64 solve 1.2e-6 away at 0.75, 1.5e-6 at 0.8, 3.2e-6 at 0.9, with noise 0.01).
DIRECT_UP_TO = 0.75

# (row offset, column offset) -> weight, as in the ROAD code and Quantus.
NEIGHBOUR_WEIGHTS = {(1, 1): 1 / 12, (0, 1): 1 / 6, (-1, 1): 1 / 12, (1, -1): 1 / 12,
                     (0, -1): 1 / 6, (-1, -1): 1 / 12, (1, 0): 1 / 6, (-1, 0): 1 / 6}


@lru_cache(maxsize=4)
def _grid(height: int, width: int):
    """Neighbour pixel (F, 8), its weight (F, 8) (0 outside the image), the degree (F,), and the
    pseudo-inverse of the grid Laplacian A (F, F), float64 on the CPU."""
    n = height * width
    rows, cols = torch.meshgrid(torch.arange(height), torch.arange(width), indexing="ij")
    neighbours, weights = [], []
    for (dr, dc), w in NEIGHBOUR_WEIGHTS.items():
        r, c = rows + dr, cols + dc
        inside = (r >= 0) & (r < height) & (c >= 0) & (c < width)
        neighbours.append((r.clamp(0, height - 1) * width + c.clamp(0, width - 1)).reshape(n))
        weights.append((inside * w).reshape(n).double())
    neighbours, weights = torch.stack(neighbours, 1), torch.stack(weights, 1)
    laplacian = torch.zeros((n, n), dtype=torch.float64)
    laplacian.scatter_add_(1, neighbours, -weights)
    laplacian += torch.diag(weights.sum(1))
    return neighbours, weights, weights.sum(1), torch.linalg.pinv(laplacian, hermitian=True)


def _prefix_solve(factor: Tensor, rhs: Tensor, sizes: Tensor) -> Tensor:
    """Solve every level's leading-block system at once: column p of rhs (B, k, P) belongs to the
    system of the leading sizes[p] x sizes[p] block; factor (B, k, k) holds the lower Cholesky
    factor of the whole k x k matrix in its lower triangle (the upper one is not read). Returns
    (B, k, P), zero below each column's block: the forward solve is masked to each level's rows,
    and the back substitution then keeps those rows zero. (Solving groups of small levels with
    smaller leading blocks does fewer flops but is slower: torch copies a block view before
    solving with it.)"""
    active = torch.arange(rhs.shape[1], device=rhs.device).view(1, -1, 1) < sizes.view(1, 1, -1)
    y = torch.linalg.solve_triangular(factor, rhs * active, upper=False) * active
    return torch.linalg.solve_triangular(factor.transpose(1, 2), y, upper=True)


@lru_cache(maxsize=1)
def _blas_controller():
    """threadpoolctl's controller of the loaded BLAS libraries (scanning for them costs ~1 ms).
    scipy.linalg is loaded first: the controller sees only the libraries loaded when it is made,
    and the solves run in scipy's OpenBLAS (numpy's is another copy). Measured: made before it,
    the limit missed scipy's OpenBLAS, and two kernel threads each calling a two-thread BLAS ran
    2x slower than one kernel thread."""
    import scipy.linalg  # noqa: F401  (loads the BLAS the solves call)
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


def _cholesky_in_place(a: Tensor) -> Tensor:
    """The lower Cholesky factor of every matrix of the SPD batch `a` (B, n, n), in its lower
    triangle; the upper triangle is left as it was. On the CPU it is LAPACK's potrf on each matrix
    in place: torch.linalg.cholesky copies the batch into a column-major buffer and zeroes the
    upper triangle afterwards, which at these sizes costs as much as the factorisation (measured on
    one core: 1.28 against 0.71 ms for 470 x 470 in float32). BLAS runs one thread whatever torch
    uses: with 2 torch threads, 2 BLAS threads made the whole imputation 1.8x slower (7.6 against
    4.1 ms per sample and order on 2 cores), as torch's OpenMP workers, spinning after each
    parallel region, take the cores from BLAS's own threads; one 588 x 588 matrix gains little
    from a second thread anyway."""
    row_major = a.stride(-1) == 1 and a.stride(-2) == a.shape[-1]
    if a.device.type != "cpu" or a.dtype not in (torch.float32, torch.float64) or not row_major:
        return torch.linalg.cholesky(a)
    from scipy.linalg import lapack

    potrf = lapack.spotrf if a.dtype == torch.float32 else lapack.dpotrf
    with _blas_controller().limit(limits=1, user_api="blas"):
        for matrix in a.numpy():  # C order: its transpose is the column-major matrix LAPACK takes
            _, info = potrf(matrix.T, lower=0, overwrite_a=1, clean=0)  # U of A = A^T: L in place
            if info != 0:
                raise torch.linalg.LinAlgError(f"ROAD imputation: the system is not positive "
                                               f"definite (potrf info {info})")
    return a


@dataclass(frozen=True)
class Draws:
    """Noise as road_draws gives it: standard normal draws (B, sum of counts), level p's
    counts[p] numbers one after the other, to be scaled by `std`. The kernels read them where
    they are; the torch path pads them (pad_noise)."""
    values: Tensor
    std: float


def noisy_linear_imputation(images: Tensor, order: Tensor, counts,
                            noise: Tensor | Draws | None = None,
                            dtype: torch.dtype = torch.float32, backend: str = "auto") -> Tensor:
    """Images (B, P, 1, H, W): for sample b and level p the pixels order[b, :counts[p]] are removed
    and imputed, plus noise[b, p, j] on the pixel order[b, j] where `noise` (B, P, >= max count)
    is given (or the same from Draws). images (B, 1, H, W); order (B, H*W) every pixel in removal
    order; counts (P,) ints in [0, H*W - 1] (at least one pixel must stay to interpolate from).
    backend: how both sides are solved, "torch" (batched tensor operations, any device), "kernel"
    (the compiled CPU loops of road_cpu.py, the same arithmetic) or "auto" (the kernels on the
    CPU)."""
    if backend not in ("auto", "torch", "kernel"):
        raise ValueError(f"unknown ROAD backend {backend!r}; choose auto, torch or kernel")
    B, C, H, W = images.shape
    if C != 1:
        raise ValueError(f"noisy linear imputation takes single-channel images, got {C} channels")
    F, device = H * W, images.device
    counts = torch.as_tensor(counts, device=device).long().view(-1)
    if len(counts) == 0 or int(counts.max()) >= F or int(counts.min()) < 0:
        raise ValueError(f"ROAD removes between 0 and {F - 1} of {F} pixels, got {counts.tolist()}")
    neighbours, weights, degree, green = (t.to(device) for t in _grid(H, W))  # green: float64
    weights, degree = weights.to(dtype), degree.to(dtype)
    x = images.reshape(B, F).to(dtype)
    ranks = torch.empty_like(order)
    ranks.scatter_(1, order, torch.arange(F, device=device).expand(B, F))
    out = torch.empty((B, len(counts), F), dtype=dtype, device=device)

    def fill_levels(levels: Tensor, c: Tensor, imputed: Tensor) -> None:
        """Write the images of `levels`: imputed (B, k, len(c)) holds the values of the pixels
        order[:, :k] in removal order; each level keeps its own first c[p] (plus noise)."""
        k = imputed.shape[1]
        head = order[:, :k]
        original = x.gather(1, head).unsqueeze(1)
        values = imputed.transpose(1, 2)
        if noise is not None:
            values = values + padded_noise[:, levels, :k]
        removed = torch.arange(k, device=device).view(1, 1, k) < c.view(1, -1, 1)
        images_ = x.unsqueeze(1).repeat(1, len(c), 1)
        images_.scatter_(2, head.unsqueeze(1).expand(-1, len(c), -1), torch.where(removed, values, original))
        out.index_copy_(1, levels, images_)

    direct = counts <= int(DIRECT_UP_TO * F)
    use_kernel = backend == "kernel" or (backend == "auto" and device.type == "cpu")
    if use_kernel and device.type != "cpu":
        raise ValueError(f"the ROAD kernel backend runs on the CPU, not on {device}")
    if use_kernel:
        noise = _kernel_noise(noise, counts)
    elif isinstance(noise, Draws):
        padded_noise = pad_noise(noise.values.to(device), counts, noise.std).to(dtype)
    elif noise is not None:
        padded_noise = noise.to(device, dtype)
    if direct.any() and use_kernel:
        from explainbench.metrics.road_cpu import separator_parts

        part = torch.from_numpy(separator_parts(H, W))
        _solve_on_cpu("direct", (x, order, ranks, neighbours, weights, degree, part),
                      counts, direct.nonzero().flatten(), noise, out)
    elif direct.any():  # unknowns: the first k pixels of the order, factor A[R, R] itself
        levels = direct.nonzero().flatten()
        c = counts[levels]
        k = max(int(c.max()), 1)
        head = order[:, :k]
        nb = neighbours[head].view(B, k * 8)
        nb_rank, nb_x = ranks.gather(1, nb).view(B, k, 8), x.gather(1, nb).view(B, k, 8)
        w = weights[head]
        # A[R, R] in removal order, contiguous: row i gets -w at its in-block neighbours' ranks;
        # a neighbour outside the block adds 0 to the diagonal instead
        inside = nb_rank < k
        rows = torch.arange(k, device=device).view(1, k, 1) * (k + 1)  # flat index of (i, i)
        flat = torch.where(inside, rows - torch.arange(k, device=device).view(1, k, 1) + nb_rank, rows)
        a = torch.zeros((B, k * k), dtype=dtype, device=device)
        a.scatter_add_(1, flat.view(B, -1), torch.where(inside, -w, 0).view(B, -1))
        a = a.view(B, k, k)
        a.diagonal(dim1=1, dim2=2).add_(degree[head])
        # right-hand sides: a neighbour counts at the levels that keep it (count <= its rank);
        # with the levels sorted by count those are the first `kept` ones, so bin each neighbour's
        # w * x at `kept` and sum the bins above each level (no (B, k, 8, levels) tensor)
        sorted_c, by_count = torch.sort(c)
        # kept[r] = how many levels keep the pixel of rank r, from a table over the F ranks (a
        # gather, where a searchsorted per neighbour cost 5x more)
        kept_at_rank = torch.searchsorted(sorted_c, torch.arange(F, device=device), right=True)
        kept = kept_at_rank[nb_rank]  # (B, k, 8)
        bins = torch.zeros((B, k, len(c) + 1), dtype=dtype, device=device)
        bins.scatter_add_(2, kept, w * nb_x)
        above = bins.flip(2).cumsum(2).flip(2)[:, :, 1:]  # above[p] = sum of bins p+1, p+2, ...
        if bool((by_count == torch.arange(len(c), device=device)).all()):
            rhs = above  # levels given in increasing count, as road() gives them
        else:
            rhs = torch.empty_like(above)
            rhs[:, :, by_count] = above
        fill_levels(levels, c, _prefix_solve(_cholesky_in_place(a), rhs, c))

    if not direct.all() and use_kernel:
        _solve_on_cpu("capacitance", (x, order, green), counts, (~direct).nonzero().flatten(),
                      noise, out)
    elif not direct.all():  # few known pixels: solve for the sources on them
        levels = (~direct).nonzero().flatten()
        c = counts[levels]
        n_known = F - c - 1  # known pixels besides the ground g
        m = max(int(n_known.max()), 1)
        ground, support = order[:, F - 1], order.flip(1)[:, 1:1 + m]  # K' in reverse order
        # float64: the grounded Green's function matrix is ill-conditioned (float32 loses 1e-5)
        x64 = x.double()
        g_row = green[ground]  # (B, F)
        g_gg, g_gs = g_row.gather(1, ground.view(B, 1)), g_row.gather(1, support)
        rows_s = green.index_select(0, support.reshape(-1)).view(B, m, F)
        # capacitance G_g[K', K'] with G_g[i, j] = G[i, j] - G[i, g] - G[g, j] + G[g, g], the
        # rank-2 correction in one fused pass: (g_is - g_gg) * 1 + 1 * g_js
        ones = torch.ones_like(g_gs)
        cap = torch.baddbmm(rows_s.gather(2, support.unsqueeze(1).expand(B, m, m)),
                            torch.stack([g_gs - g_gg, ones], dim=2), torch.stack([ones, g_gs], dim=1),
                            alpha=-1)
        x_g = x64.gather(1, ground.view(B, 1))
        target = (x64.gather(1, support) - x_g).unsqueeze(-1)
        sources = _prefix_solve(_cholesky_in_place(cap), target.expand(-1, -1, len(c)), n_known)
        # x = x_g + G_g[:, K'] f, with G_g's corrections folded into one term
        correction = ((g_gg - g_row).unsqueeze(2) * sources.sum(1, keepdim=True)
                      - g_gs.unsqueeze(1) @ sources + x_g.unsqueeze(2))
        kmax = int(c.max())
        grounded = torch.baddbmm(correction, rows_s.transpose(1, 2), sources)  # (B, F, P)
        at_ranks = grounded.gather(1, order[:, :kmax].unsqueeze(2).expand(-1, -1, len(c)))
        fill_levels(levels, c, at_ranks.to(dtype))
    return out.view(B, len(counts), 1, H, W).to(images.dtype)


def _solve_on_cpu(side: str, inputs: tuple, counts: Tensor, levels: Tensor, noise,
                  out: Tensor) -> None:
    """One side ("direct" or "capacitance") through road_cpu's compiled loop: `inputs` are the
    leading tensor arguments of road_cpu.solve_<side>; writes out[:, levels] in place."""
    from explainbench.metrics import road_cpu

    def array(t: Tensor) -> np.ndarray:
        return np.ascontiguousarray(t.numpy())

    solve = getattr(road_cpu, f"solve_{side}")
    with _blas_controller().limit(limits=1, user_api="blas"):  # one BLAS thread: see above
        info = solve(*map(array, inputs), array(counts[levels]), array(levels), noise, out.numpy(),
                     threads=torch.get_num_threads())
    if info != 0:
        raise torch.linalg.LinAlgError(f"ROAD imputation: the system is not positive definite "
                                       f"(Cholesky info {info})")


def _kernel_noise(noise: Tensor | Draws | None, counts: Tensor):
    """The kernels' noise: (draws (B, N), where each level's start (P,), std), or None."""
    if noise is None:
        return None
    if isinstance(noise, Draws):
        starts = torch.cumsum(counts, 0) - counts
        return noise.values.contiguous().numpy(), starts.numpy(), noise.std
    B, P, width = noise.shape
    return noise.reshape(B, P * width).contiguous().numpy(), (torch.arange(P) * width).numpy(), 1.0


def _removal_order(attributions: Tensor, descending: bool, noise: Tensor) -> Tensor:
    """Pixels by attribution, ties at random (`noise`: metrics/ordering.py), never by position."""
    return tie_broken_order(attributions.flatten(1).double(), descending, noise)


@torch.inference_mode()
def _classify(model, task, images: Tensor, targets: Tensor, batch_size: int):
    """Target probability and whether the target is still the predicted class, in batches."""
    probs, correct = [], []
    for i in range(0, len(images), max(1, batch_size)):
        p = torch.softmax(task.forward(model, images[i:i + batch_size]).float(), dim=-1)
        t = targets[i:i + batch_size]
        probs.append(p.gather(1, t.view(-1, 1)).squeeze(1))
        correct.append(p.argmax(dim=1) == t)
    return torch.cat(probs), torch.cat(correct)


def road_draws(counts: Tensor, batch: int, orders: int, generator) -> Tensor:
    """(B, orders, sum of counts) standard normal draws: level p of sample b draws counts[p]
    numbers, as Quantus does per (level, sample). Drawn on the CPU in one go, so the same seed
    gives the same noise on every device and for every batch size."""
    return torch.randn((batch, orders, int(counts.sum())), generator=generator)


def pad_noise(draws: Tensor, counts: Tensor, std: float) -> Tensor:
    """The draws (..., sum of counts) of road_draws as noise (..., P, max count) of standard
    deviation `std` in removal order (zero past each level's count), the layout
    noisy_linear_imputation takes."""
    counts = counts.to(draws.device)
    kmax = max(int(counts.max()), 1)
    offsets = torch.cumsum(counts, 0) - counts
    position = offsets.view(-1, 1) + torch.arange(kmax, device=draws.device).view(1, -1)
    used = torch.arange(kmax, device=draws.device).view(1, -1) < counts.view(-1, 1)  # (P, kmax)
    index = torch.where(used, position, torch.zeros_like(position)).view(-1)
    noise = draws.index_select(-1, index).view(*draws.shape[:-1], len(counts), kmax)
    return noise.mul_(torch.where(used, float(std), 0.0).to(noise.dtype))


def road_noise(counts: Tensor, batch: int, orders: int, generator, std: float) -> Tensor:
    """(B, orders, P, max count) Gaussian noise in removal order, all at once: the numbers road()
    draws, in the padded layout (road() hands them over unpadded, as Draws)."""
    return pad_noise(road_draws(counts.cpu(), batch, orders, generator), counts.cpu(), std)


def road(model, task, inputs: Tensor, attributions: Tensor, targets: Tensor, *,
         percentages=None, noise: float = 0.01, batch_size: int = 256,
         generator: torch.Generator | None = None, seed: int = 0) -> MetricResult:
    """ROAD (Rong et al. 2022): remove the top (MoRF) or the bottom (LeRF) `percentages`
    (default 1, 3, ..., 99) of the pixels by attribution, int(784 p / 100) of them (floored, as
    Quantus 0.6), each removal imputed by noisy linear imputation with noise of standard
    deviation `noise`, and classify the imputed images. One evaluation, five outputs, each the
    mean over the percentages (their directions: metrics.ROAD_OUTPUTS):
      road_morf_accuracy  whether the target is still the predicted class after MoRF removal:
                          Rong et al.'s and Quantus's ROAD curve (Quantus reports its mean over
                          the samples per percentage); lower is better
      road_lerf_accuracy  the same after LeRF removal; higher is better
      road_morf, road_lerf  the target-class probability instead of the 0/1 accuracy
      road_gap            road_lerf - road_morf: not in the paper, the symmetric reading of the two
                          curves that the SRG of pixel flipping is; higher is better
    The probability curves (B, P) are kept as road_morf and road_lerf; extras also hold the 0/1
    curves morf_correct, lerf_correct."""
    if task.modality != "image":
        raise BenchError(
            f"metric 'road' is defined for images only: noisy linear imputation interpolates a "
            f"removed pixel from its neighbours, which token ids ({task.name}) do not allow; use "
            f"mif, lif or srg with substrate mask for text")
    percentages = QUANTUS_PERCENTAGES if percentages is None else percentages
    pct = torch.tensor([float(p) for p in percentages], dtype=torch.float64)
    if len(pct) == 0 or bool(((pct <= 0) | (pct >= 100)).any()):
        raise ValueError(f"ROAD percentages must be in (0, 100), got {list(percentages)}")
    B, F = len(inputs), attributions[0].numel()
    counts = torch.floor(pct * F / 100).long().clamp(max=F - 1)
    P = len(counts)
    draws = road_draws(counts, B, 2, generator)
    # Impute all images of one order, then classify them: measured faster than classifying
    # each group's images as they come, which makes the model and the solves evict each other's
    # working sets. The torch path imputes 16 samples at a time (small systems and
    # allocations); the CPU kernels take the whole batch in one call, which keeps torch's
    # OpenMP workers idle while the kernels' threads run (they spin for a while after each
    # parallel torch operation and take the cores from the kernels).
    group = B if inputs.device.type == "cpu" else 16
    curves = []
    ties = tie_noise(inputs, seed, F)
    for o, descending in enumerate((True, False)):
        order = _removal_order(attributions, descending, ties)
        chunks = [noisy_linear_imputation(inputs[i:i + group], order[i:i + group], counts,
                                          Draws(draws[i:i + group, o], noise))
                  for i in range(0, B, group)]
        images = chunks[0] if len(chunks) == 1 else torch.cat(chunks)  # no copy of one chunk
        probs, correct = _classify(model, task, images.flatten(0, 1),
                                   targets.repeat_interleave(P), batch_size)
        curves.append((probs.view(B, P), correct.view(B, P)))
    (p_morf, c_morf), (p_lerf, c_lerf) = curves
    mean = lambda c: c.double().mean(dim=1)  # noqa: E731
    named = {"road_morf_accuracy": mean(c_morf), "road_lerf_accuracy": mean(c_lerf),
             "road_morf": mean(p_morf), "road_lerf": mean(p_lerf),
             "road_gap": mean(p_lerf) - mean(p_morf)}
    return MetricResult(named["road_gap"], None,
                        {"morf": p_morf, "lerf": p_lerf, "morf_correct": c_morf,
                         "lerf_correct": c_lerf, "fractions": counts.double() / F},
                        named=named, named_curves={"road_morf": p_morf, "road_lerf": p_lerf})
