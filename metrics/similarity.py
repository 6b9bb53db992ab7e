"""Similarity of two batches of attribution maps, per sample, over the valid features only.

These are the building blocks of stability (the same explainer under different seeds), agreement
(different explainers) and sanity (trained vs randomised model). All are batched over samples:
`a`, `b` are (B, *feature_shape), `valid` a bool mask of the same shape (text padding excluded).
"""

from __future__ import annotations

import torch
from torch import Tensor


def _flat(a: Tensor, valid: Tensor | None):
    a = a.flatten(1).to(torch.float64)
    valid = torch.ones_like(a, dtype=torch.bool) if valid is None else valid.flatten(1).to(a.device)
    return a, valid


def _identical(a: Tensor, b: Tensor, valid: Tensor | None) -> Tensor:
    """(B,) bool: the two maps are equal on every valid entry (their similarity is exactly 1)."""
    a, valid = _flat(a, valid)
    return ((a == b.flatten(1).to(torch.float64)) | ~valid).all(dim=1)


def average_ranks(a: Tensor, valid: Tensor | None = None) -> Tensor:
    """Ranks 1..n_valid of each row's valid entries, ties given their average rank (as
    scipy.stats.rankdata); invalid entries get rank 0."""
    a, valid = _flat(a, valid)
    x = torch.where(valid, a, torch.full_like(a, float("inf")))
    ordered = torch.sort(x, dim=1).values
    low = torch.searchsorted(ordered, x.contiguous(), right=False)
    high = torch.searchsorted(ordered, x.contiguous(), right=True)
    ranks = (low + high + 1).to(torch.float64) / 2.0
    return torch.where(valid, ranks, torch.zeros_like(ranks))


def pearson(a: Tensor, b: Tensor, valid: Tensor | None = None) -> Tensor:
    """Pearson correlation per row over the valid entries. Rows that are identical score exactly
    1; a constant row against a different one scores 0 (no rank information)."""
    a, valid = _flat(a, valid)
    b = b.flatten(1).to(torch.float64)
    w = valid.to(torch.float64)
    n = w.sum(dim=1).clamp(min=1)
    ca = (a - (a * w).sum(1, keepdim=True) / n[:, None]) * w
    cb = (b - (b * w).sum(1, keepdim=True) / n[:, None]) * w
    cov = (ca * cb).sum(1)
    denom = torch.sqrt((ca * ca).sum(1) * (cb * cb).sum(1))
    r = torch.where(denom > 0, cov / denom.clamp(min=1e-300), torch.zeros_like(cov))
    return torch.where(_identical(a, b, valid), torch.ones_like(r), r.clamp(-1.0, 1.0))


def spearman(a: Tensor, b: Tensor, valid: Tensor | None = None) -> Tensor:
    """Spearman rank correlation per row (Pearson of average ranks), as scipy.stats.spearmanr."""
    return pearson(average_ranks(a, valid), average_ranks(b, valid), valid)


def spearman_untied(a: Tensor, b: Tensor, valid: Tensor | None = None) -> Tensor:
    """Spearman's rho in expectation over random tie orders, each map's independent of the
    other's: the covariance of the average ranks over the variance of a permutation's ranks,
    (n^2 - 1) / 12, which random tie-breaking always gives. Without ties it is `spearman`; two
    maps that are both 0 on the same 80 % of the pixels are not made similar by those zeros (with
    average ranks, that shared block alone gives them a large correlation). Identical maps: 1."""
    ra, valid = _flat(average_ranks(a, valid), valid)
    rb = average_ranks(b, valid).flatten(1)
    w = valid.to(torch.float64)
    n = w.sum(dim=1)
    mean = (n + 1) / 2
    cov = (((ra - mean[:, None]) * (rb - mean[:, None])) * w).sum(1) / n.clamp(min=1)
    rho = cov / ((n * n - 1) / 12).clamp(min=1e-300)
    return torch.where(_identical(a, b, valid), torch.ones_like(rho), rho.clamp(-1.0, 1.0))


def kendall_tau(a: Tensor, b: Tensor, valid: Tensor | None = None, block: int = 16) -> Tensor:
    """Kendall's tau-b per row over the valid entries, as scipy.stats.kendalltau (its default,
    the variant Jain & Wallace 2019 report): (concordant - discordant pairs) / sqrt((n0 - t_a)
    (n0 - t_b)), n0 the pairs, t_a and t_b the pairs tied in a and in b. Computed on the
    (block, F, F) sign matrices, `block` rows at a time (text: 256 tokens, 1 MB a row).
    Identical rows score exactly 1; a constant row has no order and scores 0 (scipy: NaN)."""
    a, valid = _flat(a, valid)
    b = b.flatten(1).to(torch.float64)
    out = []
    for start in range(0, len(a), block):
        rows = slice(start, start + block)
        pair = valid[rows, :, None] & valid[rows, None, :]
        pair = torch.triu(pair, diagonal=1)  # each unordered pair once
        sa = torch.sign(a[rows, :, None] - a[rows, None, :])
        sb = torch.sign(b[rows, :, None] - b[rows, None, :])
        w = pair.to(torch.float64)
        n0 = w.sum((1, 2))
        untied_a = ((sa != 0) * w).sum((1, 2))
        untied_b = ((sb != 0) * w).sum((1, 2))
        num = (sa * sb * w).sum((1, 2))
        denom = torch.sqrt(untied_a * untied_b)
        tau = torch.where(denom > 0, num / denom.clamp(min=1e-300), torch.zeros_like(num))
        out.append(torch.where(n0 > 0, tau, torch.zeros_like(tau)))
    tau = torch.cat(out) if out else torch.zeros(0, dtype=torch.float64)
    return torch.where(_identical(a, b, valid), torch.ones_like(tau), tau.clamp(-1.0, 1.0))


def top_k_membership(a: Tensor, valid: Tensor | None, k_fraction: float) -> Tensor:
    """(B, F) float64: the probability that each entry is among the k = ceil(k_fraction * n_valid)
    of largest magnitude when ties are broken at random: 1 above the k-th magnitude, 0 below,
    and (places left) / (entries tied at the k-th magnitude) for those tied there. No position
    decides which of the tied entries make the top k."""
    a, valid = _flat(a, valid)
    k = torch.ceil(k_fraction * valid.sum(1).to(torch.float64)).long().clamp(min=1)
    score = torch.where(valid, a.abs(), torch.full_like(a, -1.0))
    kth = torch.sort(score, dim=1, descending=True).values.gather(
        1, (k - 1).clamp(max=score.shape[1] - 1)[:, None])
    above = (score > kth) & valid
    at = (score == kth) & valid
    left = (k[:, None] - above.sum(1, keepdim=True)).to(torch.float64)
    share = left / at.sum(1, keepdim=True).clamp(min=1).to(torch.float64)
    return above.to(torch.float64) + at.to(torch.float64) * share


def top_k_intersection(a: Tensor, b: Tensor, valid: Tensor | None = None,
                       k_fraction: float = 0.1) -> Tensor:
    """Share of the k most important features (by magnitude) that the two maps have in common,
    in expectation over random tie orders, each map's independent of the other's (two maps that
    tie on the same 80 % of zeros do not agree on which of them are important); identical maps
    agree exactly (1), as in `pearson`."""
    pa, pb = top_k_membership(a, valid, k_fraction), top_k_membership(b, valid, k_fraction)
    expected = (pa * pb).sum(1) / pa.sum(1).clamp(min=1e-12)
    return torch.where(_identical(a, b, valid), torch.ones_like(expected), expected)


def sign_agreement(a: Tensor, b: Tensor, valid: Tensor | None = None) -> Tensor:
    """Share of valid features whose attributions have the same sign (zero is its own sign)."""
    a, valid = _flat(a, valid)
    b = b.flatten(1).to(torch.float64)
    same = (torch.sign(a) == torch.sign(b)) & valid
    return same.sum(1).to(torch.float64) / valid.sum(1).clamp(min=1).to(torch.float64)


def ssim(a: Tensor, b: Tensor, valid: Tensor | None = None, win_size: int = 7, k1: float = 0.01,
         k2: float = 0.03) -> Tensor:
    """Structural similarity of 2-D maps (B, H, W), as skimage.metrics.structural_similarity with
    its defaults (uniform 7x7 window, sample covariance, mean over the window-valid region) and
    data_range = max - min over both maps, which is how Quantus calls it. Images only: every
    pixel is a feature, so `valid` is not used."""
    a, b = a.to(torch.float64), b.to(torch.float64)
    B = a.shape[0]
    both = torch.cat([a.reshape(B, -1), b.reshape(B, -1)], dim=1)
    data_range = (both.max(1).values - both.min(1).values).view(B, 1, 1, 1)
    x, y = a.unsqueeze(1), b.unsqueeze(1)
    pool = lambda t: torch.nn.functional.avg_pool2d(t, win_size, stride=1)  # noqa: E731
    np_ = win_size * win_size
    cov_norm = np_ / (np_ - 1)
    ux, uy = pool(x), pool(y)
    vx = cov_norm * (pool(x * x) - ux * ux)
    vy = cov_norm * (pool(y * y) - uy * uy)
    vxy = cov_norm * (pool(x * y) - ux * uy)
    c1, c2 = (k1 * data_range) ** 2, (k2 * data_range) ** 2
    s = ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux * ux + uy * uy + c1) * (vx + vy + c2))
    return s.mean(dim=(1, 2, 3))


def pairwise_mean(stack: Tensor, fn, valid: Tensor | None = None, **kwargs) -> Tensor:
    """Mean of fn over all unordered pairs of the K maps in `stack` (K, B, ...) -> (B,)."""
    K = stack.shape[0]
    if K < 2:
        raise ValueError("need at least two maps per sample")
    i, j = torch.triu_indices(K, K, offset=1)
    B = stack.shape[1]
    # every pair of every sample in one batched call
    a = stack[i].reshape(len(i) * B, *stack.shape[2:])
    b = stack[j].reshape(len(i) * B, *stack.shape[2:])
    v = None if valid is None else valid.unsqueeze(0).expand(len(i), *valid.shape).reshape(a.shape)
    return fn(a, b, v, **kwargs).view(len(i), B).mean(0)
