"""Architecture conventions that explainers rely on."""

from __future__ import annotations

import pytest
import torch
from torch import nn


def test_every_cnn_activation_is_its_own_module_called_once(tiny_cnn, images):
    """DeepLift and shap.DeepExplainer need each ReLU to be a distinct, non-inplace module that
    runs exactly once per forward (no reuse, no functional calls)."""
    relus = [m for m in tiny_cnn.modules() if isinstance(m, nn.ReLU)]
    assert len(relus) == 3 and all(not r.inplace for r in relus)
    calls = {id(r): 0 for r in relus}
    hooks = [r.register_forward_hook(lambda m, i, o: calls.__setitem__(id(m), calls[id(m)] + 1))
             for r in relus]
    tiny_cnn(images)
    for h in hooks:
        h.remove()
    assert set(calls.values()) == {1}
    # with the ReLUs replaced by identities the output changes: none is applied functionally
    # elsewhere, and nothing else in the model is a nonlinearity besides max-pooling.
    names = [n for n, _ in tiny_cnn.named_children()]
    assert names == ["normalize", "conv1", "relu1", "pool1", "conv2", "relu2", "pool2", "flatten",
                     "fc1", "relu3", "dropout", "fc2"]


def test_cnn_takes_raw_pixels_and_exposes_its_layers(tiny_cnn, images):
    assert tiny_cnn(images).shape == (8, 10)
    assert isinstance(tiny_cnn.get_submodule(tiny_cnn.gradcam_layer), nn.Conv2d)
    assert tiny_cnn.gradcam_layer == "conv2"
    # normalisation is inside: a black image is not a zero input to conv1
    seen = {}
    h = tiny_cnn.conv1.register_forward_hook(lambda m, i, o: seen.update(x=i[0]))
    tiny_cnn(torch.zeros(1, 1, 28, 28))
    h.remove()
    assert torch.allclose(seen["x"], torch.full_like(seen["x"], -0.1307 / 0.3081))


def test_logreg_is_exactly_linear(logreg, images):
    logits = logreg(images)
    expected = images.flatten(1) @ logreg.weight.T + logreg.bias
    assert torch.allclose(logits, expected, atol=1e-5)


@pytest.mark.parametrize("fixture", ["tiny_transformer", "tiny_lstm"])
def test_text_models_ignore_trailing_padding_and_other_rows(fixture, request, text_inputs):
    model = request.getfixturevalue(fixture)
    full = model(text_inputs)
    assert full.shape == (8, 2)
    one_by_one = torch.cat([model(text_inputs[i : i + 1]) for i in range(8)])
    assert torch.allclose(full, one_by_one, atol=1e-5)
    # the embedding path gives the same logits as the id path
    embeds = model.embedding_layer(text_inputs)
    assert torch.allclose(model.forward_embeds(embeds, model.attention_mask(text_inputs)), full,
                          atol=1e-6)


def test_transformer_returns_attention_weights(tiny_transformer, text_inputs):
    attentions = tiny_transformer.attentions(text_inputs)
    assert len(attentions) == 1 and attentions[0].shape == (8, 2, 24, 24)
    # eager attention: probabilities, zero on padded keys
    assert torch.allclose(attentions[0].sum(-1), torch.ones(8, 2, 24), atol=1e-5)
    pad = text_inputs == 0
    assert attentions[0].masked_select(pad[:, None, None, :].expand_as(attentions[0])).abs().max() < 1e-6
