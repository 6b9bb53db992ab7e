"""Complexity of an explanation: how concentrated is the attribution mass?

Both are computed on |attribution| over the sample's valid features, as Quantus does (abs=True):
  sparseness  Gini index of |a| (Chalasani et al. 2020)            higher = sparser
  complexity  entropy of |a| / sum |a| (Bhatt et al. 2020)        lower = simpler
Quantus adds 1e-7 to every value before the Gini index and 1e-12 inside the logarithm; we use the
exact definitions (the tests state the resulting difference, below 1e-4 relative).
"""

from __future__ import annotations

import torch
from torch import Tensor

from explainbench.metrics.base import MetricResult


def _magnitudes(task, inputs, attributions):
    valid = task.feature_mask(inputs).flatten(1)
    a = attributions.flatten(1).abs().to(torch.float64)
    return torch.where(valid, a, torch.zeros_like(a)), valid


def sparseness(model, task, inputs: Tensor, attributions: Tensor, targets: Tensor) -> MetricResult:
    """Gini index sum_i (2i - n - 1) a_(i) / (n sum a), a sorted ascending over the n valid
    features; 0 for a uniform map, (n-1)/n for a single feature."""
    a, valid = _magnitudes(task, inputs, attributions)
    n = valid.sum(1).to(torch.float64)
    # invalid features sort first as zeros; give valid ones their rank among the valid
    ordered = torch.sort(torch.where(valid, a, torch.full_like(a, -1.0)), dim=1).values
    F = a.shape[1]
    position = torch.arange(1, F + 1, device=a.device, dtype=torch.float64).expand_as(ordered)
    rank = position - (F - n)[:, None]  # 1..n for the valid ones (they are the last n)
    weights = torch.where(ordered >= 0, 2 * rank - n[:, None] - 1, torch.zeros_like(rank))
    total = a.sum(1)
    score = (weights * ordered.clamp(min=0)).sum(1) / (n * total).clamp(min=1e-300)
    return MetricResult(torch.where(total > 0, score, torch.zeros_like(score)))


def complexity(model, task, inputs: Tensor, attributions: Tensor, targets: Tensor) -> MetricResult:
    """Shannon entropy (nats) of the attribution mass distribution |a| / sum |a|."""
    a, valid = _magnitudes(task, inputs, attributions)
    p = a / a.sum(1, keepdim=True).clamp(min=1e-300)
    terms = torch.where(p > 0, -p * torch.log(p.clamp(min=1e-300)), torch.zeros_like(p))
    return MetricResult(terms.sum(1))
