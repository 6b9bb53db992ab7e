"""Jain & Wallace 2019's permutation test for a model with an additive attention layer: how much
does the output move when the attention weights are shuffled over the words? Their code
(github.com/successar/AttentionExplanation, model/Binary_Classification.py `permute_attn` and
Trainers/PlottingBC.py `plot_permutations`) draws 100 permutations of the weights over a review's
tokens (<SOS> and <EOS> kept in place), and reports per review the median over permutations of
|p_permuted - p|. Here [CLS] stays in place, the permutations come from the metric's seed and the
sample's content (metrics/ordering.py, so a review gets the same ones in any chunk), and the
probability is the explained class's (with two classes |Δp| is the same for either class).
"""

from __future__ import annotations

import torch
from torch import Tensor

from explainbench.metrics.ordering import tie_noise


def permuted_weights(weights: Tensor, valid: Tensor, inputs: Tensor, seed: int, n: int) -> Tensor:
    """(B, n, L): n permutations of each row's weights over its valid positions; the other
    positions keep theirs."""
    b, length = weights.shape
    noise = tie_noise(inputs, seed, n * length).view(b, n, length)
    keys = torch.where(valid[:, None, :], noise, torch.full_like(noise, 2.0))
    shuffled = torch.argsort(keys, dim=-1, stable=True)  # valid positions in random order first
    position = torch.arange(length, device=weights.device).expand(b, -1)
    in_order = torch.argsort(torch.where(valid, position, position + length), dim=-1)
    spread = weights[:, None, :].expand(b, n, length)
    out = torch.empty_like(spread)
    out.scatter_(2, in_order[:, None, :].expand(b, n, length), spread.gather(2, shuffled))
    return out


def permutation_effect(model, inputs: Tensor, targets: Tensor, valid: Tensor, seed: int,
                       n: int = 100) -> Tensor:
    """(B,) the median over n permutations of the attention weights of |p_permuted - p|, p the
    explained class's probability. `model` has `additive_attention` and
    `outputs_with_attention` (models/architectures.py LSTMAttentionClassifier)."""
    with torch.no_grad():
        weights = model.additive_attention(inputs)
        own = model.outputs_with_attention(inputs, weights[:, None, :])[:, 0]
        permuted = model.outputs_with_attention(inputs, permuted_weights(weights, valid, inputs,
                                                                         seed, n))
        p = torch.softmax(own.double(), -1).gather(1, targets.view(-1, 1))
        q = torch.softmax(permuted.double(), -1).gather(2, targets.view(-1, 1, 1).expand(-1, n, 1))
        return torch.quantile((q.squeeze(2) - p).abs(), 0.5, dim=1)  # as np.median
