"""Faithfulness: does removing what an explanation calls important change the model's output?

Each metric is a pure function over batched tensors on the model's device that returns per-sample
scores (and the curve where there is one), and takes features away only through `Task.remove`.
"""

from __future__ import annotations

import torch
from torch import Tensor

from metrics.base import MetricResult
from metrics.removal import counts_for_fractions, feature_ranks, removal_curve


def _fractions(steps: int, device) -> Tensor:
    if int(steps) < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    return torch.linspace(0.0, 1.0, int(steps) + 1, dtype=torch.float64, device=device)


def deletion(model, task, inputs: Tensor, attributions: Tensor, targets: Tensor, *,
             steps: int = 20, substrate: str | None = None, batch_size: int = 256,
             generator: torch.Generator | None = None) -> MetricResult:
    """Deletion (Petsiuk et al. 2018, RISE, arXiv:1806.07421): features are removed in order of
    decreasing attribution in `steps` equal increments; the curve is the target-class probability
    at removed fractions 0, 1/steps, ..., 1 and the score its trapezoid area on [0, 1].
    Lower is better: a faithful explanation makes the probability fall fast."""
    fractions = _fractions(steps, inputs.device)
    ranks, n = feature_ranks(task, inputs, attributions, descending=True)
    curve = removal_curve(model, task, inputs, ranks, counts_for_fractions(n, fractions), targets,
                          substrate=substrate, insert=False, batch_size=batch_size,
                          generator=generator)
    return MetricResult(torch.trapezoid(curve, dx=1.0 / int(steps), dim=1), curve)


def insertion(model, task, inputs: Tensor, attributions: Tensor, targets: Tensor, *,
              steps: int = 20, substrate: str | None = None, batch_size: int = 256,
              generator: torch.Generator | None = None) -> MetricResult:
    """Insertion (Petsiuk et al. 2018): start from the substrate alone and put features back in
    order of decreasing attribution; the score is the area under the probability curve.
    Higher is better."""
    fractions = _fractions(steps, inputs.device)
    ranks, n = feature_ranks(task, inputs, attributions, descending=True)
    curve = removal_curve(model, task, inputs, ranks, counts_for_fractions(n, fractions), targets,
                          substrate=substrate, insert=True, batch_size=batch_size,
                          generator=generator)
    return MetricResult(torch.trapezoid(curve, dx=1.0 / int(steps), dim=1), curve)
