"""Background (reference) sets for the explainers that average over a distribution of baselines:
gradient_shap, deeplift_shap, shap_deep, shap_gradient, shap_kernel, and integrated_gradients with
`baseline: background`.

One function selects them, so that the study of how attributions depend on the background
(its size and how it is chosen) changes one place. Backgrounds are model-ready inputs drawn from
the task's training split, never from the samples being explained, except `blur`, which is the
explained sample itself, blurred.

  random      a uniform sample without replacement, drawn anew for every size (seeded by the
              seed and the size: a small background is not a prefix of a larger one, which
              would make the small one converge to the large one by construction)
  kmeans      shap.kmeans centroids (images) of a seeded sample of 20 x size training images
              (at most 10,000; shap rounds each centroid pixel to a value the data has); shap's
              cluster weights are dropped: every centroid counts once
  stratified  a class-balanced seeded sample (the slices' stratified selection), drawn anew for
              every size like `random`
  zeros       one reference: a black image, or a review whose every word is [MASK]
  blur        one reference per explained sample: that sample under the RISE blur (Gaussian,
              11 x 11, sigma 5); images only
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch
from torch import Tensor

from explainbench.core.errors import BenchError, UnknownNameError
from explainbench.core.params import Choice, Int
from explainbench.explainers.base import seeded_generator

STRATEGIES = ("random", "kmeans", "stratified", "zeros", "blur")
SIZE_ONE = ("zeros", "blur")  # strategies that define a single reference
PER_SAMPLE = ("blur",)  # the reference depends on the explained sample
IMAGE_ONLY = ("kmeans", "blur")
BACKGROUND = Choice("random", STRATEGIES, doc="how the background set is chosen")


def background_size(default: int) -> Int:
    return Int(default, 1, 60_000, doc="reference inputs in the background set")


def check_strategy(strategy: str, size: int, modality: str | None = None, who: str = "") -> None:
    if strategy not in STRATEGIES:
        raise UnknownNameError(f"background strategy{' of ' + who if who else ''}", strategy,
                               list(STRATEGIES))
    if strategy in SIZE_ONE and int(size) != 1:
        raise BenchError(f"background {strategy!r} is a single reference: set background_size 1, "
                         f"not {size}")
    if modality == "text" and strategy in IMAGE_ONLY:
        raise BenchError(f"background {strategy!r} is defined for images only (token ids cannot be "
                         "averaged or blurred); text backgrounds: random, stratified, zeros")


def select_background(task, size: int, strategy: str = "random", seed: int = 0,
                      inputs: Tensor | None = None) -> Tensor:
    """`size` model-ready inputs (CPU) for the background; for `blur`, one per row of `inputs`."""
    check_strategy(strategy, size, task.modality)
    size = int(size)
    if strategy == "blur":
        from explainbench.core.tasks import gaussian_blur

        return gaussian_blur(inputs.detach().cpu().float(), kernel_size=11, sigma=5.0)
    x, labels = task.train_split()
    if strategy == "zeros":
        if task.modality == "image":
            return torch.zeros_like(x[:1])
        return torch.full_like(x[:1], task.tokenizer.mask_id).index_fill_(1, torch.tensor([0]),
                                                                        task.tokenizer.cls_id)
    if not 0 < size <= len(x):
        raise BenchError(f"background size must be in 1..{len(x)}, got {size}")
    drawn = draw_seed(seed, size)
    if strategy == "random":
        return x[torch.randperm(len(x), generator=seeded_generator(drawn))[:size]]
    if strategy == "stratified":
        from explainbench.core.slices import stratified_ids

        return x[torch.as_tensor(stratified_ids(labels.numpy(), size, drawn))]
    return _kmeans(task.name, x, size, drawn)


def draw_seed(seed: int, size: int) -> int:
    """The seed of one background draw: every (seed, size) its own, so backgrounds of different
    sizes are independent draws, not prefixes of one permutation."""
    return (int(seed) * 1_000_003 + int(size)) % 2**63


def _kmeans(task_name: str, x: Tensor, size: int, seed: int) -> Tensor:
    key = (task_name, len(x), size, seed)
    return _kmeans_cached(key, x).clone()


@lru_cache(maxsize=32)
def _kmeans_cached(key, x: Tensor) -> Tensor:
    """Cached per (task, size, seed): every cell of a background study asks for the same set."""
    import shap

    _, n, size, seed = key
    pool = min(n, max(20 * size, 1000), 10_000)
    rows = torch.randperm(n, generator=seeded_generator(seed))[:pool]
    data = x[rows].flatten(1).double().numpy()
    centroids = shap.kmeans(data, size).data  # deterministic: sklearn KMeans(random_state=0)
    return torch.from_numpy(np.asarray(centroids, dtype=np.float32)).view(size, *x.shape[1:])
