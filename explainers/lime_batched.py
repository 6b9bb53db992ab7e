"""LIME, batched (Ribeiro et al. 2016, arXiv:1602.04938): the `lime` package's method, for a whole
batch of inputs at once.

The same explanation as the `lime` wrapper (`explainers.lime_package`), step by step:
- features: the wrapper's superpixels for images (`segmentation`: SLIC or the 4x4 grid), the
  review's word positions for text ([CLS] and [PAD] are never features);
- switched-off features: black pixels (LimeImageExplainer with hide_color=0: the zero substrate),
  [MASK] for words (LimeTextExplainer with bow=False, mask_string=[MASK]);
- patterns, `n_samples` per input, the first all on (the input itself):
  images as `LimeImageExplainer.data_labels`: every feature on or off with probability 1/2;
  text as `LimeTextExplainer.__data_labels_distances`: a number of words to switch off, uniform
  in 1..M, then which ones, uniform among the subsets of that size;
- explained quantity: the target class probability (the wrapper's classifier_fn returns softmax);
- kernel: sqrt(exp(-d^2 / 0.25^2)) of the cosine distance d between the pattern and the all-on
  vector (a zero pattern is at distance 1, as sklearn's cosine distance has it). The text
  explainer's default (distance x 100, width 25) is the same function;
- regression: sklearn Ridge(alpha=1) with an intercept, weighted by the kernel, over all features
  (the wrapper's feature_selection="none"), solved for the whole batch in one float64 call.

Randomness: a CPU generator seeded with `seed` draws one set of random numbers of the widest
possible design, and every input takes the first M columns (M = its feature count), so an
input's patterns depend on the seed and M alone, never on its batch (as in the wrapper, where each
input gets a fresh RandomState(seed)). The draws are torch's, so the patterns are not the lime
package's own: the two agree in distribution (tests/explainers/test_batched_surrogates.py).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from explainbench.core.params import Int
from explainbench.explainers.base import seeded_generator
from explainbench.core.superpixels import SEGMENTATION
from explainbench.explainers.surrogate import BatchedSurrogate, design_by_count, ranks, weighted_linear_fit

KERNEL_WIDTH = 0.25  # LimeImageExplainer's default; LimeTextExplainer's 25 on distances x 100
RIDGE_ALPHA = 1.0  # lime_base: Ridge(alpha=1, fit_intercept=True)


def lime_kernel(design: Tensor, counts: Tensor) -> Tensor:
    """lime's sample weights (B, n) float64: the exponential kernel of the cosine distance of each
    pattern to the all-on pattern of its input's M features, sqrt(k / M) for k features on."""
    on = design.sum(dim=-1).double()
    m = counts.double()[:, None].expand_as(on)
    similarity = torch.where(on > 0, on / (on.sqrt() * m.sqrt()), torch.zeros_like(on))
    distance = (1.0 - similarity).clamp(0.0, 2.0)
    return torch.sqrt(torch.exp(-(distance**2) / KERNEL_WIDTH**2))


class LimeBatched(BatchedSurrogate):
    """LIME for a whole batch: one set of forward passes, one batched ridge solve. See the module
    docstring for how each step matches the `lime` package."""

    name = "lime_batched"
    stochastic = True
    parameters = {"n_samples": Int(1000, 1, 100_000), "segmentation": SEGMENTATION}
    reference = "Ribeiro et al. 2016; lime.lime_image / lime.lime_text, batched"

    def design(self, task, counts: Tensor, seed: int) -> Tensor:
        """The (B, n, F) patterns; row 0 of every input is all on."""
        n = int(self.params["n_samples"])
        width = math.prod(task.feature_shape)  # the widest design any input can need
        g = seeded_generator(seed)
        if task.modality == "image":
            bits = torch.randint(0, 2, (n, width), generator=g, dtype=torch.uint8).bool()

            def build(m: int) -> Tensor:
                rows = bits[:, :m].clone()
                rows[0] = True
                return rows
        else:
            size_draw = torch.rand(n, generator=g, dtype=torch.float64)
            order_draw = torch.rand(n, width, generator=g)

            def build(m: int) -> Tensor:
                # switch off the `size` words with the smallest draws: a uniform subset of that size
                size = (size_draw * m).floor().long().clamp(max=max(m - 1, 0)) + 1
                rows = ranks(order_draw[:, :m]) >= size[:, None]
                rows[0] = True
                return rows

        return design_by_count(counts, build)

    def fit(self, design, y, counts):
        return weighted_linear_fit(design, y, lime_kernel(design, counts), alpha=RIDGE_ALPHA)[0]
