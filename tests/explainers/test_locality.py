"""Explainers find the evidence where a model provably looks.

Two hand-made models whose output depends on one known place: the image model's class-0 logit
is proportional to the mean of an 8x8 block of pixels, the text model's class-1 logit counts one
word. Every explainer must put its attribution there. This checks the bookkeeping that wrappers
get wrong silently: lime's and shap's feature order, word vs token positions, [CLS] offsets,
superpixel-to-pixel maps, class axes.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from explainbench import explainers
from tests.explainers.conftest import fast

REGION = (slice(4, 12), slice(4, 12))  # aligned with the 4x4 grid segmentation


class RegionModel(nn.Module):
    """logit_0 = 10 * mean of the 8x8 region; every other logit 0."""

    def forward(self, x):
        region = 10 * x[:, 0, REGION[0], REGION[1]].mean(dim=(1, 2))
        return torch.cat([region[:, None], torch.zeros(len(x), 9, device=x.device)], dim=1)


class WordModel(nn.Module):
    """logit_1 = 3 * (occurrences of one token id), logit_0 = 0."""

    def __init__(self, token_id: int):
        super().__init__()
        self.token_id = token_id

    def forward(self, ids):
        count = (ids == self.token_id).sum(dim=1).float()
        return torch.stack([torch.zeros_like(count), 3 * count], dim=1)


IMAGE_EXPLAINERS = ["saliency", "input_x_gradient", "integrated_gradients", "smoothgrad",
                    "deeplift", "occlusion", "feature_ablation", "kernel_shap", "rise", "lime",
                    "shap_kernel", "shap_partition", "gradient_shap", "deeplift_shap", "shap_deep",
                    "shap_gradient"]
TEXT_EXPLAINERS = ["occlusion", "feature_ablation", "kernel_shap", "rise", "lime",
                   "shap_partition"]
SETTINGS = {  # enough samples for a clear answer, still cheap on these tiny models
    "kernel_shap": {"n_samples": 200, "segmentation": "grid"},
    "lime": {"n_samples": 300, "segmentation": "grid"},
    "shap_kernel": {"n_samples": 300, "segmentation": "grid"},
    "rise": {"n_masks": 500},
    "shap_partition": {"max_evals": 300},
}


@pytest.mark.parametrize("name", IMAGE_EXPLAINERS)
def test_image_attribution_lands_on_the_region_the_model_reads(name, synthetic_image_task):
    g = torch.Generator().manual_seed(0)
    x = 0.3 + 0.4 * torch.rand(3, 1, 28, 28, generator=g)
    targets = torch.zeros(3, dtype=torch.long)
    params = {k: v for k, v in SETTINGS.get(name, {}).items()
              if k in explainers.get_class(name).defaults}
    out = fast(name, **params).explain(RegionModel(), synthetic_image_task, x, targets, seed=0)
    inside = torch.zeros(28, 28, dtype=torch.bool)
    inside[REGION] = True
    for a in out:
        contrast = a[inside].mean() - a[~inside].mean()
        assert contrast > 3 * a[~inside].std() + 1e-6, name
        assert inside.flatten()[a.flatten().argmax()], name


@pytest.mark.parametrize("name", TEXT_EXPLAINERS)
def test_text_attribution_lands_on_the_word_the_model_counts(name, tiny_tokenizer, text_inputs,
                                                             synthetic_text_task):
    word = tiny_tokenizer.backend.token_to_id("great")
    rows = [i for i in range(len(text_inputs)) if (text_inputs[i] == word).sum() == 1]
    assert len(rows) >= 2
    x = text_inputs[rows]
    targets = torch.ones(len(rows), dtype=torch.long)
    params = {k: v for k, v in SETTINGS.get(name, {}).items()
              if k in explainers.get_class(name).defaults}
    out = fast(name, **params).explain(WordModel(word), synthetic_text_task, x, targets, seed=0)
    for ids, a in zip(x, out):
        position = int((ids == word).nonzero())
        others = synthetic_text_task.feature_mask(ids[None])[0].clone()
        others[position] = False
        # Strictly above every other word (occlusion's 3-token windows give the neighbours 2/3
        # of it, RISE's expected probabilities are not centred at zero).
        assert a[position] > a[others].max() + 1e-6, name
