"""Attention and attention rollout on the tiny transformer, against their definitions."""

from __future__ import annotations

import numpy as np
import torch

from explainbench import explainers
from explainbench.explainers.attention import rollout


def _head_averaged(model, ids):
    with torch.no_grad():
        return [a.mean(dim=1) for a in model.attentions(ids)]


def test_attention_is_the_cls_row_of_the_last_layer(tiny_transformer, text_task, text_inputs):
    out = explainers.get("attention").explain(tiny_transformer, text_task, text_inputs)
    last = _head_averaged(tiny_transformer, text_inputs)[-1]
    words = text_task.feature_mask(text_inputs)
    assert torch.allclose(out, last[:, 0, :] * words)
    # [CLS] attends only to real tokens: its row over [CLS] and the words sums to one.
    real = text_inputs != text_task.tokenizer.pad_id
    assert torch.allclose((last[:, 0, :] * real).sum(1), torch.ones(len(out)), atol=1e-5)


def test_rollout_matches_an_independent_numpy_rollout():
    """Abnar & Zuidema's recursion written out with numpy on random row-stochastic matrices."""
    g = np.random.default_rng(0)
    layers = [g.random((2, 6, 6)) for _ in range(3)]
    layers = [a / a.sum(-1, keepdims=True) for a in layers]
    expected = []
    for b in range(2):
        joint = np.eye(6)
        for a in layers:
            aug = 0.5 * a[b] + 0.5 * np.eye(6)
            aug = aug / aug.sum(-1, keepdims=True)
            joint = aug @ joint
        expected.append(joint)
    got = rollout([torch.from_numpy(a) for a in layers])
    assert np.allclose(got.numpy(), np.stack(expected))
    assert np.allclose(got.sum(-1).numpy(), 1.0)  # rows stay distributions


def test_rollout_of_one_layer_is_half_attention_half_identity():
    a = torch.softmax(torch.randn(1, 4, 4), dim=-1)
    assert torch.allclose(rollout([a]), 0.5 * a + 0.5 * torch.eye(4))


def test_attention_rollout_gives_padding_nothing(tiny_transformer, text_task, text_inputs):
    with torch.no_grad():
        full = rollout(_head_averaged(tiny_transformer, text_inputs))[:, 0, :]
    pad = text_inputs == text_task.tokenizer.pad_id
    assert full[pad].abs().max() < 1e-6
    out = explainers.get("attention_rollout").explain(tiny_transformer, text_task, text_inputs)
    assert torch.allclose(out, full * text_task.feature_mask(text_inputs))


def test_attention_is_transformer_only(tiny_lstm, text_task, images, image_task, tiny_cnn):
    assert "transformer models and models with additive attention only" in explainers.get(
        "attention").supports(tiny_lstm, text_task)
    assert "text" in explainers.get("attention_rollout").supports(tiny_cnn, image_task)
