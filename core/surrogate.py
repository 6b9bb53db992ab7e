"""Interpretable features and their evaluation, shared by the surrogate explainers (LIME, Kernel
SHAP, Anchor: explainers/) and the rule metrics (metrics/rules.py), which must switch exactly the
same features on and off: so it lives below both.

- `feature_groups`: which interpretable feature every position belongs to, and how many each
  input has (the same superpixels as the `lime`/`kernel_shap` wrappers; the same word positions).
- `evaluate`: all inputs x all patterns through the model in forward batches of `batch_size` rows,
  switched-off features removed by `task.remove` (the zero substrate for pixels, [MASK] for words).
- `spread`: every position given its feature's value.
"""

from __future__ import annotations

import torch
from torch import Tensor

from explainbench.core.superpixels import segment_batch


def feature_groups(task, inputs: Tensor, segmentation: str) -> tuple[Tensor, Tensor]:
    """(groups (B, *feature_shape) long, counts (B,) long): the interpretable feature of every
    position and the number of features of every input. Images: superpixels (`segment_batch`,
    labels 0..S-1). Text: word k of a review is feature k; [CLS] and [PAD] positions get 0, which
    is harmless because `task.remove` never touches them."""
    if task.modality == "image":
        groups = segment_batch(inputs, segmentation)
        counts = groups.flatten(1).max(dim=1).values + 1
        return groups, counts
    words = task.feature_mask(inputs)
    groups = ((torch.cumsum(words.long(), dim=1) - 1).clamp(min=0) * words).long()
    return groups, words.sum(dim=1)


def evaluate(model, task, inputs: Tensor, targets: Tensor, groups: Tensor, design: Tensor, *,
             substrate: str, output: str, batch_size: int) -> Tensor:
    """The target's `output` ("probability" or "logit"; "kept": 1 where the predicted class is
    the target, else 0, as Anchor and the rule metrics count) for every input under every
    pattern, (B, n) float64. Rows are (input, pattern) pairs in input-major order, `batch_size`
    rows per forward; the perturbed inputs of one forward are built just before it, never all at
    once."""
    b_count, n, _ = design.shape
    flat_groups = groups.reshape(b_count, -1)
    total = b_count * n
    values = torch.empty(total, dtype=torch.float64, device=inputs.device)
    with torch.no_grad():
        for start in range(0, total, batch_size):
            rows = torch.arange(start, min(start + batch_size, total), device=inputs.device)
            b, j = rows // n, rows % n
            keep = design[b, j].gather(1, flat_groups[b]).view(len(rows), *task.feature_shape)
            logits = task.forward(model, task.remove(inputs[b], keep, substrate))
            if output == "kept":
                values[start : start + len(rows)] = (logits.argmax(dim=-1) == targets[b]).double()
                continue
            if output == "probability":
                logits = torch.softmax(logits, dim=-1)
            values[start : start + len(rows)] = logits.gather(1, targets[b, None])[:, 0].double()
    return values.view(b_count, n)


def spread(coef: Tensor, groups: Tensor, feature_shape: tuple[int, ...]) -> Tensor:
    """Every position gets its feature's coefficient: (B, F) -> (B, *feature_shape) float32."""
    b_count = len(coef)
    return coef.gather(1, groups.reshape(b_count, -1)).view(b_count, *feature_shape).float()
