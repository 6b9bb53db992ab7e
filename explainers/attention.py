"""Attention as explanation: what the transformer's classification token reads, or the weights of
a model's additive attention layer (Jain & Wallace's BiLSTM, `additive_attention`).

Neither method looks at the target class: they describe where the model looks, not what pushes
it towards a class (Jain & Wallace 2019 and Wiegreffe & Pinter 2019 debate whether that is an
explanation at all; the benchmark lets the metrics decide).
"""

from __future__ import annotations

import torch
from torch import Tensor

from explainbench.explainers.base import Explainer
from explainbench.explainers.gradients import chunks


class _AttentionExplainer(Explainer):
    modalities = frozenset({"text"})
    readable = "transformer models"  # the models whose attention it reads, for `supports`
    reads = "a transformer's attention layers"

    def cost(self, modality, features):
        return 1.0, 0.0

    def supports(self, model, task):
        reason = super().supports(model, task)
        if reason is None and not hasattr(model, "attentions"):
            reason = (f"{self.name} reads {self.reads}; {type(model).__name__} has none "
                      f"({self.readable} only)")
        return reason

    def attribute(self, model, task, inputs, targets, *, seed):
        out = []
        with torch.no_grad():
            for part in chunks(len(inputs), self.batch_size):
                layers = [a.mean(dim=1) for a in model.attentions(inputs[part])]  # heads averaged
                out.append(self.from_layers(layers))
        return torch.cat(out)

    def from_layers(self, layers: list[Tensor]) -> Tensor:
        raise NotImplementedError


class LastLayerAttention(_AttentionExplainer):
    """Attention of the last layer from [CLS] (position 0) to every token, averaged over heads;
    on a model with one additive attention layer over its states, that layer's weights."""

    name = "attention"
    reference = "Bahdanau et al. 2015; Jain & Wallace 2019"
    readable = "transformer models and models with additive attention"
    reads = "attention weights"

    def supports(self, model, task):
        if model is not None and hasattr(model, "additive_attention"):
            return Explainer.supports(self, model, task)
        return super().supports(model, task)

    def attribute(self, model, task, inputs, targets, *, seed):
        if not hasattr(model, "additive_attention"):
            return super().attribute(model, task, inputs, targets, seed=seed)
        with torch.no_grad():
            return torch.cat([model.additive_attention(inputs[part])
                              for part in chunks(len(inputs), self.batch_size)])

    def from_layers(self, layers):
        return layers[-1][:, 0, :]


def rollout(layers: list[Tensor], residual: float = 0.5) -> Tensor:
    """Attention rollout (Abnar & Zuidema 2020, arXiv:2005.00928, eq. 1): per layer the
    head-averaged attention with the residual connection, A' = (1 - r) A + r I, rows re-normalised
    to sum to 1; rolled out as A'_L ... A'_1 (how much each input token reaches each position at
    the top). Input: a list of (B, L, L) head-averaged attentions, first layer first."""
    eye = torch.eye(layers[0].shape[-1], device=layers[0].device, dtype=layers[0].dtype)
    result = None
    for attention in layers:
        a = (1.0 - residual) * attention + residual * eye
        a = a / a.sum(dim=-1, keepdim=True)
        result = a if result is None else a @ result
    return result


class AttentionRollout(_AttentionExplainer):
    """Attention rollout from [CLS] to every input token (see `rollout`)."""

    name = "attention_rollout"
    reference = "Abnar & Zuidema 2020"

    def from_layers(self, layers):
        return rollout(layers)[:, 0, :]
