"""ROAD's two solves on the CPU as compiled loops over the samples (numba, calling LAPACK's potrf
and BLAS's trsm and gemm through scipy's Cython BLAS without the GIL): the torch path of road.py
with no per-sample Python, no copies of the leading blocks, each level's triangular solves cut
to its own group's block, and the direct side cut in two halves by the middle column.

Why not the torch path on the CPU: per sample and order it builds the 588 x 588 matrix by a
scatter into a zeroed (B, k, k) tensor, solves all 38 levels against the whole factor (torch's
solve_triangular cannot take a leading block without copying it), and fills the images in five
passes over (B, levels, pixels). Here each matrix is written row by row into one reused buffer,
the levels are solved in groups against the leading block their largest count needs (a view,
through BLAS's leading dimension), the capacitance side's Green's-function product is one gemm,
and each image is written once, its noise read where road_draws put it.

The direct side (road.py's docstring has the algebra): the removed pixels of the left half, of
the right half and of the middle column are each taken in removal order, so a level removes a
prefix of each. The halves' matrices are factored once; their coupling to the separator is
solved through them once (Y = L^-1 C); per level the separator's Schur complement A_SS - sum
Y^T Y (a running sum over the growing rows) is factored in float64, and its solution corrects the
halves' right-hand sides before their back solves. Measured on one core, MNIST saliency orders,
per sample and order: direct side 1.2-1.4 ms, against 2.1-2.4 for one factorisation of the whole
588-pixel block and 4.1 for the torch path; capacitance side 0.4-0.5 against 0.9-1.2 ms. The
arithmetic is LAPACK's and BLAS's (OpenBLAS here, MKL under torch): the images agree with the
torch path to float32's last bits (1e-6), and in float64 to 1e-12.

numba is shap's dependency (and the project's). The kernels compile on first use in a process
(about 7-10 s for the float32 pair) and are not cached on disk: numba's cache is pickled.
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
def _triangular(prefix: str):
    """triangular(matrix, sol, sizes, group_ends, forward): level q's forward (L y = b) or back
    (L^T x = y) solve against the leading sizes[q] x sizes[q] block of the Cholesky factor that
    potrf wrote into the C-order n x n `matrix` (the upper triangle U = L^T of the column-major
    matrix LAPACK sees), for the right-hand sides sol (P, n) in place (sol C-order is the
    column-major n x P matrix BLAS takes). sizes ascending; the levels go in groups
    (group_ends), each against the leading block of its largest size; the forward solve keeps
    each level's rows past its size zero, so the back solve of the group's block leaves them
    zero."""
    import numba

    trsm = _lapack(prefix + "trsm", 11)
    real = np.float32 if prefix == "s" else np.float64

    @numba.njit(nogil=True, cache=False)
    def triangular(matrix, sol, sizes, group_ends, forward):
        n = matrix.shape[0]
        chars = np.empty(4, np.uint8)
        chars[0], chars[1], chars[2], chars[3] = ord("U"), ord("L"), ord("N"), ord("T")
        transpose = chars[3:] if forward else chars[2:]  # U^T y = b, then U x = y
        dims = np.empty(3, np.int32)
        one = np.ones(1, real)
        start = 0
        for g in range(group_ends.shape[0]):
            end = group_ends[g]
            size = sizes[end - 1]
            if forward:
                for q in range(start, end):
                    sol[q, sizes[q]:] = 0.0
            if size > 0:
                dims[0], dims[1], dims[2] = size, end - start, n
                trsm(chars[1:].ctypes, chars[0:].ctypes, transpose.ctypes, chars[2:].ctypes,
                     dims[0:].ctypes, dims[1:].ctypes, one.ctypes, matrix.ctypes,
                     dims[2:].ctypes, sol[start:].ctypes, dims[2:].ctypes)
            if forward:
                for q in range(start, end):
                    sol[q, sizes[q]:size] = 0.0
            start = end

    return triangular


@lru_cache(maxsize=2)
def _cholesky(prefix: str):
    """cholesky(matrix): potrf on the SPD matrix given in the lower triangle of the C-order n x n
    `matrix` (the upper triangle of the column-major matrix LAPACK sees: the same matrix, as it
    is symmetric), in place; returns potrf's info (0: done)."""
    import numba

    potrf = _lapack(prefix + "potrf", 5)

    @numba.njit(nogil=True, cache=False)
    def cholesky(matrix):
        upper = np.full(1, ord("U"), np.uint8)
        dims = np.full(1, matrix.shape[0], np.int32)
        info = np.zeros(1, np.int32)
        if matrix.shape[0] > 0:
            potrf(upper.ctypes, dims.ctypes, matrix.ctypes, dims.ctypes, info.ctypes)
        return info[0]

    return cholesky


@lru_cache(maxsize=2)
def _factor_and_solve(prefix: str):
    """factor_and_solve(matrix, sizes, group_ends, sol): _cholesky, then the forward and back
    solves of _triangular. Returns potrf's info (0: done)."""
    import numba

    cholesky, triangular = _cholesky(prefix), _triangular(prefix)

    @numba.njit(nogil=True, cache=False)
    def factor_and_solve(matrix, sizes, group_ends, sol):
        info = cholesky(matrix)
        if info != 0:
            return info
        triangular(matrix, sol, sizes, group_ends, True)
        triangular(matrix, sol, sizes, group_ends, False)
        return 0

    return factor_and_solve


def separator_parts(height: int, width: int) -> np.ndarray:
    """(height * width,) part of each pixel for the direct kernel: 0 left of the middle column, 1
    right of it, 2 the middle column (the separator: with 8 neighbours, one column is enough
    to cut the grid in two); all 0 for images narrower than 3 pixels."""
    part = np.zeros((height, width), np.int64)
    if width >= 3:
        part[:, width // 2] = 2
        part[:, width // 2 + 1:] = 1
    return part.reshape(-1)


@lru_cache(maxsize=2)
def direct_kernel(dtype_name: str):
    """The compiled direct-side loop for float32 or float64 images."""
    import numba

    prefix = {"float32": "s", "float64": "d"}[dtype_name]
    cholesky, triangular = _cholesky(prefix), _triangular(prefix)
    factor_and_solve = _factor_and_solve("d")  # the separator's systems, in float64
    gemm = _lapack(prefix + "gemm", 13)
    real = np.float32 if prefix == "s" else np.float64

    @numba.njit(nogil=True, cache=False)
    def multiply(transpose_a, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc):
        """C = alpha op(A) B + beta C, column-major (op(A) = A^T if transpose_a)."""
        chars = np.empty(2, np.uint8)
        chars[0], chars[1] = ord("T") if transpose_a else ord("N"), ord("N")
        dims = np.empty(6, np.int32)
        dims[0], dims[1], dims[2], dims[3], dims[4], dims[5] = m, n, k, lda, ldb, ldc
        scalars = np.empty(2, real)
        scalars[0], scalars[1] = alpha, beta
        gemm(chars[0:].ctypes, chars[1:].ctypes, dims[0:].ctypes, dims[1:].ctypes,
             dims[2:].ctypes, scalars[0:].ctypes, a.ctypes, dims[3:].ctypes, b.ctypes,
             dims[4:].ctypes, scalars[1:].ctypes, c.ctypes, dims[5:].ctypes)

    @numba.njit(nogil=True, cache=False)
    def separator_solves(counts_s, counts_h, n, coupling, through, a_ss, sol_s, gram, s_mat):
        """Level q's separator unknowns (the first counts_s[q] separator pixels in removal
        order), in float64, in sol_s[q]: the Schur complement S = A_SS - sum over the halves of
        Y_h^T Y_h (Y_h = L_h^-1 C_h, cut to the level's rows: a running sum over the levels, whose
        rows only grow) against b_S - sum of Y_h^T z_h (through[h, q]), through LAPACK (s_mat:
        flat float64 scratch of at least ns * ns). Returns 0, or potrf's info if S is not
        positive definite."""
        P = counts_s.shape[0]
        ns = a_ss.shape[0]
        gram[:, :] = 0.0
        rows_done = np.zeros(2, np.int64)
        for q in range(P):
            for h in range(2):
                y = coupling[h, :ns * n[h]].reshape((ns, n[h]))
                for i in range(rows_done[h], counts_h[h, q]):
                    for a in range(ns):
                        y_a = np.float64(y[a, i])
                        if y_a != 0.0:
                            for b in range(a + 1):
                                gram[a, b] += y_a * y[b, i]
                rows_done[h] = counts_h[h, q]
            m = counts_s[q]
            x = sol_s[q]
            s = s_mat[:m * m].reshape((m, m))  # contiguous: LAPACK's leading dimension is m
            for a in range(m):
                for b in range(a + 1):
                    s[a, b] = a_ss[a, b] - gram[a, b]
                for h in range(2):
                    if n[h] > 0:
                        x[a] -= through[h, q * ns + a]
            info = factor_and_solve(s, np.full(1, m), np.ones(1, np.int64), x[:m].reshape((1, m)))
            if info != 0:
                return info
        return 0

    @numba.njit(nogil=True, cache=False)
    def kernel(x, order, ranks, neighbours, weights, degree, part, counts, slots, group_ends,
               noise, noise_at, std, out, work, coupling, sol, through, sol_s, u_s, gram, a_ss,
               s_mat):
        """For each sample b and each level p (counts sorted ascending): solve the removed
        pixels order[b, :counts[p]] from their neighbours and write image b with them (plus
        std * noise[b, noise_at[slots[p]] + j] on the j-th removed pixel when noise has
        columns) to out[b, slots[p]]. The removed pixels of each part (separator_parts) are
        taken in removal order, so each level's unknowns in a part are a prefix of that part's:
        the two halves' matrices are factored once each (a leading block per level), the
        separator's Schur complement per level. Scratch, in x's dtype unless said: work (2,
        k*k), coupling (2, H*k), sol (2, P*k), through (2, P*H), u_s (P*H), and float64 sol_s
        (P, H), gram and a_ss (H, H) and s_mat (H*H), with k the largest count and H the separator's
        length. Returns 0, or (a matrix not positive definite) the 1-based position of the
        failing pixel in the elimination order: left half, right half, separator."""
        B, F = x.shape
        P = counts.shape[0]
        k = counts[P - 1]
        levels_le = np.empty(F, np.int64)  # levels_le[r]: how many levels keep rank r
        p = 0
        for r in range(F):
            while p < P and counts[p] <= r:
                p += 1
            levels_le[r] = p
        local = np.empty(F, np.int64)  # a removed pixel's index in its part
        pixels = np.empty((3, max(k, 1)), np.int64)  # each part's removed pixels, in order
        n = np.zeros(3, np.int64)
        counts_h = np.empty((3, P), np.int64)  # level q removes counts_h[h, q] of part h
        for b in range(B):
            xb, ob, rb = x[b], order[b], ranks[b]
            n[:] = 0
            for r in range(k):
                h = part[ob[r]]
                local[ob[r]] = n[h]
                pixels[h, n[h]] = ob[r]
                n[h] += 1
            for h in range(3):
                i = 0
                for q in range(P):
                    while i < n[h] and rb[pixels[h, i]] < counts[q]:
                        i += 1
                    counts_h[h, q] = i
            ns = n[2]
            # each half's A[R, R] in removal order (lower triangle) and its coupling C (R x S)
            # to the removed separator pixels, stored transposed: column-major R x S
            for h in range(2):
                a = work[h, :n[h] * n[h]].reshape((n[h], n[h]))
                c_t = coupling[h, :ns * n[h]].reshape((ns, n[h]))
                c_t[:, :] = 0.0
                for i in range(n[h]):
                    u = pixels[h, i]
                    row = a[i]
                    row[:i] = 0.0
                    row[i] = degree[u]
                    for t in range(8):  # -= : an off-image neighbour has weight 0
                        v = neighbours[u, t]
                        if rb[v] < k and part[v] == h and local[v] < i:
                            row[local[v]] -= weights[u, t]
                        elif rb[v] < k and part[v] == 2:
                            c_t[local[v], i] -= weights[u, t]
            for i in range(ns):
                u = pixels[2, i]
                a_ss[i, :i] = 0.0
                a_ss[i, i] = degree[u]
                for t in range(8):
                    v = neighbours[u, t]
                    if rb[v] < k and part[v] == 2 and local[v] < i:
                        a_ss[i, local[v]] -= weights[u, t]
            # right-hand sides: a known neighbour (rank r') of the removed pixel of rank r adds
            # w x to the levels that remove r and keep r', q in [levels_le[r], levels_le[r'])
            for h in range(2):
                sol[h, :P * n[h]] = 0.0
            sol_s[:, :ns] = 0.0
            for r in range(k):
                u = ob[r]
                h, i = part[u], local[u]
                for t in range(8):
                    v = neighbours[u, t]
                    value = weights[u, t] * xb[v]
                    for q in range(levels_le[r], levels_le[rb[v]]):
                        if h == 2:
                            sol_s[q, i] += value
                        else:
                            sol[h, q * n[h] + i] += value
            # factor the halves; forward solves of their levels and of Y = L^-1 C; through =
            # Y^T z for every level at once (column-major S x P = C_t (nh x S)^T z (nh x P))
            for h in range(2):
                a = work[h, :n[h] * n[h]].reshape((n[h], n[h]))
                info = cholesky(a)
                if info != 0:
                    return info + (n[0] if h == 1 else 0)
                if n[h] == 0:
                    continue
                z = sol[h, :P * n[h]].reshape((P, n[h]))
                triangular(a, z, counts_h[h], group_ends, True)
                if ns > 0:
                    c_t = coupling[h, :ns * n[h]].reshape((ns, n[h]))
                    triangular(a, c_t, np.full(ns, n[h]), np.full(1, ns), True)
                    multiply(True, ns, P, n[h], 1.0, c_t, n[h], z, n[h], 0.0, through[h], ns)
            if ns > 0:
                info = separator_solves(counts_h[2], counts_h, n, coupling, through,
                                        a_ss[:ns, :ns], sol_s, gram[:ns, :ns], s_mat)
                if info != 0:
                    return n[0] + n[1] + info
                # each half's z less its separator share, z -= Y u_S, then back solves
                u = u_s[:P * ns].reshape((P, ns))
                for q in range(P):
                    for i in range(ns):
                        u[q, i] = sol_s[q, i] if i < counts_h[2, q] else 0.0
                for h in range(2):
                    if n[h] > 0:
                        z = sol[h, :P * n[h]].reshape((P, n[h]))
                        c_t = coupling[h, :ns * n[h]].reshape((ns, n[h]))
                        multiply(False, n[h], P, ns, -1.0, c_t, n[h], u, ns, 1.0, z, n[h])
                        for q in range(P):
                            z[q, counts_h[h, q]:] = 0.0
            for h in range(2):
                if n[h] > 0:
                    triangular(work[h, :n[h] * n[h]].reshape((n[h], n[h])),
                               sol[h, :P * n[h]].reshape((P, n[h])), counts_h[h], group_ends,
                               False)
            for q in range(P):
                image = out[b, slots[q]]
                image[:] = xb
                for h in range(3):
                    for i in range(counts_h[h, q]):
                        u = pixels[h, i]
                        value = sol_s[q, i] if h == 2 else sol[h, q * n[h] + i]
                        if noise.shape[1] > 0:
                            value += std * noise[b, noise_at[slots[q]] + rb[u]]
                        image[u] = value
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


def solve_direct(x, order, ranks, neighbours, weights, degree, part, counts, slots, noise, out,
                 threads: int = 1) -> int:
    """Run the direct kernel for the levels `counts` (any order; slots[p]: level p's index in
    out) on numpy arrays: x (B, F), order and ranks (B, F) int64, the grid's neighbours (F, 8)
    int64, weights (F, 8) and degree (F,) in x's dtype, part (F,) from separator_parts, noise
    None or (draws (B, N), starts (P_all,), std): the j-th removed pixel of level slot s gets
    std * draws[b, starts[s] + j]; out (B, P_all, F); split over `threads` threads. Returns 0,
    or (a system not positive definite) the 1-based position of the failing pixel in the
    elimination order (left half, right half, separator), as potrf's info."""
    counts = np.asarray(counts, dtype=np.int64)
    by_count = np.argsort(counts, kind="stable")
    counts, slots = counts[by_count], np.asarray(slots, dtype=np.int64)[by_count]
    k, P = max(int(counts[-1]), 1), len(counts)
    height = max(int((part == 2).sum()), 1)  # the separator's length
    kernel, groups = direct_kernel(x.dtype.name), _groups(P)
    draws, starts, std = _noise(noise, x, out)

    def solve_samples(start: int, stop: int) -> int:
        real = x.dtype
        scratch = (np.empty((2, k * k), real), np.empty((2, height * k), real),
                   np.empty((2, P * k), real), np.empty((2, P * height), real),
                   np.empty((P, height)), np.empty(P * height, real),
                   np.empty((height, height)), np.empty((height, height)),
                   np.empty(height * height))
        work, coupling, sol, through, sol_s, u_s, gram, a_ss, s_mat = scratch
        return int(kernel(x[start:stop], order[start:stop], ranks[start:stop], neighbours, weights,
                          degree, part, counts, slots, groups, draws[start:stop], starts, std,
                          out[start:stop], work, coupling, sol, through, sol_s, u_s, gram, a_ss,
                          s_mat))

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
