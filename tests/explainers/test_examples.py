"""nearest_examples: ExMatchina, cosine nearest neighbours at the layer after the last convolution
among the training examples the model predicts as the explained class."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from explainbench import explainers
from explainbench.explainers.examples import ExampleExplanation, nearest


def _brute_force(queries, keys, k):
    q = queries / np.linalg.norm(queries, axis=1, keepdims=True)
    c = keys / np.linalg.norm(keys, axis=1, keepdims=True)
    sim = q @ c.T
    ids = np.argsort(-sim, axis=1, kind="stable")[:, :k]
    return ids, np.take_along_axis(sim, ids, axis=1)


def test_blockwise_top_k_equals_brute_force():
    g = torch.Generator().manual_seed(0)
    queries, keys = torch.randn(5, 16, generator=g), torch.randn(1000, 16, generator=g)
    ids, sim = nearest(queries, keys, k=7, block=64)
    exp_ids, exp_sim = _brute_force(queries.double().numpy(), keys.double().numpy(), 7)
    assert np.array_equal(ids.numpy(), exp_ids)
    assert np.allclose(sim.numpy(), exp_sim, atol=1e-6)
    # with labels, each query sees only its own label's keys, across block boundaries
    key_labels, query_labels = torch.arange(1000) % 3, torch.tensor([0, 1, 2, 1, 0])
    ids, sim = nearest(queries, keys, k=7, block=64, query_labels=query_labels,
                       key_labels=key_labels)
    for i in range(5):
        allowed = (key_labels == query_labels[i]).nonzero()[:, 0].numpy()
        exp_ids, exp_sim = _brute_force(queries[i : i + 1].double().numpy(),
                                        keys[allowed].double().numpy(), 7)
        assert np.array_equal(ids[i].numpy(), allowed[exp_ids[0]])
        assert np.allclose(sim[i].numpy(), exp_sim[0], atol=1e-6)


def _upto(model, name, x):
    """The output of the child module `name` of a Sequential model, run child by child."""
    for child, module in model.named_children():
        x = module(x)
        if child == name:
            return x
    raise KeyError(name)


def _flatten_layer(model, x):
    """The layer after the last convolution, computed without the explainer's code paths."""
    from explainbench.models.architectures import LSTMClassifier, MnistCNN, TransformerClassifier

    with torch.no_grad():
        if isinstance(model, MnistCNN):
            return _upto(model, "flatten", x)
        if isinstance(model, TransformerClassifier):
            out = model.bert(input_ids=x, attention_mask=(x != model.pad_id).long(),
                             output_hidden_states=True)
            return out.hidden_states[-1][:, 0]
        if isinstance(model, LSTMClassifier):
            return model._encode(model.embedding(x), (x != model.pad_id).long())
        return x.flatten(1)  # logistic regression: the pixels


@pytest.mark.parametrize("model_name", ["cnn", "logreg", "transformer", "lstm"])
def test_exmatchina_on_every_model(cases, model_name):
    """Default: the layer after the last convolution, among the training examples the model
    predicts as the explained class, against a brute force over those alone."""
    model, task, inputs = cases[model_name]
    k = 1 if model_name == "logreg" else 3  # logreg predicts some classes once in the 32 examples
    out = explainers.get("nearest_examples", k=k).explain(model, task, inputs)
    assert isinstance(out, ExampleExplanation)
    assert out.ids.shape == out.similarity.shape == (len(inputs), k)
    assert (out.similarity[:, :-1] >= out.similarity[:, 1:]).all()  # most similar first
    train, _ = task.train_split()
    with torch.no_grad():
        targets, train_pred = model(inputs).argmax(1), model(train).argmax(1)
    queries, keys = _flatten_layer(model, inputs).double(), _flatten_layer(model, train).double()
    assert (train_pred[out.ids] == targets[:, None]).all()  # the filter: ExMatchina's labels
    for i in range(len(inputs)):
        allowed = (train_pred == targets[i]).nonzero()[:, 0]
        exp_ids, exp_sim = _brute_force(queries[i : i + 1].numpy(), keys[allowed].numpy(), k)
        assert np.allclose(out.similarity[i].numpy(), exp_sim[0], atol=1e-5)
        # ties (equal activations) may order differently; the similarities must agree regardless
        agree = (out.ids[i].numpy() == allowed.numpy()[exp_ids[0]]) | np.isclose(
            out.similarity[i].numpy(), exp_sim[0], atol=1e-6)
        assert agree.all()
    # the nearest example without the filter, and its (predicted) label
    first, first_sim = _brute_force(queries.numpy(), keys.numpy(), 1)
    assert np.allclose(out.nearest_similarity.numpy(), first_sim[:, 0], atol=1e-5)
    assert torch.equal(out.nearest_label, train_pred[out.nearest_id])


@pytest.mark.parametrize("model_name", ["cnn", "transformer", "lstm"])
def test_the_earlier_behaviour_stays_reachable(cases, model_name):
    """layer=hidden, label_filter=none: the last hidden layer over every training example."""
    model, task, inputs = cases[model_name]
    out = explainers.get("nearest_examples", k=3, layer="hidden", label_filter="none").explain(
        model, task, inputs)
    train, train_labels = task.train_split()
    with torch.no_grad():
        if model_name == "cnn":
            hidden = lambda x: _upto(model, "relu3", x)
        elif model_name == "transformer":
            hidden = lambda x: model.bert.bert(input_ids=x, attention_mask=(x != model.pad_id).long()
                                               ).pooler_output
        else:
            hidden = lambda x: _flatten_layer(model, x)
        exp_ids, exp_sim = _brute_force(hidden(inputs).double().numpy(),
                                        hidden(train).double().numpy(), 3)
    assert np.allclose(out.similarity.numpy(), exp_sim, atol=1e-5)
    assert torch.equal(out.nearest_id, out.ids[:, 0])
    assert torch.equal(out.nearest_label, train_labels[out.ids[:, 0]])  # true labels for none


def test_the_true_label_filter(cases):
    model, task, inputs = cases["cnn"]
    _, train_labels = task.train_split()
    targets = torch.arange(len(inputs)) % task.num_classes
    out = explainers.get("nearest_examples", k=3, label_filter="label").explain(
        model, task, inputs, targets)
    assert (train_labels[out.ids] == targets[:, None]).all()


@pytest.mark.parametrize("model_name", ["transformer", "lstm"])
def test_text_models_give_their_logits_with_the_activations(cases, model_name):
    model, task, inputs = cases[model_name]
    with torch.no_grad():
        for layer in ("flatten", "hidden"):
            _, logits = model.example_representation(inputs, layer)
            assert torch.allclose(logits, model(inputs), atol=1e-5)


def test_too_few_examples_of_a_class_is_an_error(cases):
    from explainbench.core.errors import ExplainerError

    model, task, inputs = cases["cnn"]  # 32 training examples, labels 0..9: 3 or 4 per class
    with pytest.raises(ExplainerError, match="only 3 training examples pass the 'label' filter"):
        explainers.get("nearest_examples", k=4, label_filter="label").explain(
            model, task, inputs[:1], torch.tensor([9]))


def test_a_training_example_finds_itself(tiny_cnn, synthetic_image_task):
    train, _ = synthetic_image_task.train_split()
    out = explainers.get("nearest_examples", k=1).explain(tiny_cnn, synthetic_image_task, train[:6])
    assert torch.equal(out.ids[:, 0], torch.arange(6))
    assert torch.allclose(out.similarity[:, 0], torch.ones(6), atol=1e-5)


def test_logreg_compares_raw_pixels(logreg, images, synthetic_image_task):
    out = explainers.get("nearest_examples", k=2, label_filter="none").explain(
        logreg, synthetic_image_task, images)
    train, _ = synthetic_image_task.train_split()
    exp_ids, _ = _brute_force(images.flatten(1).double().numpy(), train.flatten(1).double().numpy(), 2)
    assert np.array_equal(out.ids.numpy(), exp_ids)


def test_training_activations_are_cached_per_checkpoint(tiny_cnn, images, synthetic_image_task,
                                                        tmp_path, monkeypatch):
    monkeypatch.setenv("BENCH_CACHE_DIR", str(tmp_path))
    tiny_cnn.card = {"checkpoint_sha256": "ab" * 32}
    first = explainers.get("nearest_examples").explain(tiny_cnn, synthetic_image_task, images)
    files = list((tmp_path / "examples").glob("*.safetensors"))
    assert len(files) == 1 and files[0].name.startswith("abababababababab-mnist-flatten-train-")
    again = explainers.get("nearest_examples").explain(tiny_cnn, synthetic_image_task, images)
    assert torch.equal(first.ids, again.ids) and torch.equal(first.similarity, again.similarity)
    # the cached tensor is what is read: a different checkpoint digest is a different entry
    tiny_cnn.card = {"checkpoint_sha256": "cd" * 32}
    explainers.get("nearest_examples").explain(tiny_cnn, synthetic_image_task, images)
    assert len(list((tmp_path / "examples").glob("*.safetensors"))) == 2
    # and so is another layer
    explainers.get("nearest_examples", layer="hidden").explain(tiny_cnn, synthetic_image_task, images)
    assert len(list((tmp_path / "examples").glob("*.safetensors"))) == 3


def test_k_larger_than_the_training_split_is_an_error(tiny_cnn, images, synthetic_image_task):
    from explainbench.core.errors import ExplainerError

    with pytest.raises(ExplainerError, match="k must be in 1..32"):
        explainers.get("nearest_examples", k=33).explain(tiny_cnn, synthetic_image_task, images)


@pytest.mark.parametrize("damage", ["another entry", "flipped bytes", "sealed NaN", "sealed short"])
def test_a_damaged_activations_entry_is_set_aside_and_computed_again(
        damage, tiny_cnn, images, synthetic_image_task, tmp_path, monkeypatch, capfd):
    """The activations cache is sealed like the attribution cache: a file copied from another
    checkpoint's entry, flipped bytes, or a consistently sealed file of NaN or of the wrong
    length is found on load, moved aside with one line, and the result is the uncached one."""
    from explainbench.core import sealed
    from explainbench.explainers import examples

    monkeypatch.setenv("BENCH_CACHE_DIR", str(tmp_path))
    method = explainers.get("nearest_examples")
    tiny_cnn.card = {"checkpoint_sha256": "ab" * 32}
    expected = method.explain(tiny_cnn, synthetic_image_task, images)
    (path,) = (tmp_path / "examples").glob("*.safetensors")
    if damage == "another entry":
        tiny_cnn.card = {"checkpoint_sha256": "cd" * 32}
        examples._LOADED.clear()
        other = explainers.get("nearest_examples", layer="hidden").explain(
            tiny_cnn, synthetic_image_task, images)
        assert not torch.equal(other.similarity, expected.similarity)
        (second,) = [p for p in (tmp_path / "examples").glob("*.safetensors") if p != path]
        path.write_bytes(second.read_bytes())
        tiny_cnn.card = {"checkpoint_sha256": "ab" * 32}
    elif damage == "flipped bytes":
        payload = bytearray(path.read_bytes())
        payload[-7] ^= 0xFF
        path.write_bytes(bytes(payload))
    else:
        train, _ = synthetic_image_task.train_split()
        n = len(train) if damage == "sealed NaN" else len(train) - 1
        sealed.save(path, path.stem, {"activations": torch.full((n, 5), float("nan")),
                                      "predictions": torch.zeros(n, dtype=torch.long)})
    examples._LOADED.clear()
    capfd.readouterr()
    again = method.explain(tiny_cnn, synthetic_image_task, images)
    lines = capfd.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "activations cache entry" in lines[0], lines
    assert "computing it again" in lines[0]
    assert path.with_name(path.name + ".damaged").is_file()
    assert torch.equal(again.ids, expected.ids) and torch.equal(again.similarity, expected.similarity)
