"""RISE against its definition, S = sum_n P_c(x . M_n) M_n / (N p), evaluated mask by mask."""

from __future__ import annotations

import torch

from explainbench import explainers
from explainbench.explainers.rise import image_masks


def _by_definition(model, task, x, target, masks, p_keep, perturb):
    total = torch.zeros(masks.shape[1:])
    with torch.no_grad():
        for m in masks:
            probs = torch.softmax(model(perturb(x, m)), dim=-1)
            total += probs[0, target] * m
    return total / (len(masks) * p_keep)


def test_images_match_the_definition(tiny_cnn, images, image_task):
    rise = explainers.get("rise", n_masks=50)
    targets = torch.arange(3)
    out = rise.explain(tiny_cnn, image_task, images[:3], targets, seed=4)
    masks = rise.masks(image_task, seed=4)
    for i in range(3):
        expected = _by_definition(tiny_cnn, image_task, images[i : i + 1], i, masks, 0.5,
                                  lambda x, m: x * m)
        assert torch.allclose(out[i], expected, atol=1e-6)


def test_text_matches_the_definition(tiny_lstm, text_inputs, text_task):
    rise = explainers.get("rise", n_masks=30, p_keep=0.7)
    targets = torch.tensor([0, 1])
    out = rise.explain(tiny_lstm, text_task, text_inputs[:2], targets, seed=2)
    masks = rise.masks(text_task, seed=2)
    for i in range(2):
        expected = _by_definition(
            tiny_lstm, text_task, text_inputs[i : i + 1], int(targets[i]), masks, 0.7,
            lambda x, m: text_task.remove(x, m.bool()[None], "mask"))
        words = text_task.feature_mask(text_inputs[i : i + 1])[0]
        assert torch.allclose(out[i], expected * words, atol=1e-6)


def test_image_masks_are_smooth_shifted_and_keep_p_on_average():
    g = torch.Generator().manual_seed(0)
    masks = image_masks(2000, 7, 0.5, (28, 28), g)
    assert masks.shape == (2000, 28, 28)
    assert masks.min() >= 0 and masks.max() <= 1
    assert abs(float(masks.mean()) - 0.5) < 0.02
    assert ((masks > 0) & (masks < 1)).float().mean() > 0.3  # bilinear, not binary
    # Random shifts: no pixel is a cell centre in every mask, so the mean map is nearly flat.
    assert float(masks.mean(0).std()) < 0.03


def test_batch_size_does_not_change_rise(tiny_cnn, images, image_task):
    a = explainers.get("rise", n_masks=40, batch_size=256).explain(tiny_cnn, image_task, images, seed=0)
    b = explainers.get("rise", n_masks=40, batch_size=7).explain(tiny_cnn, image_task, images, seed=0)
    assert torch.allclose(a, b, atol=1e-6)
