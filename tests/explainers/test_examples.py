"""nearest_examples: cosine nearest neighbours of last-hidden-layer activations."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from explainbench import explainers
from explainbench.explainers.examples import ExampleExplanation, hidden_activations, nearest


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


@pytest.mark.parametrize("model_name", ["cnn", "logreg", "transformer", "lstm"])
def test_nearest_examples_on_every_model(cases, model_name):
    model, task, inputs = cases[model_name]
    out = explainers.get("nearest_examples", k=3).explain(model, task, inputs)
    assert isinstance(out, ExampleExplanation)
    assert out.ids.shape == out.similarity.shape == (len(inputs), 3)
    assert out.ids.dtype == torch.long
    assert (out.similarity[:, :-1] >= out.similarity[:, 1:]).all()  # most similar first
    train, _ = task.train_split()
    exp_ids, exp_sim = _brute_force(hidden_activations(model, task, inputs, 64).double().numpy(),
                                    hidden_activations(model, task, train, 64).double().numpy(), 3)
    assert np.allclose(out.similarity.numpy(), exp_sim, atol=1e-5)
    # Ties (equal activations) may order differently; the similarities must agree regardless.
    agree = (out.ids.numpy() == exp_ids) | np.isclose(out.similarity.numpy(), exp_sim, atol=1e-6)
    assert agree.all()


def test_a_training_example_finds_itself(tiny_cnn, synthetic_image_task):
    train, _ = synthetic_image_task.train_split()
    out = explainers.get("nearest_examples", k=1).explain(tiny_cnn, synthetic_image_task, train[:6])
    assert torch.equal(out.ids[:, 0], torch.arange(6))
    assert torch.allclose(out.similarity[:, 0], torch.ones(6), atol=1e-5)


def test_logreg_compares_raw_pixels(logreg, images, synthetic_image_task):
    out = explainers.get("nearest_examples", k=2).explain(logreg, synthetic_image_task, images)
    train, _ = synthetic_image_task.train_split()
    exp_ids, _ = _brute_force(images.flatten(1).double().numpy(), train.flatten(1).double().numpy(), 2)
    assert np.array_equal(out.ids.numpy(), exp_ids)


def test_training_activations_are_cached_per_checkpoint(tiny_cnn, images, synthetic_image_task,
                                                        tmp_path, monkeypatch):
    monkeypatch.setenv("BENCH_CACHE_DIR", str(tmp_path))
    tiny_cnn.card = {"checkpoint_sha256": "ab" * 32}
    first = explainers.get("nearest_examples").explain(tiny_cnn, synthetic_image_task, images)
    files = list((tmp_path / "examples").glob("*.safetensors"))
    assert len(files) == 1 and files[0].name.startswith("abababababababab-mnist-train-")
    again = explainers.get("nearest_examples").explain(tiny_cnn, synthetic_image_task, images)
    assert torch.equal(first.ids, again.ids) and torch.equal(first.similarity, again.similarity)
    # the cached tensor is what is read: a different checkpoint digest is a different entry
    tiny_cnn.card = {"checkpoint_sha256": "cd" * 32}
    explainers.get("nearest_examples").explain(tiny_cnn, synthetic_image_task, images)
    assert len(list((tmp_path / "examples").glob("*.safetensors"))) == 2


def test_k_larger_than_the_training_split_is_an_error(tiny_cnn, images, synthetic_image_task):
    from explainbench.core.errors import ExplainerError

    with pytest.raises(ExplainerError, match="k must be in 1..32"):
        explainers.get("nearest_examples", k=33).explain(tiny_cnn, synthetic_image_task, images)
