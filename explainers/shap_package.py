"""SHAP explainers through the `shap` package (Lundberg & Lee 2017, arXiv:1705.07874).

Every explainer here explains the target logit. shap explains all outputs of the function it is
given and (since 0.45) returns them on the LAST axis; instead of computing all ten classes to
keep one, the samples are grouped by target class and each group is explained through a model
that returns only that class's logit (a loop over the classes present, not over samples). The
single-output axis is then dropped in `_values`, the one place that normalises shap's layout.

shap draws from numpy's global generator (GradientExplainer reseeds it with `rseed`,
KernelExplainer samples coalitions from it): the sampling explainers call shap once per sample,
under `global_rng` seeded with that sample's own seed (explainers.base.sample_seed: the cell's
seed and the sample's id), which restores the previous state afterwards.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor, nn

from explainbench.explainers.base import Explainer, sample_seed
from explainbench.explainers.reference_gradients import BackgroundExplainer
from explainbench.explainers.quiet import SHAP_DEEP, quiet
from explainbench.explainers.seeding import global_rng
from explainbench.core.params import Int
from explainbench.explainers.background import BACKGROUND, background_size
from explainbench.core.superpixels import SEGMENTATION, segment


class TargetLogit(nn.Module):
    """The model restricted to one class's logit, shaped (B, 1)."""

    def __init__(self, model: nn.Module, target: int):
        super().__init__()
        self.model, self.target = model, int(target)

    def forward(self, x):
        return self.model(x)[:, self.target : self.target + 1]


def by_target(targets: Tensor):
    """(class, positions) for every class among the targets."""
    for c in torch.unique(targets).tolist():
        yield int(c), (targets == c).nonzero().flatten()


def _values(values, n: int, feature_shape: tuple[int, ...]) -> np.ndarray:
    """shap's values for a single-output function -> (n, *feature_shape)."""
    values = np.asarray(values, dtype=np.float64)
    if values.shape[-1] == 1 and values.size == n * int(np.prod(feature_shape)):
        values = values[..., 0]
    return values.reshape(n, *feature_shape)


def _logits(model, task, x: Tensor, target: int, batch_size: int) -> Tensor:
    with torch.no_grad():
        return torch.cat([task.forward(model, x[i : i + batch_size])[:, target]
                          for i in range(0, len(x), batch_size)])


class ShapDeep(BackgroundExplainer):
    """shap.DeepExplainer: DeepLIFT multipliers averaged over a background set (DeepSHAP); shap
    checks that the values sum to f(x) - E[f(background)]. Images only (no DeepLIFT rules for the
    text models' LSTM cells or attention, see `explainers.reference_gradients.DeepLift`)."""

    name = "shap_deep"
    modalities = frozenset({"image"})
    needs_gradients = True
    parameters = {"background": BACKGROUND, "background_size": background_size(100)}
    reference = "Lundberg & Lee 2017; shap.DeepExplainer"

    def cost(self, modality, features):
        # each sample tiled against the background (input and reference side), plus shap's
        # expected value over the background once per class present, about one row per sample
        return 2.0 * self.references() + 1.0, 2.0 * self.references()

    def attribute(self, model, task, inputs, targets, *, seed):
        import shap

        background = self.background(task, inputs, seed)
        out = torch.zeros(len(inputs), *task.feature_shape, dtype=torch.float64)
        for c, rows in by_target(targets):
            with quiet(*SHAP_DEEP):
                explainer = shap.DeepExplainer(TargetLogit(model, c), background)
                values = explainer.shap_values(inputs[rows], check_additivity=True)
            out[rows.cpu()] = torch.from_numpy(_values(values, len(rows), task.feature_shape))
        return out


class ShapGradient(BackgroundExplainer):
    """shap.GradientExplainer (expected gradients, Erion et al. 2021): `n_samples` draws of a
    background reference r and a point r + a (x - r) per sample; converges to
    W[c] * (x - mean(X_b)) on a linear model. Images only, like GradientShap's pixel form."""

    name = "shap_gradient"
    modalities = frozenset({"image"})
    needs_gradients = True
    parameters = {"n_samples": Int(200, 1, 100_000), "background": BACKGROUND,
                  "background_size": background_size(100)}
    reference = "Erion et al. 2021; shap.GradientExplainer"

    def cost(self, modality, features):
        return float(self.params["n_samples"]) + 2.0, float(self.params["n_samples"])

    def attribute(self, model, task, inputs, targets, *, seed, sample_ids):
        import shap

        background = self.background(task, inputs, seed)
        out = torch.zeros(len(inputs), *task.feature_shape, dtype=torch.float64)
        for c, rows in by_target(targets):
            explainer = shap.GradientExplainer(TargetLogit(model, c), background,
                                               batch_size=self.batch_size)
            # shap draws one sample's references and points after another from numpy's global
            # generator: one call per sample, seeded with that sample's own seed, so a sample's
            # values do not depend on which others share its class in the batch.
            for r in rows.tolist():
                own = sample_seed(seed, sample_ids[r])
                with global_rng(own, inputs.device):
                    values = explainer.shap_values(inputs[r : r + 1],
                                                   nsamples=int(self.params["n_samples"]),
                                                   rseed=own % 10**6)
                out[r] = torch.from_numpy(_values(values, 1, task.feature_shape)[0])
        return out


class ShapKernel(BackgroundExplainer):
    """shap.KernelExplainer over superpixels (see `explainers.superpixels`), with a background
    from the training split: in the explainer's feature space a sample is the vector of its S
    segments, and "segment s switched off" takes that segment's pixels from a background image.
    Encoded as integers, the explained sample is all 0 and background row k is all k + 1; the
    model function assembles each coalition's image pixel by pixel from those sources. shap then
    averages over the background exactly as in tabular Kernel SHAP. One regression per sample
    (KernelExplainer's design); all coalitions x background images of a sample are evaluated in
    forward batches of `batch_size`."""

    name = "shap_kernel"
    modalities = frozenset({"image"})
    parameters = {"n_samples": Int(1000, 1, 100_000), "segmentation": SEGMENTATION,
                  "background": BACKGROUND, "background_size": background_size(10)}
    reference = "Lundberg & Lee 2017; shap.KernelExplainer"

    def cost(self, modality, features):
        # every coalition against every background row, and the background and sample alone
        return float(self.params["n_samples"]) * self.references() + self.references() + 1.0, 0.0

    def attribute(self, model, task, inputs, targets, *, seed, sample_ids):
        import shap

        background = self.background(task, inputs, seed)
        out = []
        for i in range(len(inputs)):  # one regression per sample (KernelExplainer's design)
            segments = segment(inputs[i, 0].detach().cpu().numpy(), self.params["segmentation"])
            n_segments = int(segments.max()) + 1
            sources = torch.cat([inputs[i : i + 1], background]).flatten(1)  # (1 + N_b, 784)
            pixel_segment = torch.from_numpy(segments.reshape(-1)).to(inputs.device)
            target = int(targets[i])

            def f(z: np.ndarray) -> np.ndarray:
                source = torch.as_tensor(z, device=inputs.device).long()[:, pixel_segment]
                images = sources.gather(0, source).view(-1, *inputs.shape[1:])
                return _logits(model, task, images, target, self.batch_size).cpu().numpy()

            references = np.repeat(np.arange(1, len(background) + 1)[:, None], n_segments, axis=1)
            with global_rng(sample_seed(seed, sample_ids[i]), inputs.device):
                explainer = shap.KernelExplainer(f, references)
                values = explainer.shap_values(np.zeros((1, n_segments)),
                                               nsamples=int(self.params["n_samples"]),
                                               l1_reg=False, silent=True)
            weights = _values(values, 1, (n_segments,))[0]
            out.append(torch.from_numpy(weights[segments]))
        return torch.stack(out)


class ShapPartition(Explainer):
    """shap's Partition explainer (Owen values over a hierarchy of features), `max_evals` model
    evaluations per sample. Images: shap.maskers.Image with masked pixels black (a fixed value;
    shap's blur and inpainting maskers need OpenCV). Text: shap.maskers.Text over the project
    tokenizer's words (see `word_tokenizer`), masked words replaced by the [MASK] id in place,
    so its features are exactly the word positions."""

    name = "shap_partition"
    parameters = {"max_evals": Int(500, 1, 100_000)}
    reference = "Lundberg & Lee 2017; shap.PartitionExplainer"

    def cost(self, modality, features):
        return float(self.params["max_evals"]), 0.0

    def attribute(self, model, task, inputs, targets, *, seed):
        if task.modality == "image":
            return self._images(model, task, inputs, targets)
        return self._texts(model, task, inputs, targets)

    def _explain(self, f, masker, data):
        import shap

        explainer = shap.PartitionExplainer(f, masker)
        return explainer(data, max_evals=int(self.params["max_evals"]),
                         batch_size=self.batch_size, silent=True).values

    def _images(self, model, task, inputs, targets):
        import shap

        masker = shap.maskers.Image(np.zeros((28, 28, 1)))
        out = torch.zeros(len(inputs), *task.feature_shape, dtype=torch.float64)
        for c, rows in by_target(targets):
            def f(x: np.ndarray, c=c) -> np.ndarray:
                images = torch.from_numpy(np.asarray(x, dtype=np.float32)).permute(0, 3, 1, 2)
                return _logits(model, task, images.to(inputs.device), c, self.batch_size).cpu().numpy()

            data = inputs[rows].permute(0, 2, 3, 1).cpu().numpy()
            values = self._explain(f, masker, data)
            out[rows.cpu()] = torch.from_numpy(_values(values, len(rows), task.feature_shape))
        return out

    def _texts(self, model, task, inputs, targets):
        import shap

        tok = task.tokenizer
        masker = shap.maskers.Text(word_tokenizer(tok), mask_token=tok.mask_id,
                                   collapse_mask_token=False, output_type="token_ids")
        words = task.feature_mask(inputs)
        texts = [" ".join(task.tokens(row[keep])) for row, keep in zip(inputs, words)]
        length = task.feature_shape[0]
        out = torch.zeros(len(inputs), length, dtype=torch.float64)
        for c, rows in by_target(targets):
            def f(ids: np.ndarray, c=c) -> np.ndarray:
                ids = torch.as_tensor(np.asarray(ids, dtype=np.int64)).view(len(ids), -1)
                batch = torch.full((len(ids), length), tok.pad_id, dtype=torch.long)
                batch[:, 0] = tok.cls_id
                batch[:, 1 : 1 + ids.shape[1]] = ids
                return _logits(model, task, batch.to(inputs.device), c, self.batch_size).cpu().numpy()

            rows_with_words = [int(r) for r in rows if words[r].any()]
            if not rows_with_words:
                continue
            values = self._explain(f, masker, [texts[r] for r in rows_with_words])
            for r, v in zip(rows_with_words, values):
                v = np.asarray(v, dtype=np.float64).reshape(-1)
                positions = words[r].nonzero().flatten().cpu()
                if len(v) != len(positions):
                    raise RuntimeError(f"shap's text masker found {len(v)} words, the tokenizer "
                                       f"{len(positions)}")
                out[r, positions] = torch.from_numpy(v)
        return out


def word_tokenizer(tokenizer):
    """The project tokenizer as shap's Text masker wants one: a callable that maps a string of
    space-separated tokens to their ids and character offsets. The strings are made by joining
    the tokenizer's own tokens, so splitting on spaces and looking each token up in the vocabulary
    gives back exactly the original ids, one per word position (re-running the normaliser would
    split "[UNK]" into three pieces)."""
    vocab = tokenizer.backend.get_vocab()

    def tokenize(text: str, return_offsets_mapping: bool = False, **_):
        tokens = text.split(" ") if text else []
        ids, offsets, start = [], [], 0
        for token in tokens:
            ids.append(vocab.get(token, tokenizer.unk_id))
            offsets.append((start, start + len(token)))
            start += len(token) + 1
        out = {"input_ids": ids}
        if return_offsets_mapping:
            out["offset_mapping"] = offsets
        return out

    return tokenize
