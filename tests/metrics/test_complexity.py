"""Sparseness and complexity against Quantus 0.6 on the same attributions."""

from __future__ import annotations

import numpy as np
import pytest
import quantus
import torch

from explainbench import metrics


@pytest.fixture
def attributions(images):
    g = torch.Generator().manual_seed(0)
    a = torch.randn(8, 28, 28, generator=g) * images[:, 0]
    a[0] = 0.0
    a[0, 3, 4] = 2.0  # one feature carries everything
    return a


def test_sparseness_matches_quantus(tiny_cnn, image_task, images, attributions):
    ours = metrics.get("sparseness")(tiny_cnn, image_task, images, attributions, torch.zeros(8).long())
    ref = quantus.Sparseness(abs=True, normalise=False, disable_warnings=True)(
        model=tiny_cnn, x_batch=images.numpy(), y_batch=np.zeros(8, dtype=int),
        a_batch=attributions.unsqueeze(1).numpy())
    # Quantus adds 1e-7 to every |a| before the Gini index; we do not.
    assert np.allclose(ours.scores.numpy(), ref, rtol=1e-4)
    assert ours.scores[0].item() == pytest.approx(783 / 784)


def test_complexity_matches_quantus(tiny_cnn, image_task, images, attributions):
    ours = metrics.get("complexity")(tiny_cnn, image_task, images, attributions, torch.zeros(8).long())
    ref = quantus.Complexity(abs=True, normalise=False, disable_warnings=True)(
        model=tiny_cnn, x_batch=images.numpy(), y_batch=np.zeros(8, dtype=int),
        a_batch=attributions.unsqueeze(1).numpy())
    assert np.allclose(ours.scores.numpy(), ref, rtol=1e-5, atol=1e-6)
    uniform = metrics.get("complexity")(tiny_cnn, image_task, images[:1], torch.ones(1, 28, 28),
                                        torch.zeros(1).long())
    assert uniform.scores.item() == pytest.approx(np.log(784))


def test_complexity_metrics_ignore_text_padding(tiny_transformer, text_task, text_inputs):
    a = torch.rand(8, 24)
    noisy = a + 100 * (~text_task.feature_mask(text_inputs))  # large values on [CLS]/[PAD]
    for name in ("sparseness", "complexity"):
        m = metrics.get(name)
        clean = m(tiny_transformer, text_task, text_inputs, a * text_task.feature_mask(text_inputs), None)
        dirty = m(tiny_transformer, text_task, text_inputs, noisy, None)
        assert torch.allclose(clean.scores, dirty.scores)
