"""Task.remove: the one place that takes features away, for both modalities."""

from __future__ import annotations

import pytest
import torch

from explainbench.core.errors import UnknownNameError
from explainbench.core.tasks import ImageTask, gaussian_blur


def test_image_remove_blends_with_each_substrate(image_task, images):
    keep = torch.zeros(8, 28, 28, dtype=torch.bool)
    keep[:, :14] = True
    zero = image_task.remove(images, keep, "zero")
    assert torch.equal(zero[:, :, :14], images[:, :, :14])
    assert (zero[:, :, 14:] == 0).all()
    blurred = gaussian_blur(images, 11, 5.0)
    out = image_task.remove(images, keep, "blur")
    assert torch.allclose(out[:, :, 14:], blurred[:, :, 14:])
    g1, g2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    assert torch.equal(image_task.remove(images, keep, "noise", generator=g1),
                       image_task.remove(images, keep, "noise", generator=g2))
    noise = image_task.remove(images, keep, "noise", generator=torch.Generator().manual_seed(4))
    assert noise[:, :, 14:].min() >= 0 and noise[:, :, 14:].max() <= 1
    with pytest.raises(UnknownNameError, match="blur, mean, noise, zero"):
        image_task.remove(images, keep, "mask")


def test_mean_substrate_is_the_training_mean():
    train = torch.rand(20, 1, 28, 28)
    task = ImageTask(train=(train, torch.zeros(20, dtype=torch.long)))
    out = task.remove(torch.ones(2, 1, 28, 28), torch.zeros(2, 28, 28, dtype=torch.bool), "mean")
    assert torch.allclose(out[0, 0], train.mean(0)[0], atol=1e-6)


def test_gaussian_blur_preserves_constants_and_mass():
    flat = torch.full((1, 1, 28, 28), 0.3)
    assert torch.allclose(gaussian_blur(flat, 11, 5.0), flat, atol=1e-6)


def test_text_feature_mask_excludes_cls_and_padding(text_task, text_inputs):
    mask = text_task.feature_mask(text_inputs)
    assert not mask[:, 0].any()
    assert torch.equal(mask[:, 1:], text_inputs[:, 1:] != text_task.tokenizer.pad_id)


def test_text_mask_substrate_replaces_words_in_place(text_task, text_inputs):
    keep = torch.ones_like(text_inputs, dtype=torch.bool)
    keep[:, 1:4] = False
    keep[:, -1] = False  # padding: never touched
    out = text_task.remove(text_inputs, keep, "mask")
    assert (out[:, 1:4] == text_task.tokenizer.mask_id).all()
    assert torch.equal(out[:, 4:-1], text_inputs[:, 4:-1])
    assert torch.equal(out[:, -1], text_inputs[:, -1])
    assert (out[:, 0] == text_task.tokenizer.cls_id).all()


def test_text_pad_substrate_deletes_words_and_closes_the_gap(text_task, text_inputs):
    keep = torch.ones_like(text_inputs, dtype=torch.bool)
    keep[:, 2] = False
    keep[:, 0] = False  # [CLS] is not a feature: kept even when asked
    out = text_task.remove(text_inputs, keep, "pad")
    pad = text_task.tokenizer.pad_id
    for row_in, row_out in zip(text_inputs, out):
        words_in = [t for i, t in enumerate(row_in.tolist()) if t != pad and i != 2]
        words_out = [t for t in row_out.tolist() if t != pad]
        assert words_out == words_in
        assert row_out[0] == text_task.tokenizer.cls_id
    # everything removed leaves [CLS] and padding
    none = text_task.remove(text_inputs, torch.zeros_like(keep), "pad")
    assert (none[:, 1:] == pad).all()


def test_keep_mask_shape_is_checked(image_task, images):
    with pytest.raises(ValueError, match="expected"):
        image_task.remove(images, torch.ones(8, 784, dtype=torch.bool), "zero")
