"""Distance to the exact attributions of a linear model.

For `mnist_logreg` (logits z = W x + b) the attribution of pixel i to class c is known in closed
form: W[c, i] * x_i (what input x gradient, integrated gradients with a black baseline, occlusion
of single pixels with zero, and exact Shapley values with a zero reference all equal). An explainer
that cannot recover it on the one model where the truth is known is not to be trusted elsewhere.
"""

from __future__ import annotations

import torch
from torch import Tensor

from explainbench.metrics import similarity
from explainbench.metrics.base import MetricResult


def exact_linear_attributions(model, inputs: Tensor, targets: Tensor) -> Tensor:
    weight = getattr(model, "weight", None)
    if weight is None or not isinstance(weight, Tensor) or weight.dim() != 2:
        name = getattr(model, "name", type(model).__name__)
        raise ValueError(f"linear_ground_truth needs a linear model such as mnist_logreg; {name} "
                         "has no closed-form attributions")
    return weight[targets].view(len(inputs), *inputs.shape[2:]) * inputs[:, 0]


def linear_ground_truth(model, task, inputs: Tensor, attributions: Tensor, targets: Tensor, *,
                        similarity_measure: str = "spearman") -> MetricResult:
    """Similarity to W[c] * x per sample: `spearman` (rank agreement, signed) or `cosine`."""
    exact = exact_linear_attributions(model, inputs, targets)
    valid = task.feature_mask(inputs)
    if similarity_measure == "spearman":
        return MetricResult(similarity.spearman(attributions, exact, valid))
    if similarity_measure == "cosine":
        a, b = attributions.flatten(1).double(), exact.flatten(1).double()
        return MetricResult(torch.nn.functional.cosine_similarity(a, b, dim=1, eps=1e-300))
    raise ValueError(f"unknown similarity_measure {similarity_measure!r}; valid: spearman, cosine")
