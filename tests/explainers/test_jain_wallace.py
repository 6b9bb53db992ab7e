"""Jain & Wallace 2019's BiLSTM with additive attention and their measures, against independent
computations: the attention's weights, |grad e . e| by finite differences with the weights held
constant, leave-one-out by deleting each word in Python, Kendall's tau against scipy, and the
permutation test against a loop over explicit permutations."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.stats import kendalltau

from explainbench import explainers
from explainbench.metrics.similarity import kendall_tau


def test_attention_weights_sum_to_one_over_the_real_tokens_and_ignore_padding(
        tiny_attention_lstm, text_task, text_inputs):
    weights = tiny_attention_lstm.additive_attention(text_inputs)
    real = text_inputs != text_task.tokenizer.pad_id
    assert torch.allclose(weights.sum(1), torch.ones(len(weights), dtype=weights.dtype))
    assert (weights[~real] == 0).all() and (weights[real] > 0).all()
    # what sits in the padding never reaches the attention: a [PAD] embedding changed -> the same
    model = tiny_attention_lstm
    embeds = model.embedding(text_inputs).detach()
    moved = torch.where(real[..., None], embeds, embeds + 5.0)
    _, own = model.attend(moved, model.attention_mask(text_inputs))
    assert (own[~real] == 0).all()
    # and `attention` explains the model by these weights on the words
    out = explainers.get("attention").explain(model, text_task, text_inputs)
    words = text_task.feature_mask(text_inputs)
    assert torch.allclose(out[words].double(), weights[words])


def test_jw_gradient_is_the_directional_derivative_along_each_embedding(
        tiny_attention_lstm, text_task, text_inputs):
    """(dp/de_t) . e_t is the derivative of p when e_t alone is scaled by (1 + h), with the
    attention weights frozen at their values: central differences in float64."""
    model = tiny_attention_lstm
    x = text_inputs[:3]
    targets = torch.tensor([0, 1, 1])
    got = explainers.get("jw_gradient").explain(model, text_task, x, targets).double()
    mask = model.attention_mask(x)
    embeds = model.embedding(x).detach()
    frozen = model.attend(embeds, mask)[1].detach()
    h = 1e-6

    def p(e, row):
        logits = model.attend(e[None], mask[row:row + 1], weights=frozen[row:row + 1])[0]
        return torch.softmax(logits, -1)[0, targets[row]]

    words = text_task.feature_mask(x)
    for row in range(len(x)):
        for t in words[row].nonzero().squeeze(1).tolist():
            up, down = embeds[row].clone(), embeds[row].clone()
            up[t] *= 1 + h
            down[t] *= 1 - h
            with torch.no_grad():
                expected = abs(float(p(up, row) - p(down, row)) / (2 * h))
            assert got[row, t].item() == pytest.approx(expected, rel=1e-5, abs=1e-9)
    assert (got[~words] == 0).all()


def test_jw_gradient_differs_when_the_attention_is_differentiated(tiny_attention_lstm, text_task,
                                                                  text_inputs):
    held = explainers.get("jw_gradient").explain(tiny_attention_lstm, text_task, text_inputs)
    free = explainers.get("jw_gradient", detach_attention=False).explain(
        tiny_attention_lstm, text_task, text_inputs)
    assert not torch.allclose(held, free)


def test_leave_one_out_against_deleting_each_word_in_python(tiny_attention_lstm, tiny_lstm,
                                                            text_task, text_inputs):
    for model in (tiny_attention_lstm, tiny_lstm):
        targets = torch.arange(len(text_inputs)) % 2
        got = explainers.get("leave_one_out", batch_size=7).explain(model, text_task, text_inputs,
                                                                   targets)
        pad = text_task.tokenizer.pad_id
        words = text_task.feature_mask(text_inputs)
        with torch.no_grad():
            for row in range(len(text_inputs)):
                ids = text_inputs[row].tolist()
                base = torch.softmax(model(torch.tensor([ids])).double(), -1)[0, targets[row]]
                for t in range(len(ids)):
                    if not words[row, t]:
                        assert got[row, t] == 0
                        continue
                    shorter = ids[:t] + ids[t + 1:] + [pad]
                    p = torch.softmax(model(torch.tensor([shorter])).double(), -1)[0, targets[row]]
                    assert got[row, t].item() == pytest.approx(abs(float(p - base)), abs=1e-6)


def test_kendall_tau_is_scipys_tau_b_with_ties_and_masks():
    g = torch.Generator().manual_seed(0)
    a = torch.randint(0, 5, (40, 30), generator=g).double()
    b = a + torch.randint(0, 3, (40, 30), generator=g)
    valid = torch.rand(40, 30, generator=g) > 0.3
    got = kendall_tau(a, b, valid, block=7).numpy()
    expected = [kendalltau(a[i][valid[i]].numpy(), b[i][valid[i]].numpy())[0] for i in range(40)]
    assert np.allclose(got, expected, atol=1e-12)
    assert kendall_tau(a, a, valid).eq(1).all()
    assert kendall_tau(a, -a, valid).numpy() == pytest.approx(-np.ones(40))


def test_the_permutation_test_against_explicit_permutations(tiny_attention_lstm, text_task,
                                                            text_inputs):
    from explainbench.metrics.attention import permutation_effect, permuted_weights

    model = tiny_attention_lstm
    words = text_task.feature_mask(text_inputs)
    weights = model.additive_attention(text_inputs).detach()
    perms = permuted_weights(weights, words, text_inputs, seed=3, n=20)
    for row in range(len(text_inputs)):
        # each is a permutation of the words' weights; [CLS] and [PAD] keep theirs
        for q in perms[row]:
            assert torch.equal(q[~words[row]], weights[row][~words[row]])
            assert torch.equal(q[words[row]].sort().values, weights[row][words[row]].sort().values)
    assert not torch.equal(perms[:, 0], perms[:, 1])
    targets = torch.ones(len(text_inputs), dtype=torch.long)
    got = permutation_effect(model, text_inputs, targets, words, seed=3, n=20)
    with torch.no_grad():
        embeds = model.embedding(text_inputs)
        mask = model.attention_mask(text_inputs)
        p = torch.softmax(model(text_inputs).double(), -1)[:, 1]
        changes = torch.stack([
            (torch.softmax(model.attend(embeds, mask, weights=perms[:, j])[0].double(), -1)[:, 1]
             - p).abs() for j in range(20)], dim=1)
    assert np.allclose(got.numpy(), np.median(changes.numpy(), axis=1), atol=1e-9)
    # the same review gets the same permutations in any batch
    again = permutation_effect(model, text_inputs[3:5], targets[3:5], words[3:5], seed=3, n=20)
    assert np.allclose(again.numpy(), got[3:5].numpy(), atol=1e-12)
