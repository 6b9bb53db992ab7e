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
