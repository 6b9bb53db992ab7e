"""Orders of features in which no position decides: every metric that orders features by their
attribution (removal curves, AOPC's regions, ERASER's bins, ROAD, the rule metrics' top-k) breaks
ties at random, and the top-k similarities take the expectation over random tie orders.

Why: gradient-times-input maps are exactly 0 on MNIST's black background (about 80 % of the
pixels). Broken by index, those ties remove the background row by row from the top, so a map that
carries no information at all (a constant) scored like a raster scan, not like the random control.

The random tie order of a sample depends on the metric's seed and on the sample itself (an exact
integer hash of its input's bits), never on its position in a chunk or batch, the batch size or
the device: counter-based hashing in 32-bit words (no generator state), the same numbers on CPU
and GPU. Two samples with identical inputs share their tie order, as they share everything else.
"""

from __future__ import annotations

import torch
from torch import Tensor

MASK32 = 0xFFFFFFFF
_GOLDEN = 0x9E3779B9  # 2^32 / phi: spreads consecutive counters


def _mix(x: Tensor) -> Tensor:
    """A 32-bit integer finaliser (Wang / Mueller's hash) on int64 tensors holding values below
    2^32; every product stays below 2^59, so nothing overflows."""
    x = ((x ^ (x >> 16)) * 0x45D9F3B) & MASK32
    x = ((x ^ (x >> 16)) * 0x45D9F3B) & MASK32
    return x ^ (x >> 16)


def sample_keys(inputs: Tensor) -> Tensor:
    """(B,) int64 in [0, 2^32): an exact hash of each input's values (their float32 or integer
    bits), the same for a sample wherever it is computed."""
    flat = inputs.reshape(len(inputs), -1)
    if flat.is_floating_point():
        bits = flat.float().contiguous().view(torch.int32).long() & MASK32
    else:
        bits = flat.long() & MASK32
    position = torch.arange(bits.shape[1], device=bits.device, dtype=torch.long)
    words = _mix(bits ^ _mix((position * _GOLDEN) & MASK32))
    return _mix(words.sum(dim=1) & MASK32)  # an integer sum: exact in any order


def tie_noise(inputs: Tensor, seed: int, n: int) -> Tensor:
    """(B, n) float64 in [0, 1): the tie-break values of n features of every sample, from the
    metric's seed and the sample (see the module docstring)."""
    key = _mix((sample_keys(inputs) ^ _mix(torch.tensor(int(seed) & MASK32))) & MASK32)
    feature = _mix((torch.arange(n, device=inputs.device, dtype=torch.long) * _GOLDEN) & MASK32)
    return _mix(key[:, None] ^ feature[None, :]).double() / 2.0**32


def tie_broken_order(scores: Tensor, descending: bool, noise: Tensor) -> Tensor:
    """(B, F) indices of the features by score; among equal scores by `noise` (both (B, F))."""
    by_noise = torch.argsort(noise, dim=1, stable=True)
    in_noise_order = scores.gather(1, by_noise)
    by_score = torch.sort(in_noise_order, dim=1, descending=descending, stable=True).indices
    return by_noise.gather(1, by_score)


def ranks_of(order: Tensor) -> Tensor:
    """The rank (0 = first) of every feature, from its order."""
    ranks = torch.empty_like(order)
    ranks.scatter_(1, order, torch.arange(order.shape[1], device=order.device).expand_as(order))
    return ranks


def tied_share(attributions: Tensor, valid: Tensor | None = None) -> Tensor:
    """(B,) float64: the share of a sample's (valid) features in its largest group of equal
    attributions (1 / n when no two are equal, 1 for a constant map): the largest block whose
    order only the tie-break decides (the zeros of a gradient-times-input map on the black
    background). Superpixel maps tie within each segment, a small block each."""
    a = attributions.flatten(1).double()
    valid = torch.ones_like(a, dtype=torch.bool) if valid is None else valid.flatten(1)
    a = torch.where(valid, a, torch.full_like(a, float("nan")))  # NaN sorts last, equals nothing
    values = torch.sort(a, dim=1).values
    n = valid.sum(dim=1)
    starts = torch.ones_like(values, dtype=torch.bool)
    starts[:, 1:] = values[:, 1:] != values[:, :-1]
    group = torch.cumsum(starts.long(), dim=1) - 1
    counted = (torch.arange(values.shape[1], device=a.device)[None] < n[:, None]).double()
    sizes = torch.zeros_like(values).scatter_add_(1, group, counted)
    return sizes.max(dim=1).values / n.clamp(min=1).double()
