"""Kernel SHAP, batched (Lundberg & Lee 2017, arXiv:1705.07874): Captum's KernelShap for a whole
batch of inputs at once.

The same explanation as the `kernel_shap` wrapper (`explainers.perturbation.KernelShap`):
- features: the wrapper's superpixels for images (`segmentation`), word positions for text;
- switched-off features: the wrapper's baselines, black pixels (zero substrate) and [MASK] words;
- coalitions, `n_samples` per input, as Captum's `kernel_shap_perturb_generator`: first all on,
  then all off, then coalitions of k features with P(k) proportional to (M - 1) / (k (M - k)),
  k = 1..M-1, the k features uniform among the subsets of that size (Captum keeps the k largest of
  M standard normal draws). Sampling k with the Shapley kernel's total mass per size is what
  makes the remaining weights uniform;
- weights as `kernel_shap_similarity_kernel`: 1e6 for the all-on and all-off coalitions (Captum's
  `inf_weight`, which pins the fit to f(x) and f(baseline)), 1 for every other;
- explained quantity: the target logit (the wrapper hands Captum the model itself);
- regression: Captum's default interpretable model, sklearn LinearRegression with an intercept,
  weighted: the minimum-norm least-squares solution (singular values below 1e-6 of the largest
  dropped), which matters when n_samples <= M; Captum fits it in float32, we in float64.

One difference on purpose: Captum raises on an input with a single feature (its size
distribution is 0/0); here that feature gets f(x) - f(baseline), its exact Shapley value (every
coalition beyond the first two is all on).

Randomness: as in `explainers.lime_batched`, one set of CPU draws from `seed`, each input taking
the first M columns, so an input's coalitions depend on the seed and M alone (the wrapper seeds
torch's global generator with `seed` for every input).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from explainbench.core.params import Int
from explainbench.explainers.base import seeded_generator
from explainbench.core.superpixels import SEGMENTATION
from explainbench.explainers.surrogate import BatchedSurrogate, design_by_count, ranks, weighted_linear_fit

INF_WEIGHT = 1e6  # captum.attr.KernelShap.inf_weight
LSTSQ_RCOND = 1e-6  # sklearn LinearRegression(tol=1e-6) -> scipy.linalg.lstsq(cond=tol)


def coalition_sizes(m: int, uniform: Tensor) -> Tensor:
    """Coalition sizes k in 1..m-1 with P(k) proportional to (m - 1) / (k (m - k)) (Captum's
    `num_select_distribution`), by inverting its CDF at `uniform` (n,) float64 draws."""
    k = torch.arange(1, m, dtype=torch.float64)
    cdf = torch.cumsum((m - 1) / (k * (m - k)), dim=0)
    cdf = cdf / cdf[-1]
    return torch.searchsorted(cdf, uniform, right=True).clamp(max=m - 2) + 1


def shapley_weights(design: Tensor, counts: Tensor) -> Tensor:
    """Captum's similarity (B, n) float64: INF_WEIGHT where no feature or every feature is on."""
    on = design.sum(dim=-1)
    full = (on == 0) | (on == counts[:, None])
    return torch.where(full, INF_WEIGHT, 1.0).double()


class KernelShapBatched(BatchedSurrogate):
    """Kernel SHAP for a whole batch: one set of forward passes, one batched least-squares solve.
    See the module docstring for how each step matches Captum's KernelShap."""

    name = "kernel_shap_batched"
    stochastic = True
    output_kind = "logit"
    parameters = {"n_samples": Int(500, 1, 100_000), "segmentation": SEGMENTATION}
    reference = "Lundberg & Lee 2017; captum.attr.KernelShap, batched"

    def design(self, task, counts: Tensor, seed: int) -> Tensor:
        """The (B, n, F) coalitions: all on, all off, then Shapley-kernel samples."""
        n = int(self.params["n_samples"])
        width = math.prod(task.feature_shape)
        g = seeded_generator(seed)
        size_draw = torch.rand(n, generator=g, dtype=torch.float64)
        order_draw = torch.randn(n, width, generator=g)

        def build(m: int) -> Tensor:
            rows = torch.ones(n, m, dtype=torch.bool)
            if m >= 2:
                size = coalition_sizes(m, size_draw)
                rows = ranks(order_draw[:, :m], descending=True) < size[:, None]
                rows[0] = True
            if n > 1:
                rows[1] = False
            return rows

        return design_by_count(counts, build)

    def fit(self, design, y, counts):
        return weighted_linear_fit(design, y, shapley_weights(design, counts), alpha=0.0,
                                   rcond=LSTSQ_RCOND)[0]
