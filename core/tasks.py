"""Tasks: one per modality. The one place that knows how to take features away from an input.

Every removal metric (deletion, insertion, AOPC, comprehensiveness, sufficiency, ROAD) calls
`Task.remove`, so each metric is written once for images and text.

Images: inputs are raw pixels (B, 1, 28, 28) in [0, 1]; a feature is a pixel, feature_shape (28, 28).
Text: inputs are token ids (B, L) from the project tokenizer; a feature is a token position,
feature_shape (L,). [CLS] and [PAD] positions are not features: they are never removed and carry
zero attribution.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from functools import cached_property, lru_cache

import torch
from torch import Tensor, nn

from explainbench.core.errors import UnknownNameError


class Task(ABC):
    name: str
    modality: str
    feature_shape: tuple[int, ...]
    num_classes: int
    substrates: tuple[str, ...]
    default_substrate: str

    def __init__(self, train: tuple[Tensor, Tensor] | None = None):
        self._train = train

    @abstractmethod
    def inputs(self, slice_) -> Tensor:
        """Model-ready inputs for the samples of a `core.slices.Slice`."""

    def train_split(self) -> tuple[Tensor, Tensor]:
        """Model-ready inputs and labels of the whole training split (CPU): where background
        sets, substrates and explanation-by-example draw from. Tests pass a synthetic one."""
        if self._train is None:
            self._train = dataset_tensors(self.name, "train")
        return self._train

    # Model evaluations per forward batch, by device type: what the runner uses unless told
    # otherwise. Measured here: the CNN peaks around 64-256 images on 2 CPU cores; a 256-token
    # review costs ~100x an image in activations, and the transformer runs 2x faster at 32 than
    # at 256 reviews per batch on the CPU (attention maps fall out of cache).
    default_batch_sizes: dict[str, int] = {"cpu": 256, "cuda": 4096}

    def default_batch_size(self, device) -> int:
        kind = torch.device(device).type
        return self.default_batch_sizes.get(kind, self.default_batch_sizes["cpu"])

    def forward(self, model: nn.Module, inputs: Tensor) -> Tensor:
        """Logits (B, C)."""
        return model(inputs)

    def probabilities(self, model: nn.Module, inputs: Tensor, batch_size: int = 256) -> Tensor:
        """Softmax probabilities (B, C) without gradients, in batches of `batch_size`."""
        with torch.no_grad():
            return torch.cat(
                [torch.softmax(self.forward(model, inputs[i : i + batch_size]), dim=-1)
                 for i in range(0, len(inputs), batch_size)]
            )

    @abstractmethod
    def feature_mask(self, inputs: Tensor) -> Tensor:
        """Bool (B, *feature_shape): the features an explanation ranks and a metric may remove."""

    @abstractmethod
    def remove(self, inputs: Tensor, keep: Tensor, substrate: str | None = None, *,
               generator: torch.Generator | None = None, fill: Tensor | None = None) -> Tensor:
        """Inputs with every feature where `keep` (B, *feature_shape) is False taken away.
        `fill`: what `substrate_fill` returned for these inputs, when the caller removes from the
        same inputs many times (so the blur is computed, and the noise drawn, once per sample)."""

    def substrate_fill(self, inputs: Tensor, substrate: str | None = None, *,
                       generator: torch.Generator | None = None) -> Tensor | None:
        """What removed features of each input become, where removal is a blend with a substrate
        (images); None where it is not (text: tokens are replaced or deleted)."""
        self.check_substrate(substrate)
        return None

    def check_substrate(self, substrate: str | None) -> str:
        substrate = substrate or self.default_substrate
        if substrate not in self.substrates:
            raise UnknownNameError(f"substrate for {self.name}", substrate, list(self.substrates))
        return substrate

    def check_keep(self, inputs: Tensor, keep: Tensor) -> Tensor:
        expected = (len(inputs), *self.feature_shape)
        if tuple(keep.shape) != expected:
            raise ValueError(f"keep mask has shape {tuple(keep.shape)}, expected {expected}")
        return keep.to(device=inputs.device, dtype=torch.bool)


class ImageTask(Task):
    """MNIST. Substrates: `zero` (black), `mean` (per-pixel mean of the training images),
    `blur` (Gaussian, 11x11, sigma 5: the RISE insertion substrate), `noise` (uniform in [0, 1])."""

    name = "mnist"
    modality = "image"
    feature_shape = (28, 28)
    num_classes = 10
    substrates = ("zero", "mean", "blur", "noise")
    default_substrate = "zero"

    def inputs(self, slice_) -> Tensor:
        return torch.from_numpy(slice_.images.astype("float32") / 255.0).unsqueeze(1)

    def feature_mask(self, inputs: Tensor) -> Tensor:
        return torch.ones((len(inputs), *self.feature_shape), dtype=torch.bool, device=inputs.device)

    @cached_property
    def train_mean(self) -> Tensor:
        """Per-pixel mean (28, 28) of the training images."""
        x, _ = self.train_split()
        return x.double().mean(dim=0)[0].float()

    def substrate_image(self, inputs: Tensor, substrate: str,
                        generator: torch.Generator | None = None) -> Tensor:
        if substrate == "zero":
            return torch.zeros_like(inputs)
        if substrate == "mean":
            return self.train_mean.to(inputs.device).expand_as(inputs)
        if substrate == "blur":
            return gaussian_blur(inputs, kernel_size=11, sigma=5.0)
        # noise: drawn on the CPU so that the same generator gives the same image on any device
        generator = generator or torch.Generator().manual_seed(0)
        return torch.rand(inputs.shape, generator=generator).to(inputs.device, inputs.dtype)

    def substrate_fill(self, inputs, substrate=None, *, generator=None):
        return self.substrate_image(inputs, self.check_substrate(substrate), generator)

    def remove(self, inputs, keep, substrate=None, *, generator=None, fill=None):
        substrate = self.check_substrate(substrate)
        keep = self.check_keep(inputs, keep).unsqueeze(1)
        if fill is None:
            fill = self.substrate_image(inputs, substrate, generator)
        return torch.where(keep, inputs, fill)


def gaussian_blur(images: Tensor, kernel_size: int, sigma: float) -> Tensor:
    """Separable Gaussian blur of (B, C, H, W) images with reflect padding."""
    half = kernel_size // 2
    x = torch.arange(kernel_size, dtype=images.dtype, device=images.device) - half
    k = torch.exp(-(x**2) / (2 * sigma**2))
    k = k / k.sum()
    c = images.shape[1]
    padded = nn.functional.pad(images, (half, half, half, half), mode="reflect")
    out = nn.functional.conv2d(padded, k.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    return nn.functional.conv2d(out, k.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)


class TextTask(Task):
    """IMDB with the project's word-level tokenizer. Substrates: `mask` (each removed word becomes
    [MASK], positions kept: the ERASER/BERT convention; the models were trained with word dropout
    to [MASK], so it is an input they know) and `pad` (removed words are deleted and the rest
    shifted left, i.e. true deletion: what is left is exactly the text without those words)."""

    name = "imdb"
    modality = "text"
    num_classes = 2
    substrates = ("mask", "pad")
    default_substrate = "mask"
    default_batch_sizes = {"cpu": 32, "cuda": 512}

    def __init__(self, tokenizer=None, train: tuple[Tensor, Tensor] | None = None):
        super().__init__(train)
        self._tokenizer = tokenizer

    @cached_property
    def tokenizer(self):
        if self._tokenizer is not None:
            return self._tokenizer
        from explainbench.core.tokenizer import load_tokenizer

        return load_tokenizer()

    @property
    def feature_shape(self) -> tuple[int, ...]:
        return (self.tokenizer.max_len,)

    def inputs(self, slice_) -> Tensor:
        return self.tokenizer.encode(slice_.texts)

    def feature_mask(self, inputs: Tensor) -> Tensor:
        return (inputs != self.tokenizer.pad_id) & (inputs != self.tokenizer.cls_id)

    def tokens(self, row: Tensor) -> list[str]:
        return self.tokenizer.words(row.detach().cpu())

    def remove(self, inputs, keep, substrate=None, *, generator=None, fill=None):
        substrate = self.check_substrate(substrate)
        drop = ~self.check_keep(inputs, keep) & self.feature_mask(inputs)
        if substrate == "mask":
            return inputs.masked_fill(drop, self.tokenizer.mask_id)
        # pad: stable-sort the dropped positions to the end, then blank them out.
        order = torch.sort(drop.to(torch.int8), dim=1, stable=True).indices
        compact = inputs.gather(1, order)
        n_left = (~drop).sum(dim=1, keepdim=True)
        positions = torch.arange(inputs.shape[1], device=inputs.device)
        return compact.masked_fill(positions >= n_left, self.tokenizer.pad_id)


TASKS = {"mnist": ImageTask, "imdb": TextTask}


@lru_cache(maxsize=None)
def get(name: str) -> Task:
    if name not in TASKS:
        raise UnknownNameError("task", name, list(TASKS))
    return TASKS[name]()


def dataset_tensors(task: str, split: str, limit: int | None = None) -> tuple[Tensor, Tensor]:
    """Inputs and labels of a split as model-ready tensors; `limit` takes a stratified prefix."""
    import numpy as np

    from explainbench.core import data
    from explainbench.core.slices import stratified_ids

    if task == "mnist":
        images, labels = data.load_mnist(split)
        idx = stratified_ids(labels, limit, seed=0) if limit else slice(None)
        x = images[idx].astype(np.float32)
        x /= 255.0  # in place: the 60,000 training images are 188 MB as float32
        x = torch.from_numpy(x).unsqueeze(1)
        return x, torch.from_numpy(labels[idx].copy())
    from explainbench.core.tokenizer import load_tokenizer

    texts, labels = data.load_imdb(split)
    if limit:
        idx = stratified_ids(labels, limit, seed=0)
        texts, labels = [texts[i] for i in idx], labels[idx]
    return load_tokenizer().encode(texts), torch.from_numpy(labels.copy())

