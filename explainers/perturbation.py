"""Perturbation explainers through Captum: occlusion, feature ablation and Kernel SHAP.

They explain the target logit by replacing features with a reference and watching it change:
black pixels for images (the `zero` substrate), [MASK] for text (the `mask` substrate, the
models' own "missing word"). Text is perturbed at the token ids; [CLS] and [PAD] get the input's
own ids as their reference, so perturbing them changes nothing and they are never features.
"""

from __future__ import annotations

import warnings

import torch
from torch import Tensor

from explainbench.explainers.base import Explainer, sample_seed
from explainbench.explainers.gradients import chunks
from explainbench.explainers.seeding import global_rng
from explainbench.core.params import Int, ParameterError
from explainbench.core.superpixels import SEGMENTATION, segment_batch


def reference(task, inputs: Tensor) -> Tensor:
    """What a removed feature becomes: 0 for pixels, [MASK] for word tokens."""
    if task.modality == "image":
        return torch.zeros_like(inputs)
    words = task.feature_mask(inputs)
    return torch.where(words, torch.full_like(inputs, task.tokenizer.mask_id), inputs)


def word_groups(task, inputs: Tensor) -> Tensor:
    """Feature groups (B, L) for text: word k of a review is group k; [CLS] and [PAD] join group 0
    (the first word), where they are inert because their reference is themselves. So a review of
    n words has exactly n groups, and no perturbation or regression weight is spent on padding."""
    words = task.feature_mask(inputs)
    return ((torch.cumsum(words.long(), dim=1) - 1).clamp(min=0) * words).long()


def _evaluations_per_call(batch_size: int, n_inputs: int) -> int:
    return max(1, batch_size // max(1, n_inputs))


class Occlusion(Explainer):
    """Occlusion (Zeiler & Fergus 2014, arXiv:1311.2901): slide a window over the input, replace it
    by the reference, and give every feature the mean output drop of the windows covering it.
    Defaults: 4x4-pixel windows at stride 2 for images; 3-token windows at stride 1 for text; the
    stride may not exceed the window."""

    name = "occlusion"
    parameters = {"window": Int("default", 1, 28, also=("default",)),
                  "stride": Int("default", 1, 28, also=("default",))}
    reference = "Zeiler & Fergus 2014; captum.attr.Occlusion"

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        window, stride = self.params["window"], self.params["stride"]
        if "default" not in (window, stride) and stride > window:
            raise ParameterError(f"explainer 'occlusion': stride {stride} is larger than the "
                                 f"window {window}; some features would never be occluded")

    def cost(self, modality, features):
        class _Task:
            pass

        fake = _Task()
        fake.modality = modality
        window, stride = self.shapes(fake)
        if modality == "image":
            per_side = -(-(28 - window[1]) // stride[1]) + 1
            return float(per_side**2 + 1), 0.0
        return float(max(1.0, -(-(features - window[0]) // stride[0]) + 1) + 1), 0.0

    def shapes(self, task):
        image = task.modality == "image"
        window = self.params["window"]
        stride = self.params["stride"]
        window = (4 if image else 3) if window == "default" else int(window)
        # the default stride never exceeds the window (a 1-pixel window slides by 1)
        stride = min(2 if image else 1, window) if stride == "default" else int(stride)
        if stride > window:
            raise ParameterError(f"explainer 'occlusion': stride {stride} is larger than the "
                                 f"window {window}; some features would never be occluded")
        if image:
            return (1, window, window), (1, stride, stride)
        return (window,), (stride,)

    def attribute(self, model, task, inputs, targets, *, seed):
        from captum.attr import Occlusion as CaptumOcclusion

        window, stride = self.shapes(task)
        explainer = CaptumOcclusion(model)
        out = []
        for part in chunks(len(inputs), self.batch_size):
            x = inputs[part]
            attr = explainer.attribute(
                x, sliding_window_shapes=window, strides=stride, baselines=reference(task, x),
                target=targets[part],
                perturbations_per_eval=_evaluations_per_call(self.batch_size, len(x)))
            out.append(attr[:, 0] if task.modality == "image" else attr)
        return torch.cat(out)


class FeatureAblation(Explainer):
    """Feature ablation: the output drop when one feature (a `patch` x `patch` block of pixels,
    default 1 = each pixel; one word token) is replaced by the reference, all others kept."""

    name = "feature_ablation"
    parameters = {"patch": Int(1, 1, 28, doc="side of a square block of pixels")}
    reference = "captum.attr.FeatureAblation"

    def cost(self, modality, features):
        if modality == "text":
            return features + 1.0, 0.0
        return float((-(-28 // int(self.params["patch"]))) ** 2 + 1), 0.0

    def groups(self, task, inputs):
        if task.modality == "text":
            return word_groups(task, inputs)
        patch = int(self.params["patch"])
        side = -(-28 // patch)
        rows = torch.arange(28, device=inputs.device) // patch
        cols = torch.arange(28, device=inputs.device) // patch
        return (rows[:, None] * side + cols[None, :]).view(1, 1, 28, 28)

    def attribute(self, model, task, inputs, targets, *, seed):
        from captum.attr import FeatureAblation as CaptumFeatureAblation

        explainer = CaptumFeatureAblation(model)
        out = []
        for part in chunks(len(inputs), self.batch_size):
            x = inputs[part]
            attr = explainer.attribute(
                x, baselines=reference(task, x), target=targets[part],
                feature_mask=self.groups(task, x),
                perturbations_per_eval=_evaluations_per_call(self.batch_size, len(x)))
            out.append(attr[:, 0] if task.modality == "image" else attr)
        return torch.cat(out)


class KernelShap(Explainer):
    """Kernel SHAP (Lundberg & Lee 2017, arXiv:1705.07874) through Captum: a weighted linear
    regression on `n_samples` coalitions drawn from the Shapley kernel. Features: superpixels for
    images (see `explainers.superpixels`; every pixel of a segment gets the segment's value), word
    tokens for text. Captum fits one regression per sample anyway, so samples are explained one at
    a time, each with its coalitions drawn from torch's global generator seeded with the sample's
    own seed (the cell's seed and the sample's id: its explanation does not depend on its batch);
    a sample's coalitions are evaluated in forward batches of `batch_size`."""

    name = "kernel_shap"
    stochastic = True
    parameters = {"n_samples": Int(500, 1, 100_000), "segmentation": SEGMENTATION}
    reference = "Lundberg & Lee 2017; captum.attr.KernelShap"

    def cost(self, modality, features):
        return float(self.params["n_samples"]), 0.0

    def groups(self, task, inputs):
        if task.modality == "text":
            return word_groups(task, inputs)
        return segment_batch(inputs, self.params["segmentation"]).unsqueeze(1)

    def attribute(self, model, task, inputs, targets, *, seed, sample_ids):
        from captum.attr import KernelShap as CaptumKernelShap

        explainer = CaptumKernelShap(model)
        groups = self.groups(task, inputs)
        baselines = reference(task, inputs)
        out = []
        for i in range(len(inputs)):  # one regression per sample (Captum loops the same way)
            own = sample_seed(seed, sample_ids[i])
            with global_rng(own, inputs.device), warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)
                attr = explainer.attribute(
                    inputs[i : i + 1], baselines=baselines[i : i + 1], target=targets[i : i + 1],
                    feature_mask=groups[i : i + 1], n_samples=int(self.params["n_samples"]),
                    perturbations_per_eval=self.batch_size)
            out.append(attr[:, 0] if task.modality == "image" else attr)
        return torch.cat(out)
