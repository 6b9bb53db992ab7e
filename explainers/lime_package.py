"""LIME through the `lime` package (Ribeiro et al. 2016, arXiv:1602.04938): a locally weighted
ridge regression of the target class probability on random on/off patterns of interpretable
features.

Images: LimeImageExplainer over superpixels (SLIC tuned for 28x28 digits by default, see
`explainers.superpixels`), switched-off segments black (`hide_color=0`, the zero substrate).
Text: LimeTextExplainer over the model's own words: the review's word tokens (from the project
tokenizer, [CLS] and [PAD] left out) joined by single spaces and split on single spaces, with
`bow=False`, so that feature k is exactly the k-th word position; a switched-off word becomes
[MASK]. The perturbed strings are mapped back to ids position by position, never re-tokenised.

The package keeps one random state per explainer object and draws from it in every call, so a
fresh explainer is made per sample with a RandomState seeded with the sample's own seed (the
cell's seed and the sample's id): a sample's explanation depends on them alone. LIME fits one regression per sample by design; each sample's
perturbations are evaluated in forward batches of `batch_size`.
"""

from __future__ import annotations

import contextlib

import numpy as np
import torch

from explainbench.explainers.base import Explainer, sample_seed
from explainbench.explainers.seeding import numpy_random_state
from explainbench.core.params import Int
from explainbench.core.superpixels import SEGMENTATION, segment

WORD_SEPARATOR = " "
MASK_WORD = "[MASK]"


@contextlib.contextmanager
def _quiet_lime_image():
    """lime_image wraps its sampling loop in a tqdm bar that cannot be turned off by argument."""
    from lime import lime_image

    original = lime_image.tqdm
    lime_image.tqdm = lambda iterable, *args, **kwargs: iterable
    try:
        yield lime_image
    finally:
        lime_image.tqdm = original


def _weights_by_feature(explanation, label: int, n_features: int) -> np.ndarray:
    weights = np.zeros(n_features, dtype=np.float64)
    for feature, weight in explanation.local_exp[label]:
        weights[feature] = weight
    return weights


class Lime(Explainer):
    """LIME with the `lime` package; see the module docstring for features and seeding."""

    name = "lime"
    stochastic = True
    parameters = {"n_samples": Int(1000, 1, 100_000), "segmentation": SEGMENTATION}
    reference = "Ribeiro et al. 2016; lime.lime_image / lime.lime_text"

    def cost(self, modality, features):
        return float(self.params["n_samples"]), 0.0

    def attribute(self, model, task, inputs, targets, *, seed, sample_ids):
        explain_one = self._image if task.modality == "image" else self._text
        rows = [explain_one(model, task, inputs[i], int(targets[i]), sample_seed(seed, key))
                for i, key in enumerate(sample_ids)]
        return torch.stack(rows).to(inputs.device)

    def _image(self, model, task, image, target, seed):
        def classifier(batch: np.ndarray) -> np.ndarray:  # (n, 28, 28, 3), channels are copies
            x = torch.from_numpy(batch[..., 0].astype(np.float32)).unsqueeze(1).to(image.device)
            return task.probabilities(model, x, self.batch_size).cpu().numpy()

        kind = self.params["segmentation"]
        gray = image[0].detach().cpu().numpy().astype(np.float64)
        with _quiet_lime_image() as lime_image:
            explainer = lime_image.LimeImageExplainer(
                feature_selection="none", random_state=numpy_random_state(seed))
            explanation = explainer.explain_instance(
                gray, classifier, labels=(target,), top_labels=None, hide_color=0,
                num_features=10**6, num_samples=int(self.params["n_samples"]),
                batch_size=self.batch_size, segmentation_fn=lambda img: segment(img, kind))
        segments = explanation.segments
        weights = _weights_by_feature(explanation, target, int(segments.max()) + 1)
        return torch.from_numpy(weights[segments]).float()

    def _text(self, model, task, ids, target, seed):
        from lime.lime_text import LimeTextExplainer

        positions = task.feature_mask(ids[None])[0].nonzero().flatten()
        attribution = torch.zeros(task.feature_shape, dtype=torch.float32)
        if len(positions) == 0:
            return attribution  # no words, nothing to explain
        words = np.array(task.tokens(ids[positions]))

        def classifier(texts: list[str]) -> np.ndarray:
            split = np.array([t.split(WORD_SEPARATOR) for t in texts])  # (n, n_words), 1:1
            dropped = torch.from_numpy(split != words[None, :]).to(ids.device)
            batch = ids.repeat(len(texts), 1)
            batch[:, positions] = batch[:, positions].masked_fill(dropped, task.tokenizer.mask_id)
            return task.probabilities(model, batch, self.batch_size).cpu().numpy()

        explainer = LimeTextExplainer(
            split_expression=WORD_SEPARATOR, bow=False, mask_string=MASK_WORD,
            feature_selection="none", random_state=numpy_random_state(seed))
        explanation = explainer.explain_instance(
            WORD_SEPARATOR.join(words), classifier, labels=(target,), num_features=len(words),
            num_samples=int(self.params["n_samples"]))
        n_features = explanation.domain_mapper.indexed_string.num_words()
        if n_features != len(words):
            raise RuntimeError(f"lime split the review into {n_features} words, the tokenizer "
                               f"into {len(words)}")
        attribution[positions.cpu()] = torch.from_numpy(
            _weights_by_feature(explanation, target, len(words))).float()
        return attribution
