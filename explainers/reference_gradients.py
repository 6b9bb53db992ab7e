"""Reference-based gradient explainers through Captum: DeepLift and the two SHAP approximations
that average over a background set (DeepLiftShap, GradientShap).

All explain the target logit, so on the linear model z = W x + b they have closed forms:
DeepLift with reference r gives W[c] * (x - r); DeepLiftShap and GradientShap with background
X_b give W[c] * (x - mean(X_b)) (exactly, resp. in expectation over GradientShap's samples).
"""

from __future__ import annotations

import torch
from torch import nn

from explainbench.core.params import Choice, Float, Int
from explainbench.explainers.background import (BACKGROUND, IMAGE_ONLY, PER_SAMPLE, background_size,
                                               check_strategy, select_background)
from explainbench.explainers.base import Explainer, sample_generator, sample_keys
from explainbench.explainers.gradients import (EmbeddingModel, chunks, continuous_input, default_baseline,
                                  gradients, samples_per_chunk, words_only_input)
from explainbench.explainers.quiet import CAPTUM_HOOKS, quiet


def _has_module(model: nn.Module, kinds: tuple[type, ...]) -> bool:
    return any(isinstance(m, kinds) for m in model.modules())


class DeepLift(Explainer):
    """DeepLift with the rescale rule (Shrikumar et al. 2017, arXiv:1704.02685; Ancona et al.
    2018 for the form Captum implements). Reference: a black image; for text every word's
    embedding replaced by [MASK]'s. Attributions sum to f(x) - f(reference) exactly when every
    nonlinearity is a module DeepLift has a rule for.

    Text: Captum has no rule for nn.LSTM (its sigmoids and tanhs live inside the fused module) nor
    for the transformer's functional softmax, GELU module and LayerNorm, which it backpropagates
    as plain gradients; the attributions then do not sum to the output change (measured on the ci
    models: the summation error is a large fraction of |f(x) - f(r)|), so `supports` refuses
    recurrent and attention models; a text model built from supported modules would be explained.
    """

    name = "deeplift"
    needs_gradients = True
    parameters = {"baseline": Choice("default", ("default", "zero", "mask"))}
    reference = "Shrikumar et al. 2017; captum.attr.DeepLift"

    def cost(self, modality, features):
        return 2.0, 2.0  # the input and its reference in one batch

    def supports(self, model, task):
        reason = super().supports(model, task)
        if reason or task.modality == "image":
            return reason
        if _has_module(model, (nn.LSTM, nn.GRU, nn.RNN)):
            return ("deeplift has no rule for recurrent cells (nn.LSTM hides its gates inside "
                    "the fused module); attributions would not sum to the output change")
        if _has_module(model, (nn.LayerNorm,)) or hasattr(model, "attentions"):
            return ("deeplift has no rule for the transformer's functional softmax, GELU and "
                    "LayerNorm; Captum backpropagates them as gradients and the attributions do "
                    "not sum to the output change")
        return None

    def attribute(self, model, task, inputs, targets, *, seed):
        from captum.attr import DeepLift as CaptumDeepLift

        explainer = CaptumDeepLift(model if task.modality == "image" else EmbeddingModel(model))
        out = []
        # DeepLift runs the inputs and their references in one batch.
        for part in chunks(len(inputs), samples_per_chunk(self.batch_size, 2)):
            ci = continuous_input(model, task, inputs[part])
            with quiet(*CAPTUM_HOOKS):
                attr = explainer.attribute(
                    ci.x, baselines=default_baseline(model, task, inputs[part],
                                                     self.params["baseline"]),
                    target=targets[part], additional_forward_args=ci.extra_args or None)
            out.append(ci.to_features(attr, reduce="sum"))
        return torch.cat(out)


class BackgroundExplainer(Explainer):
    """Shared by the explainers that average over a background set drawn with the seed."""

    stochastic = True  # the background is a seeded draw from the training split
    needs_background = True

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        check_strategy(self.params["background"], self.params["background_size"], who=self.name)

    def supports(self, model, task):
        reason = super().supports(model, task)
        if reason is None and self.params["background"] in IMAGE_ONLY and task.modality == "text":
            return f"background {self.params['background']!r} is defined for images only"
        return reason

    def explain_with_records(self, model, task, inputs, targets=None, *, seed=0,
                             sample_ids=None):
        if self.params["background"] not in PER_SAMPLE:
            return super().explain_with_records(model, task, inputs, targets, seed=seed,
                                                sample_ids=sample_ids)
        # A reference derived from each sample (its blurred copy): the libraries take one
        # background set per call, so each sample is explained against its own. (Here, not in
        # `explain`: the runner calls explain_with_records, and `explain` goes through it.)
        keys = sample_keys(inputs, sample_ids)
        parts = [super(BackgroundExplainer, self).explain_with_records(
            model, task, inputs[i : i + 1], None if targets is None else targets[i : i + 1],
            seed=seed, sample_ids=keys[i : i + 1])[0] for i in range(len(inputs))]
        return torch.cat(parts), {}

    def references(self) -> float:
        """References each sample is explained against: the background's size (blur: its own)."""
        return 1.0 if self.params["background"] in PER_SAMPLE else float(self.params["background_size"])

    def background(self, task, inputs, seed):
        return select_background(task, self.params["background_size"], self.params["background"],
                                 seed, inputs=inputs).to(inputs.device)


class DeepLiftShap(BackgroundExplainer):
    """DeepLiftShap (Lundberg & Lee 2017, arXiv:1705.07874): DeepLift against every reference of a
    background set, averaged. Images only, like DeepLift on the text models (see `DeepLift`)."""

    name = "deeplift_shap"
    modalities = frozenset({"image"})
    needs_gradients = True
    parameters = {"background": BACKGROUND, "background_size": background_size(100)}
    reference = "Lundberg & Lee 2017; captum.attr.DeepLiftShap"

    def cost(self, modality, features):
        return 2.0 * self.references(), 2.0 * self.references()  # input and reference, per reference

    def attribute(self, model, task, inputs, targets, *, seed):
        from captum.attr import DeepLift as CaptumDeepLift
        from captum.attr import DeepLiftShap as CaptumDeepLiftShap

        background = self.background(task, inputs, seed)
        if len(background) == 1:
            # Captum's DeepLiftShap refuses a single reference; against one it is DeepLift.
            explainer = CaptumDeepLift(model)
            background = background.expand(len(inputs), *background.shape[1:])
            with quiet(*CAPTUM_HOOKS):
                attr = torch.cat([explainer.attribute(
                    inputs[part].detach().clone().requires_grad_(), baselines=background[part],
                    target=targets[part])
                    for part in chunks(len(inputs), samples_per_chunk(self.batch_size, 2))])
            return attr[:, 0]
        explainer = CaptumDeepLiftShap(model)
        out = []
        # Each sample is run against every reference, twice (input and reference side).
        per_chunk = samples_per_chunk(self.batch_size, 2 * len(background))
        for part in chunks(len(inputs), per_chunk):
            x = inputs[part].detach().clone().requires_grad_()
            with quiet(*CAPTUM_HOOKS):
                attr = explainer.attribute(x, baselines=background, target=targets[part])
            out.append(attr[:, 0])
        return torch.cat(out)


class GradientShap(BackgroundExplainer):
    """GradientShap (Lundberg & Lee 2017, arXiv:1705.07874; expected gradients, Erion et al.
    2021): for each of `n_samples` draws, a reference r from the background, a ~ U(0, 1) and
    noise e ~ N(0, stdevs^2) on the input, the point r + a (x + e - r) contributes
    grad f(point) * (x + e - r); the mean converges to W[c] * (x - mean(X_b)) on a linear model.
    Text references are background reviews at the word embeddings, with [CLS] and [PAD] kept at
    the input's own (see `words_only_input`).

    The computation of captum.attr.GradientShap (references drawn uniformly with replacement,
    its noise tunnel's Gaussian on the input), except that each sample draws its references,
    points and noise from its own generator (seed, sample id) instead of numpy's and torch's
    global ones, so that its explanation does not depend on its neighbours; the gradients of all
    draws go through Captum's Saliency in batches. The background set itself is drawn from the
    seed alone, the same for every sample."""

    name = "gradient_shap"
    needs_gradients = True
    parameters = {"n_samples": Int(50, 1, 10_000), "stdevs": Float(0.0, 0),
                  "background": BACKGROUND, "background_size": background_size(100)}
    reference = "Lundberg & Lee 2017; captum.attr.GradientShap"

    def cost(self, modality, features):
        return float(self.params["n_samples"]), float(self.params["n_samples"])

    def attribute(self, model, task, inputs, targets, *, seed, sample_ids):
        background = self.background(task, inputs, seed)
        if task.modality == "text":
            background = model.embedding_layer(background).detach()
        n, stdevs = int(self.params["n_samples"]), float(self.params["stdevs"])
        out = []
        for part in chunks(len(inputs), samples_per_chunk(self.batch_size, n)):
            ci = words_only_input(model, task, inputs[part])
            x = ci.x.detach()
            refs, alphas, noise = self.draws(sample_ids[part], seed, n, len(background),
                                             x.shape[1:] if stdevs > 0 else None)
            noisy = x[:, None].expand(-1, n, *x.shape[1:])  # (b, n, ...)
            if noise is not None:
                noisy = noisy + stdevs * noise.to(x)
            delta = noisy - background.to(x)[refs.to(x.device)]
            shape = (len(x), n) + (1,) * (x.dim() - 1)
            points = (noisy - (1 - alphas.to(x).view(shape)) * delta).flatten(0, 1)
            grads = gradients(ci, points, targets[part], n).view_as(delta)
            out.append(ci.to_features((grads * delta).mean(dim=1), reduce="sum"))
        return torch.cat(out)

    @staticmethod
    def draws(keys, seed: int, n: int, n_refs: int, shape):
        """Per sample, from its own generator: n reference indices, n alphas and (where `shape`
        is given: stdevs > 0) n noise draws of the input's shape."""
        refs, alphas, noise = [], [], []
        for key in keys:
            g = sample_generator(seed, key)
            refs.append(torch.randint(0, n_refs, (n,), generator=g))
            alphas.append(torch.rand(n, generator=g))
            if shape is not None:
                noise.append(torch.randn((n, *shape), generator=g))
        return torch.stack(refs), torch.stack(alphas), torch.stack(noise) if noise else None
