"""The shared engine of every removal metric: rank features by attribution, take away (or put back)
the top k of them through `Task.remove`, and read the target-class probability. Batched: all
(sample, step) pairs of a batch go through the model in forward batches of `batch_size`."""

from __future__ import annotations

import torch
from torch import Tensor


def feature_ranks(task, inputs: Tensor, attributions: Tensor, descending: bool = True):
    """Rank of each feature (0 = first to go) and the number of features per sample.

    Ties are broken by feature index (stable sort); positions that are not features (text [CLS]
    and padding) rank after every feature and are never touched.
    """
    valid = task.feature_mask(inputs).flatten(1)
    scores = attributions.flatten(1).to(torch.float64)
    fill = float("-inf") if descending else float("inf")
    scores = torch.where(valid, scores, torch.full_like(scores, fill))
    order = torch.sort(scores, dim=1, descending=descending, stable=True).indices
    ranks = torch.empty_like(order)
    ranks.scatter_(1, order, torch.arange(order.shape[1], device=order.device).expand_as(order))
    return ranks, valid.sum(dim=1)


def counts_for_fractions(n_features: Tensor, fractions: Tensor) -> Tensor:
    """(B, S): how many features each fraction means for each sample, rounded half up, so the
    fractions 0 and 1 are exactly none and all."""
    n = n_features.to(torch.float64).unsqueeze(1)
    return torch.floor(fractions.to(torch.float64).unsqueeze(0) * n + 0.5).long()


def target_probability(model, task, batch: Tensor, targets: Tensor) -> Tensor:
    logits = task.forward(model, batch)
    return torch.softmax(logits.float(), dim=-1).gather(1, targets.view(-1, 1)).squeeze(1)


@torch.no_grad()
def removal_curve(model, task, inputs: Tensor, ranks: Tensor, counts: Tensor, targets: Tensor, *,
                  substrate: str | None, insert: bool = False, batch_size: int = 256,
                  generator: torch.Generator | None = None) -> Tensor:
    """Target-class probability (B, S) after removing the `counts[b, s]` first-ranked features of
    sample b (or, with `insert`, keeping only them on the substrate)."""
    B, S = counts.shape
    flat_b = torch.arange(B, device=inputs.device).repeat_interleave(S)
    flat_k = counts.reshape(-1).to(inputs.device)
    out = torch.empty(B * S, device=inputs.device)
    for start in range(0, B * S, batch_size):
        sl = slice(start, min(B * S, start + batch_size))
        b, k = flat_b[sl], flat_k[sl]
        chosen = ranks[b] < k.unsqueeze(1)  # (n, F) the first k features of each row
        keep = chosen if insert else ~chosen
        keep = keep.view(len(b), *task.feature_shape)
        perturbed = task.remove(inputs[b], keep, substrate, generator=generator)
        out[sl] = target_probability(model, task, perturbed, targets[b])
    return out.view(B, S)
