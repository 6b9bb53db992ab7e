"""Rule precision and coverage (Ribeiro, Singh & Guestrin 2018): any explanation read as the rule
"while these features are present, the prediction stays".

The rule of a sample is its top features: the `k` features of highest attribution among those the
explanation marks (nonzero), fewer when it marks fewer. Features are the interpretable features
of LIME and Anchor (core.surrogate.feature_groups): superpixels for images, where a
pixel map is first averaged over each superpixel (a superpixel-constant map such as Anchor's or
LIME's keeps its values), and words for text. An anchor's map is nonzero exactly on its own
features, so with k at least its size (the default k = 10 is above every anchor seen on
mnist_cnn and imdb_transformer; see the README) its rule is the anchor itself; a dense map gives
its k best features.

Perturbations: the distribution Anchor and LIME sample from, every feature switched off
independently with probability 1/2 (black pixels, [MASK] words, through `task.remove`). From
`n_samples` draws z per sample:
  rule_precision  the share of z with the rule's features forced on whose predicted class is
                  the target: P(prediction kept | rule present);
  rule_coverage   the share of z in which the rule's features are all on already:
                  P(rule present). Its expectation is exactly 2**-|rule| under this
                  distribution, so it measures the rule's size, as the paper's coverage does
                  here; the estimate is reported, not the closed form, to keep it the same
                  computation as Anchor's.
Both draw the same z from the metric's generator (seeded from the cell's seed), so a cell's
precision and coverage describe the same perturbations; precision costs n_samples forward
passes per sample, coverage none.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from explainbench.core.surrogate import evaluate, feature_groups
from explainbench.metrics.ordering import tie_broken_order, tie_noise
from explainbench.metrics.base import MetricResult


def feature_attributions(task, inputs: Tensor, attributions: Tensor, groups: Tensor,
                         width: int) -> Tensor:
    """(B, width) float64: each interpretable feature's mean attribution over its positions
    (positions that are not features, text [CLS] and padding, count for nothing)."""
    b = len(inputs)
    valid = task.feature_mask(inputs).reshape(b, -1).double()
    flat = groups.reshape(b, -1)
    sums = torch.zeros(b, width, dtype=torch.float64, device=inputs.device)
    sums.scatter_add_(1, flat, attributions.reshape(b, -1).double() * valid)
    sizes = torch.zeros_like(sums).scatter_add_(1, flat, valid)
    return torch.where(sizes > 0, sums / sizes.clamp(min=1), torch.zeros_like(sums))


def rule_features(task, inputs: Tensor, attributions: Tensor, k: int,
                  segmentation: str, seed: int = 0) -> tuple[Tensor, Tensor, Tensor]:
    """(rule (B, F) bool, groups, counts): the top-k marked features of every sample; features
    with equal values at the k-th place are chosen at random (metrics/ordering.py)."""
    groups, counts = feature_groups(task, inputs, segmentation)
    width = max(int(counts.max()), 1) if len(counts) else 1
    values = feature_attributions(task, inputs, attributions, groups, width)
    real = torch.arange(width, device=inputs.device)[None] < counts[:, None]
    marked = real & (values != 0)
    ranked = torch.where(marked, values, torch.full_like(values, float("-inf")))
    order = tie_broken_order(ranked.double(), True, tie_noise(inputs, seed, ranked.shape[1]))
    top = torch.zeros_like(marked)
    top.scatter_(1, order[:, :k], True)
    return top & marked, groups, counts


def _draws(task, rule: Tensor, n_samples: int, generator: torch.Generator) -> Tensor:
    """(1, n, F) bool: every feature on with probability 1/2. One block as wide as any sample's
    features can be, drawn on the CPU and shared by the samples (each takes its first columns),
    so a sample's draws depend on the generator only, never on the other samples of its chunk
    or on the device."""
    widest = math.prod(task.feature_shape)
    z = torch.randint(0, 2, (n_samples, widest), generator=generator, dtype=torch.uint8)
    return z[None, :, : rule.shape[1]].bool().to(rule.device)


def rule_coverage(model, task, inputs: Tensor, attributions: Tensor, targets: Tensor, *,
                  k: int = 10, n_samples: int = 1000, segmentation: str = "slic",
                  generator: torch.Generator | None = None, seed: int = 0) -> MetricResult:
    """Share of perturbations in which the rule's features are all present (module docstring)."""
    generator = generator or torch.Generator().manual_seed(0)
    rule, _, _ = rule_features(task, inputs, attributions, k, segmentation, seed)
    z = _draws(task, rule, n_samples, generator)
    covered = (z | ~rule[:, None]).all(dim=-1)
    return MetricResult(covered.double().mean(dim=1), extras={"rule_size": rule.sum(1).double()})


def rule_precision(model, task, inputs: Tensor, attributions: Tensor, targets: Tensor, *,
                   k: int = 10, n_samples: int = 1000, segmentation: str = "slic",
                   generator: torch.Generator | None = None,
                   batch_size: int = 256, seed: int = 0) -> MetricResult:
    """Share of perturbations with the rule's features kept whose prediction is the target."""
    generator = generator or torch.Generator().manual_seed(0)
    rule, groups, _ = rule_features(task, inputs, attributions, k, segmentation, seed)
    design = _draws(task, rule, n_samples, generator) | rule[:, None]
    kept = evaluate(model, task, inputs, targets, groups, design,
                    substrate="zero" if task.modality == "image" else "mask", output="kept",
                    batch_size=batch_size)
    return MetricResult(kept.mean(dim=1), extras={"rule_size": rule.sum(1).double()})
