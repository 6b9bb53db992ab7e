"""Explainers against answers known without their code: closed forms of additive models, and a
hand-written guided backpropagation, attention computed from a transformer's own weights.

The logistic regression z = W x + b has per-pixel closed forms: the gradient of the target logit
is W[c] (saliency = |W[c]|); removing pixel p changes the logit by W[c, p] x_p (feature ablation
with 1-pixel patches and a zero baseline = W[c] * x); a window's removal changes it by the window's
sum of W[c] * x (occlusion = the mean over the windows covering a pixel); and over superpixels the
logit is additive, so Kernel SHAP recovers each superpixel's sum of W[c] * x exactly (a linear
function of the coalition vector is fitted exactly by any full-rank design). LIME explains the
probability; on a model whose target probability is itself additive it recovers the same sums up
to its ridge penalty's shrinkage (alpha = 1 against thousands of weighted samples).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from explainbench import explainers
from explainbench.core.superpixels import segment


def _w_times_x(model, x, targets):
    return model.weight.detach()[targets].view(-1, 28, 28) * x[:, 0]


def _segment_sums(values: torch.Tensor, x: torch.Tensor, kind: str = "grid") -> torch.Tensor:
    """Every pixel gets the sum of `values` over its superpixel (numpy, per image)."""
    out = []
    for v, image in zip(values.numpy(), x[:, 0].numpy()):
        labels = segment(image, kind)
        sums = np.bincount(labels.ravel(), weights=v.ravel(), minlength=labels.max() + 1)
        out.append(sums[labels])
    return torch.from_numpy(np.stack(out)).float()


TARGETS = torch.arange(8) % 10


def test_saliency_of_the_linear_model_is_the_absolute_weight(logreg, images, synthetic_image_task):
    out = explainers.get("saliency").explain(logreg, synthetic_image_task, images, TARGETS)
    expected = logreg.weight.detach()[TARGETS].view(-1, 28, 28).abs()
    torch.testing.assert_close(out, expected, rtol=1e-6, atol=0)


def test_feature_ablation_of_one_pixel_is_w_times_x(logreg, images, synthetic_image_task):
    out = explainers.get("feature_ablation", patch=1).explain(logreg, synthetic_image_task,
                                                               images, TARGETS)
    expected = _w_times_x(logreg, images, TARGETS)
    # f(x) - f(x without p) in float32: cancellation error is relative to the logit, not to it
    logit = logreg(images).detach().abs().max().item()
    torch.testing.assert_close(out, expected, rtol=1e-4, atol=1e-6 * logit)


@pytest.mark.parametrize("window,stride", [(4, 2), (3, 1), (5, 5)])
def test_occlusion_is_the_mean_window_sum_of_w_times_x(logreg, images, synthetic_image_task,
                                                        window, stride):
    out = explainers.get("occlusion", window=window, stride=stride).explain(
        logreg, synthetic_image_task, images, TARGETS)
    contribution = _w_times_x(logreg, images, TARGETS).double().numpy()
    total, covered = np.zeros_like(contribution), np.zeros((28, 28))
    # Captum's windows start every `stride` pixels up to the first that reaches the edge, the
    # last one clipped there: ceil((28 - window) / stride) + 1 positions per side
    starts = [k * stride for k in range(int(np.ceil((28 - window) / stride)) + 1)]
    for top in starts:
        for left in starts:
            block = (slice(top, top + window), slice(left, left + window))
            drop = contribution[:, block[0], block[1]].sum(axis=(1, 2))
            total[:, block[0], block[1]] += drop[:, None, None]
            covered[block] += 1
    expected = np.divide(total, covered, out=np.zeros_like(total), where=covered > 0)
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-4,
                               atol=1e-6 * np.abs(expected).max())


@pytest.mark.parametrize("name,tolerance", [("kernel_shap", 2e-3), ("kernel_shap_batched", 1e-5)])
def test_kernel_shap_of_the_additive_logit_is_the_superpixel_sum(logreg, images,
                                                                 synthetic_image_task, name,
                                                                 tolerance):
    """Exact up to the solver: Captum fits in float32 (with 1e6 weights on the two pinned
    coalitions), the batched one in float64."""
    out = explainers.get(name, segmentation="grid", n_samples=300).explain(
        logreg, synthetic_image_task, images, TARGETS, seed=3)
    expected = _segment_sums(_w_times_x(logreg, images, TARGETS), images)
    scale = expected.abs().max().item()
    torch.testing.assert_close(out, expected, rtol=0, atol=tolerance * scale)


class AdditiveProbability(nn.Module):
    """Two classes whose probabilities are exactly additive in the pixels: p_1 = 0.5 + v . x (v
    small enough to stay in (0, 1)), returned as log-probabilities so that softmax gives them."""

    def __init__(self, v: torch.Tensor):
        super().__init__()
        self.v = v.reshape(-1)

    def forward(self, x):
        p = 0.5 + x.flatten(1) @ self.v
        return torch.log(torch.stack([1 - p, p], dim=1))


@pytest.mark.parametrize("name", ["lime", "lime_batched"])
def test_lime_of_an_additive_probability_is_the_superpixel_sum(images, synthetic_image_task, name):
    v = 0.002 * torch.randn(784, generator=torch.Generator().manual_seed(4))
    model = AdditiveProbability(v)
    x, targets = images[:3], torch.ones(3, dtype=torch.long)
    out = explainers.get(name, n_samples=4000, segmentation="grid").explain(
        model, synthetic_image_task, x, targets, seed=1)
    expected = _segment_sums(v.view(28, 28) * x[:, 0], x)
    # ridge(alpha=1) shrinks each coefficient by about alpha / (sum of kernel weights x 1/4)
    torch.testing.assert_close(out, expected, rtol=0, atol=0.01 * expected.abs().max().item())
    assert torch.corrcoef(torch.stack([out.flatten(), expected.flatten()]))[0, 1] > 0.999


def test_guided_backprop_matches_a_hand_written_one(images, synthetic_image_task):
    """Springenberg et al.: through each ReLU only positive gradients pass, and only where the
    ReLU's input was positive. Written out for Linear-ReLU-Linear-ReLU-Linear with numpy."""
    torch.manual_seed(2)
    net = nn.Sequential(nn.Flatten(), nn.Linear(784, 32), nn.ReLU(), nn.Linear(32, 16), nn.ReLU(),
                        nn.Linear(16, 10)).eval()
    out = explainers.get("guided_backprop").explain(net, synthetic_image_task, images, TARGETS)
    w1, b1 = net[1].weight.detach().numpy(), net[1].bias.detach().numpy()
    w2, b2 = net[3].weight.detach().numpy(), net[3].bias.detach().numpy()
    w3 = net[5].weight.detach().numpy()
    expected = []
    for x, c in zip(images.flatten(1).numpy(), TARGETS.numpy()):
        pre1 = w1 @ x + b1
        pre2 = w2 @ np.maximum(pre1, 0) + b2
        g = w3[c]                                   # d logit_c / d relu2 output
        g = np.maximum(g, 0) * (pre2 > 0)           # guided through ReLU 2
        g = w2.T @ g
        g = np.maximum(g, 0) * (pre1 > 0)           # guided through ReLU 1
        expected.append((w1.T @ g).reshape(28, 28))
    np.testing.assert_allclose(out.numpy(), np.stack(expected), rtol=1e-4, atol=1e-7)
    plain = explainers.get("saliency").explain(net, synthetic_image_task, images, TARGETS)
    assert not torch.allclose(out.abs(), plain, atol=1e-6)  # guided is not the plain gradient


# ----------------------------------------------------------------------------- attention


@pytest.fixture
def two_layer_transformer(tiny_tokenizer):
    from explainbench.models.architectures import TransformerClassifier

    torch.manual_seed(5)
    return TransformerClassifier(tiny_tokenizer.vocab_size, tiny_tokenizer.max_len,
                                 tiny_tokenizer.pad_id, hidden=16, layers=2, heads=2,
                                 intermediate=32).eval()


def _attention_from_weights(model, ids) -> list[np.ndarray]:
    """Each layer's head-averaged attention probabilities (B, L, L), computed with numpy from the
    hidden states entering the layer and its own query and key weights, padding masked out."""
    bert = model.bert.bert
    with torch.no_grad():
        states = bert(input_ids=ids, attention_mask=model.attention_mask(ids),
                      output_hidden_states=True).hidden_states
    keep = (ids != model.pad_id).numpy()
    out = []
    for layer, h in zip(bert.encoder.layer, states[:-1]):
        attn = layer.attention.self
        heads, size = attn.num_attention_heads, attn.attention_head_size
        h = h.numpy()
        q = h @ attn.query.weight.detach().numpy().T + attn.query.bias.detach().numpy()
        k = h @ attn.key.weight.detach().numpy().T + attn.key.bias.detach().numpy()
        b, length, _ = q.shape
        q = q.reshape(b, length, heads, size).transpose(0, 2, 1, 3)
        k = k.reshape(b, length, heads, size).transpose(0, 2, 1, 3)
        scores = q @ k.transpose(0, 1, 3, 2) / np.sqrt(size)
        scores = np.where(keep[:, None, None, :], scores, -np.inf)
        p = np.exp(scores - scores.max(-1, keepdims=True))
        out.append((p / p.sum(-1, keepdims=True)).mean(axis=1))
    return out


def test_attention_and_rollout_of_two_layers_from_the_weights(two_layer_transformer, text_task,
                                                               text_inputs):
    layers = _attention_from_weights(two_layer_transformer, text_inputs)
    words = text_task.feature_mask(text_inputs).numpy()
    attention = explainers.get("attention").explain(two_layer_transformer, text_task, text_inputs)
    np.testing.assert_allclose(attention.numpy(), layers[-1][:, 0, :] * words, atol=1e-6)
    joint = []
    for b in range(len(text_inputs)):  # Abnar & Zuidema: A' = (A + I) / 2, rolled out bottom-up
        j = np.eye(layers[0].shape[-1])
        for a in layers:
            j = (0.5 * a[b] + 0.5 * np.eye(len(j))) @ j
        joint.append(j[0])
    rollout = explainers.get("attention_rollout").explain(two_layer_transformer, text_task,
                                                          text_inputs)
    np.testing.assert_allclose(rollout.numpy(), np.stack(joint) * words, atol=1e-6)
    # two layers apart: rollout mixes the first layer in, so it ranks the words differently
    differ = [not np.array_equal(np.argsort(-attention[i].numpy()[words[i]]),
                                 np.argsort(-rollout[i].numpy()[words[i]]))
              for i in range(len(text_inputs))]
    assert sum(differ) >= len(differ) // 2
