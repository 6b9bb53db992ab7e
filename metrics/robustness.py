"""Robustness of an explanation to small changes of the input.

Max-sensitivity (Yeh et al. 2019, arXiv:1901.09392) with the definition and defaults of
`captum.metrics.sensitivity_max`: the largest relative change of the explanation over
`n_perturb_samples` inputs drawn uniformly from the L-infinity ball of radius `perturb_radius`,

    max_j || e(x + d_j) - e(x) || / || e(x) ||     (Frobenius norm; ||e(x)|| = 0 counts as 1)

where e is the explainer itself, re-run through its own `explain` on the perturbed inputs with the
same targets and seed. Lower is better. Its category is robustness, not faithfulness: it asks how
much the explanation moves, not whether it reflects the model (a constant map is perfectly robust).

Images only: the ball is a continuous neighbourhood of the pixels; token ids have none, and the
explainers take ids, so there is no small perturbation to re-explain for text.
"""

from __future__ import annotations

import torch
from torch import Tensor

from explainbench.core.errors import BenchError
from explainbench.metrics.base import MetricResult


def max_sensitivity(model, task, inputs: Tensor, attributions: Tensor, targets: Tensor, *,
                    explainer=None, seed: int = 0, n_perturb_samples: int = 10,
                    perturb_radius: float = 0.02, norm_ord: str = "fro", batch_size: int = 256,
                    generator: torch.Generator | None = None) -> MetricResult:
    """Max-sensitivity as captum.metrics.sensitivity_max (see the module docstring); the
    explanations of the unperturbed inputs are the given `attributions`. extras: sensitivity
    (B, n) of every perturbation."""
    if task.modality != "image":
        raise BenchError(
            f"metric 'max_sensitivity' is defined for images only: it re-explains inputs drawn from "
            f"a small continuous ball around each input, and token ids ({task.name}) have none")
    if explainer is None:
        raise BenchError("metric 'max_sensitivity' re-explains perturbed inputs, so it needs the "
                         "explainer that made the attributions (bench score: --explainer NAME)")
    n = int(n_perturb_samples)
    if n < 1:
        raise ValueError(f"n_perturb_samples must be >= 1, got {n_perturb_samples}")
    B = len(inputs)
    radius = float(perturb_radius)
    # uniform in [-r, r), drawn on the CPU then moved: the same seed gives the same draws anywhere
    delta = (torch.rand((B, n, *inputs.shape[1:]), generator=generator) * 2 - 1) * radius
    perturbed = (inputs.unsqueeze(1) + delta.to(inputs.device, inputs.dtype)).flatten(0, 1)
    again = explainer.explain(model, task, perturbed, targets.repeat_interleave(n), seed=seed)
    change = again.reshape(B, n, -1) - attributions.reshape(B, 1, -1).to(again)
    change_norm = torch.norm(change.flatten(0, 1), p=norm_ord, dim=1).view(B, n)
    base = torch.norm(attributions.reshape(B, -1).float(), p=norm_ord, dim=1, keepdim=True)
    sensitivity = change_norm / torch.where(base == 0, torch.ones_like(base), base)
    return MetricResult(sensitivity.max(dim=1).values.double(), None, {"sensitivity": sensitivity})
