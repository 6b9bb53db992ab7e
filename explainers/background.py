"""Background (reference) sets for the explainers that average over a distribution of baselines:
gradient_shap, deeplift_shap, shap_deep, shap_gradient, shap_kernel.

One function selects them, so that the study of how attributions depend on the background
(its size and how it is chosen) changes one place. Backgrounds are model-ready inputs drawn from
the task's training split, never from the samples being explained.
"""

from __future__ import annotations

import torch
from torch import Tensor

from bench.errors import UnknownNameError
from explainers.base import seeded_generator

STRATEGIES = ("random",)


def select_background(task, size: int, strategy: str = "random", seed: int = 0,
                      inputs: Tensor | None = None) -> Tensor:
    """`size` model-ready inputs (CPU) drawn from `task.train_split()`.

    random: a uniform sample without replacement, from a generator seeded with `seed`.
    `inputs` (the samples being explained) is for strategies that derive the background from
    them (e.g. a blurred copy); `random` ignores it.
    """
    if strategy not in STRATEGIES:
        raise UnknownNameError("background strategy", strategy, list(STRATEGIES))
    x, _ = task.train_split()
    size = int(size)
    if not 0 < size <= len(x):
        raise ValueError(f"background size must be in 1..{len(x)}, got {size}")
    order = torch.randperm(len(x), generator=seeded_generator(seed))
    return x[order[:size]]
