"""Gradient explainers through Captum.

Images are differentiated at the pixels. Text is differentiated at the word embeddings (token ids
are not continuous), and the per-dimension attributions are reduced to one number per token:
summed for methods with a completeness property (input x gradient, integrated gradients) so that
token attributions still add up to the change in the output, and as an L2 norm for saliency.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from torch import Tensor, nn

from explainers.base import Explainer


@dataclass
class ContinuousInput:
    """What a gradient method differentiates, and how to map its attributions back to features."""

    x: Tensor  # (B, 1, 28, 28) pixels or (B, L, E) word embeddings
    forward: Callable[..., Tensor]
    extra_args: tuple  # additional_forward_args for Captum (the attention mask for text)
    modality: str

    def to_features(self, attributions: Tensor, reduce: str = "sum") -> Tensor:
        if self.modality == "image":
            return attributions[:, 0]
        if reduce == "norm":
            return attributions.norm(dim=-1)
        return attributions.sum(dim=-1)


def continuous_input(model: nn.Module, task, inputs: Tensor) -> ContinuousInput:
    if task.modality == "image":
        return ContinuousInput(inputs.detach().clone().requires_grad_(), model, (), "image")
    mask = model.attention_mask(inputs)
    embeds = model.embedding_layer(inputs).detach().requires_grad_()
    return ContinuousInput(embeds, model.forward_embeds, (mask,), "text")


def text_baseline(model: nn.Module, task, inputs: Tensor, kind: str) -> Tensor:
    """Embedding baseline for text: every word token replaced by [MASK] ("mask", the default: the
    models were trained with word dropout to [MASK], so it is the model's own "missing word") or
    by the zero vector ("zero"). [CLS] and [PAD] keep their embeddings, so their attribution is
    exactly zero and the attributions of the words sum to f(x) - f(baseline)."""
    embeds = model.embedding_layer(inputs).detach()
    words = task.feature_mask(inputs).unsqueeze(-1)
    if kind == "zero":
        replacement = torch.zeros_like(embeds)
    elif kind == "mask":
        mask_ids = torch.full_like(inputs, task.tokenizer.mask_id)
        replacement = model.embedding_layer(mask_ids).detach()
    else:
        raise ValueError(f"unknown text baseline {kind!r}; valid: mask, zero")
    return torch.where(words, replacement, embeds)


def image_baseline(inputs: Tensor, kind: str) -> Tensor:
    if kind == "zero":
        return torch.zeros_like(inputs)
    raise ValueError(f"unknown image baseline {kind!r}; valid: zero")


def chunks(n: int, size: int):
    for start in range(0, n, max(1, size)):
        yield slice(start, min(n, start + size))


class Saliency(Explainer):
    """Vanilla gradient (Simonyan et al. 2014, arXiv:1312.6034): |d f_c / d x| per pixel; for text
    the L2 norm of the gradient of each token's embedding."""

    name = "saliency"
    needs_gradients = True
    reference = "Simonyan et al. 2014; captum.attr.Saliency"

    def attribute(self, model, task, inputs, targets, *, seed):
        from captum.attr import Saliency as CaptumSaliency

        out = []
        for part in chunks(len(inputs), self.batch_size):
            ci = continuous_input(model, task, inputs[part])
            grads = CaptumSaliency(ci.forward).attribute(
                ci.x, target=targets[part], abs=ci.modality == "image",
                additional_forward_args=ci.extra_args or None,
            )
            out.append(ci.to_features(grads, reduce="norm"))
        return torch.cat(out)


class IntegratedGradients(Explainer):
    """Integrated gradients (Sundararajan et al. 2017, arXiv:1703.01365) with Captum's
    Gauss-Legendre rule. Baseline: a black image; for text, every word's embedding replaced by
    [MASK]'s (see `text_baseline`). Attributions sum to f(x) - f(baseline) up to the quadrature
    error, which `n_steps` controls."""

    name = "integrated_gradients"
    needs_gradients = True
    defaults = {"n_steps": 50, "method": "gausslegendre", "baseline": "default"}
    reference = "Sundararajan et al. 2017; captum.attr.IntegratedGradients"

    def baseline(self, model, task, inputs):
        kind = self.params["baseline"]
        if task.modality == "image":
            return image_baseline(inputs, "zero" if kind == "default" else kind)
        return text_baseline(model, task, inputs, "mask" if kind == "default" else kind)

    def attribute(self, model, task, inputs, targets, *, seed):
        from captum.attr import IntegratedGradients as CaptumIG

        n_steps = int(self.params["n_steps"])
        per_chunk = max(1, self.batch_size // n_steps)  # samples whose steps fit one forward batch
        out = []
        for part in chunks(len(inputs), per_chunk):
            ci = continuous_input(model, task, inputs[part])
            attr = CaptumIG(ci.forward).attribute(
                ci.x, baselines=self.baseline(model, task, inputs[part]), target=targets[part],
                n_steps=n_steps, method=self.params["method"],
                additional_forward_args=ci.extra_args or None,
                internal_batch_size=max(self.batch_size, len(ci.x)),
            )
            out.append(ci.to_features(attr, reduce="sum"))
        return torch.cat(out)
