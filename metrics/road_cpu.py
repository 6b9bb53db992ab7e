"""ROAD's two solves on the CPU as compiled loops over the samples (numba, calling LAPACK's potrf
and BLAS's trsm and gemm through scipy's Cython BLAS without the GIL): the torch path of road.py
with no per-sample Python, no copies of the leading blocks, and each level's triangular solves cut
to its own group's block.

Why not the torch path on the CPU: per sample and order it builds the 588 x 588 matrix by a
scatter into a zeroed (B, k, k) tensor, solves all 38 levels against the whole factor (torch's
solve_triangular cannot take a leading block without copying it), and fills the images in five
passes over (B, levels, pixels). Here the matrix is written row by row into one reused buffer, the
levels are solved in groups against the leading block their largest count needs (a view, through
BLAS's leading dimension), the capacitance side's Green's-function product is one gemm, and each
image is written once, its noise read where road_draws put it. Measured on one core, MNIST
saliency orders, per sample and order: direct side 2.1 against 4.1 ms, capacitance side 0.4-0.5
against 0.9-1.2 ms. The arithmetic is the same LAPACK factorisation; only the triangular solves'
BLAS differs (OpenBLAS here, MKL under torch), at the last float32 bit.

numba is shap's dependency (and the project's). The kernels compile on first use in a process
(about 7 s for the float32 pair) and are not cached on disk: numba's cache is pickled.
"""

from __future__ import annotations

import ctypes
from functools import lru_cache

import numpy as np

# Levels are solved in this many groups, each against the leading block of its largest count:
# measured 2-4 groups within noise of each other, 1 group and 6 groups slower.
SOLVE_GROUPS = 3


def _lapack(name: str, arguments: int):
    """A LAPACK/BLAS routine of scipy's Cython BLAS as a ctypes function of pointer arguments,
    which numba calls without the GIL."""
    from numba.extending import get_cython_function_address

    module = "scipy.linalg.cython_lapack" if name.endswith("potrf") else "scipy.linalg.cython_blas"
    vp = ctypes.c_void_p
    return ctypes.CFUNCTYPE(None, *[vp] * arguments)(get_cython_function_address(module, name))


@lru_cache(maxsize=2)
def _factor_and_solve(prefix: str):
    """factor_and_solve(matrix, sizes, group_ends, sol) for float32 ("s") or float64 ("d"):
    factors the SPD n x n matrix, given in the lower triangle of the C-order `matrix` (the
    upper triangle of the column-major matrix LAPACK sees: the same matrix, as it is
    symmetric), in place, then solves level q's system of the leading sizes[q] x sizes[q] block
    for its right-hand side sol[q] (q, n), in place. sizes ascending; the levels are solved in
    groups (group_ends), each against the leading block of its largest size, their smaller
    levels' rows past their size zero before and after the forward solve. Returns potrf's
    info (0: done)."""
    import numba

    potrf, trsm = _lapack(prefix + "potrf", 5), _lapack(prefix + "trsm", 11)
    real = np.float32 if prefix == "s" else np.float64

    @numba.njit(nogil=True, cache=False)
    def factor_and_solve(matrix, sizes, group_ends, sol):
        n = matrix.shape[0]
        chars = np.empty(4, np.uint8)
        chars[0], chars[1], chars[2], chars[3] = ord("U"), ord("L"), ord("N"), ord("T")
        dims = np.empty(3, np.int32)
        info = np.zeros(1, np.int32)
        one = np.ones(1, real)
        dims[0] = n
        potrf(chars[0:].ctypes, dims.ctypes, matrix.ctypes, dims.ctypes, info.ctypes)
        if info[0] != 0:
            return info[0]
        # sol (P, n) C-order is the column-major n x P matrix of right-hand sides; with U = L^T
        # the factor LAPACK wrote, L y = b is U^T y = b and L^T x = y is U x = y
        start = 0
        for g in range(group_ends.shape[0]):
            end = group_ends[g]
            size = sizes[end - 1]
            for q in range(start, end):
                sol[q, sizes[q]:] = 0.0
            if size > 0:
                dims[0], dims[1], dims[2] = size, end - start, n
                trsm(chars[1:].ctypes, chars[0:].ctypes, chars[3:].ctypes, chars[2:].ctypes,
                     dims[0:].ctypes, dims[1:].ctypes, one.ctypes, matrix.ctypes,
                     dims[2:].ctypes, sol[start:].ctypes, dims[2:].ctypes)
                for q in range(start, end):
                    sol[q, sizes[q]:size] = 0.0
                trsm(chars[1:].ctypes, chars[0:].ctypes, chars[2:].ctypes, chars[2:].ctypes,
                     dims[0:].ctypes, dims[1:].ctypes, one.ctypes, matrix.ctypes,
                     dims[2:].ctypes, sol[start:].ctypes, dims[2:].ctypes)
            start = end
        return 0

    return factor_and_solve


@lru_cache(maxsize=2)
def direct_kernel(dtype_name: str):
    """The compiled direct-side loop for float32 or float64 images."""
    import numba

    factor_and_solve = _factor_and_solve({"float32": "s", "float64": "d"}[dtype_name])

    @numba.njit(nogil=True, cache=False)
    def kernel(x, order, ranks, neighbours, weights, degree, counts, slots, group_ends,
               noise, noise_at, std, out, work, sol):
        """For each sample b and each level p (counts sorted ascending): solve the removed
        pixels order[b, :counts[p]] from their neighbours and write image b with them (plus
        std * noise[b, noise_at[slots[p]] + j] on the j-th removed pixel when noise has
        columns) to out[b, slots[p]]. work (k, k) and sol (P, k) are scratch; returns 0 or, if
        a matrix is not positive definite, potrf's info."""
        B, F = x.shape
        P = counts.shape[0]
        k = work.shape[0]
        # levels_le[r]: how many levels keep the pixel of rank r (count <= r)
        levels_le = np.empty(F, np.int64)
        p = 0
        for r in range(F):
            while p < P and counts[p] <= r:
                p += 1
            levels_le[r] = p
        for b in range(B):
            xb, ob, rb = x[b], order[b], ranks[b]
            # A[R, R] in removal order, in the lower triangle of work
            for i in range(k):
                row = work[i]
                row[:i] = 0.0
                row[i] = degree[ob[i]]
                for t in range(8):
                    r = rb[neighbours[ob[i], t]]
                    if r < i:
                        row[r] -= weights[ob[i], t]  # -= : an off-image neighbour has weight 0
            # right-hand sides, level p in sol[p]: a known neighbour (rank r) of the removed
            # pixel of rank i adds w x to the levels that remove i and keep r, p in
            # [levels_le[i], levels_le[r])
            sol[:, :] = 0.0
            for i in range(k):
                u = ob[i]
                for t in range(8):
                    v = neighbours[u, t]
                    value = weights[u, t] * xb[v]
                    for q in range(levels_le[i], levels_le[rb[v]]):
                        sol[q, i] += value
            info = factor_and_solve(work, counts, group_ends, sol)
            if info != 0:
                return info
            for q in range(P):
                image = out[b, slots[q]]
                image[:] = xb
                if noise.shape[1] > 0:
                    shift = noise[b, noise_at[slots[q]]:]
                    for j in range(counts[q]):
                        image[ob[j]] = sol[q, j] + std * shift[j]
                else:
                    for j in range(counts[q]):
                        image[ob[j]] = sol[q, j]
        return 0

    return kernel


@lru_cache(maxsize=2)
def capacitance_kernel(dtype_name: str):
    """The compiled capacitance-side loop for float32 or float64 images (solved in float64)."""
    import numba

    factor_and_solve = _factor_and_solve("d")
    gemm = _lapack("dgemm", 13)

    @numba.njit(nogil=True, cache=False)
    def kernel(x, order, green, counts, slots, group_ends, noise, noise_at, std, out, cap, sol,
               rows, values):
        """For each sample b and each level p (counts sorted descending, so that the known
        pixels besides the ground, n = F - 1 - counts[p], ascend): the images with the pixels
        order[b, :counts[p]] imputed through the capacitance matrix of the known pixels, as
        the torch path of road.py, in float64. cap (m, m), sol (P, m), rows (m, F), values
        (P, F) float64 scratch."""
        B, F = x.shape
        P = counts.shape[0]
        m = cap.shape[0]
        chars = np.full(1, ord("N"), np.uint8)
        dims = np.array([F, P, m], np.int32)
        one, zero = np.ones(1), np.zeros(1)
        known = np.empty(P, np.int64)
        for q in range(P):
            known[q] = F - 1 - counts[q]
        support = np.empty(m, np.int64)
        for b in range(B):
            xb, ob = x[b], order[b]
            ground = ob[F - 1]
            g_row = green[ground]
            g_gg = g_row[ground]
            x_g = np.float64(xb[ground])
            for i in range(m):
                support[i] = ob[F - 2 - i]  # the known pixels, last removed first
            # G_g[K', K'] with G_g[i, j] = G[i, j] - G[i, g] - G[g, j] + G[g, g], lower triangle;
            # the rows G[K', :] are kept for the product below
            for i in range(m):
                rows[i] = green[support[i]]
                row_i = rows[i]
                shift = g_gg - g_row[support[i]]
                for j in range(i + 1):
                    cap[i, j] = row_i[support[j]] - g_row[support[j]] + shift
                sol[:, i] = np.float64(xb[support[i]]) - x_g
            info = factor_and_solve(cap, known, group_ends, sol)
            if info != 0:
                return info
            # x = x_g + G_g[:, K'] f = x_g + G[:, K'] f + (G[g, g] - G[:, g]) sum(f) - G[g, K'] f,
            # G[:, K'] f for every level as one product: values^T (F x P) = rows^T (F x m) sol^T
            # (m x P), the column-major views of the C-order rows (m, F), sol and values
            gemm(chars[0:].ctypes, chars[0:].ctypes, dims[0:].ctypes, dims[1:].ctypes,
                 dims[2:].ctypes, one.ctypes, rows.ctypes, dims[0:].ctypes, sol.ctypes,
                 dims[2:].ctypes, zero.ctypes, values.ctypes, dims[0:].ctypes)
            for q in range(P):
                total, through_g = 0.0, 0.0
                for i in range(known[q]):
                    total += sol[q, i]
                    through_g += sol[q, i] * g_row[support[i]]
                image = out[b, slots[q]]
                image[:] = xb
                values_q = values[q]
                for j in range(counts[q]):
                    v = ob[j]
                    image[v] = x_g + values_q[v] + (g_gg - g_row[v]) * total - through_g
                    if noise.shape[1] > 0:  # added in the images' dtype, as the torch path does
                        image[v] += std * noise[b, noise_at[slots[q]] + j]
        return 0

    return kernel


def _groups(levels: int) -> np.ndarray:
    groups = min(SOLVE_GROUPS, levels)
    return np.array([round(levels * (g + 1) / groups) for g in range(groups)], np.int64)


def _noise(noise, x, out):
    """(draws (B, N) in x's dtype, where level slot s starts (P_all,), std) for the kernels,
    from the `noise` argument of solve_direct (None: no noise)."""
    if noise is None:
        return np.zeros((x.shape[0], 0), x.dtype), np.zeros(out.shape[1], np.int64), x.dtype.type(0)
    draws, starts, std = noise
    return draws.astype(x.dtype, copy=False), np.asarray(starts, np.int64), x.dtype.type(std)


def _in_threads(solve_samples, batch: int, threads: int) -> int:
    """solve_samples(start, stop) on `threads` contiguous slices of the batch at once (the
    kernels release the GIL; each call allocates its own scratch); the first nonzero info."""
    threads = max(1, min(threads, batch))
    bounds = [round(batch * t / threads) for t in range(threads + 1)]
    if threads == 1:
        return solve_samples(0, batch)
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(threads) as pool:
        infos = list(pool.map(solve_samples, bounds[:-1], bounds[1:]))
    return next((info for info in infos if info != 0), 0)


def solve_direct(x, order, ranks, neighbours, weights, degree, counts, slots, noise, out,
                 threads: int = 1) -> int:
    """Run the direct kernel for the levels `counts` (any order; slots[p]: level p's index in
    out) on numpy arrays: x (B, F), order and ranks (B, F) int64, the grid's neighbours (F, 8)
    int64, weights (F, 8) and degree (F,) in x's dtype, noise None or (draws (B, N), starts
    (P_all,), std): the j-th removed pixel of level slot s gets std * draws[b, starts[s] + j];
    out (B, P_all, F); split over `threads` threads. Returns 0, or potrf's info
    if a system is not positive definite."""
    counts = np.asarray(counts, dtype=np.int64)
    by_count = np.argsort(counts, kind="stable")
    counts, slots = counts[by_count], np.asarray(slots, dtype=np.int64)[by_count]
    k = max(int(counts[-1]), 1)
    kernel, groups = direct_kernel(x.dtype.name), _groups(len(counts))
    draws, starts, std = _noise(noise, x, out)

    def solve_samples(start: int, stop: int) -> int:
        work = np.empty((k, k), dtype=x.dtype)
        sol = np.empty((len(counts), k), dtype=x.dtype)
        return int(kernel(x[start:stop], order[start:stop], ranks[start:stop], neighbours, weights,
                          degree, counts, slots, groups, draws[start:stop], starts, std,
                          out[start:stop], work, sol))

    return _in_threads(solve_samples, len(x), threads)


def solve_capacitance(x, order, green, counts, slots, noise, out, threads: int = 1) -> int:
    """Run the capacitance kernel for the levels `counts` (any order, each below F): as
    solve_direct, with green (F, F) float64 the pseudo-inverse of the grid Laplacian."""
    counts = np.asarray(counts, dtype=np.int64)
    by_count = np.argsort(-counts, kind="stable")  # known pixels ascending
    counts, slots = counts[by_count], np.asarray(slots, dtype=np.int64)[by_count]
    F = x.shape[1]
    m = max(F - 1 - int(counts[-1]), 1)
    kernel, groups = capacitance_kernel(x.dtype.name), _groups(len(counts))
    draws, starts, std = _noise(noise, x, out)

    def solve_samples(start: int, stop: int) -> int:
        cap, sol = np.empty((m, m)), np.empty((len(counts), m))
        rows, values = np.empty((m, F)), np.empty((len(counts), F))
        return int(kernel(x[start:stop], order[start:stop], green, counts, slots, groups,
                          draws[start:stop], starts, std, out[start:stop], cap, sol, rows,
                          values))

    return _in_threads(solve_samples, len(x), threads)
