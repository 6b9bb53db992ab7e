"""Stability across seeds: how much does an explanation move when only the seed changes?

Given the K explanations of the same samples under K seeds, stacked (K, B, *feature_shape), every
score is per sample and over the valid features:
  spearman  mean pairwise Spearman rank correlation (signed attributions)          1 = identical
  topk      mean pairwise intersection of the top 10% features by magnitude       1 = identical
  sign      mean pairwise share of features with the same sign                    1 = identical
  cv        mean per-feature coefficient of variation std_K(a) / |mean_K(a)|      0 = identical
            (over features whose |mean| is at least 1% of the sample's largest: the ratio is
            meaningless where the mean attribution is numerically zero)
A deterministic explainer scores exactly 1, 1, 1, 0.

Explanations that choose a set (Anchor's features, the ids of explanation by example) also get
  jaccard   mean pairwise Jaccard overlap |A & B| / |A | B| of the chosen sets   1 = identical
            (two empty sets, e.g. two empty anchors, are identical: 1)
"""

from __future__ import annotations

import torch
from torch import Tensor

from explainbench.metrics import similarity

STABILITY_METRICS = {  # name -> higher is better
    "stability_spearman": True,
    "stability_topk": True,
    "stability_sign": True,
    "stability_cv": False,
    "stability_jaccard": True,
}


def coefficient_of_variation(stack: Tensor, valid: Tensor | None = None,
                             min_relative_mean: float = 0.01) -> Tensor:
    K, B = stack.shape[:2]
    x = stack.reshape(K, B, -1).to(torch.float64)
    valid = torch.ones_like(x[0], dtype=torch.bool) if valid is None else valid.reshape(B, -1)
    mean = x.mean(0)
    std = x.std(0, unbiased=True)
    magnitude = mean.abs()
    largest = torch.where(valid, magnitude, torch.zeros_like(magnitude)).amax(1, keepdim=True)
    counted = valid & (magnitude >= min_relative_mean * largest) & (magnitude > 0)
    cv = torch.where(counted, std / magnitude.clamp(min=1e-300), torch.zeros_like(std))
    return cv.sum(1) / counted.sum(1).clamp(min=1)


def seed_stability(stack: Tensor, valid: Tensor | None = None, k_fraction: float = 0.1) -> dict[str, Tensor]:
    """{metric name: (B,) scores} for the K explanations in `stack` (K, B, *feature_shape)."""
    return {
        "stability_spearman": similarity.pairwise_mean(stack, similarity.spearman, valid),
        "stability_topk": similarity.pairwise_mean(stack, similarity.top_k_intersection, valid,
                                                   k_fraction=k_fraction),
        "stability_sign": similarity.pairwise_mean(stack, similarity.sign_agreement, valid),
        "stability_cv": coefficient_of_variation(stack, valid),
    }


def padded_sets(sets: list[Tensor]) -> Tensor:
    """(K, B, L) long: K tensors of ids (B, L_k), padded with -1 to the widest."""
    width = max(max(int(t.shape[1]) for t in sets), 1)
    return torch.stack([torch.nn.functional.pad(t.long(), (0, width - t.shape[1]), value=-1)
                        for t in sets])


def set_jaccard(stack: Tensor) -> Tensor:
    """(B,) mean pairwise Jaccard overlap of the K sets of every sample, given as ids
    (K, B, L) padded with -1 (ids within a set are distinct)."""
    K = stack.shape[0]
    valid = stack >= 0
    sizes = valid.sum(dim=2).double()  # (K, B)
    total = torch.zeros(stack.shape[1], dtype=torch.float64, device=stack.device)
    for i in range(K):
        for j in range(i + 1, K):
            same = (stack[i][:, :, None] == stack[j][:, None, :]) & valid[i][:, :, None]
            inter = same.any(dim=2).sum(dim=1).double()
            union = sizes[i] + sizes[j] - inter
            total += torch.where(union > 0, inter / union.clamp(min=1), torch.ones_like(union))
    return total / max(K * (K - 1) // 2, 1)
