"""Deterministic training, the checkpoint cache and its model cards."""

from __future__ import annotations

import json

import pytest
import torch

from explainbench import models
from explainbench.core.errors import UnknownNameError


@pytest.fixture
def fresh_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("BENCH_CACHE_DIR", str(tmp_path))
    return tmp_path


def test_training_is_deterministic_and_the_card_is_complete(fresh_cache, real_data):
    first = models.train("mnist_logreg", "ci")
    again = models.train("mnist_logreg", "ci", force=True)
    assert first["checkpoint_sha256"] == again["checkpoint_sha256"]
    for key in ("architecture", "parameters", "train_config", "data_sha256", "test_accuracy",
                "packages", "training_wall_time_s", "checkpoint_sha256", "profile"):
        assert key in first
    assert first["train_config"]["seed"] == 0 and first["parameters"] == 7850
    assert first["test_accuracy"] > 0.8  # 6000 training images, one epoch
    on_disk = json.loads((models.model_dir("mnist_logreg", "ci") / "card.json").read_text())
    assert on_disk == again


def test_a_tampered_checkpoint_is_retrained_not_loaded(fresh_cache, real_data):
    card = models.train("mnist_logreg", "ci")
    ckpt = models.model_dir("mnist_logreg", "ci") / "model.safetensors"
    raw = bytearray(ckpt.read_bytes())
    raw[-1] ^= 0xFF
    ckpt.write_bytes(bytes(raw))
    assert models.card("mnist_logreg", "ci") is None
    model = models.load("mnist_logreg", profile="ci")
    assert model.card["checkpoint_sha256"] == card["checkpoint_sha256"]


def test_load_returns_an_eval_model_with_plain_logits(ci_model):
    model = ci_model("mnist_cnn")
    assert not model.training
    assert model(torch.zeros(2, 1, 28, 28)).shape == (2, 10)
    assert model.card["profile"] == "ci" and model.name == "mnist_cnn"
    text = ci_model("imdb_transformer")
    ids = torch.full((2, 256), 0)
    ids[:, 0] = 2
    ids[:, 1:5] = 10
    assert text(ids).shape == (2, 2)


def test_unknown_model_and_profile_are_clear_errors(monkeypatch):
    with pytest.raises(UnknownNameError, match="imdb_lstm, imdb_transformer, mnist_cnn"):
        models.spec("resnet")
    monkeypatch.setenv("BENCH_TRAIN_PROFILE", "huge")
    with pytest.raises(UnknownNameError, match="ci, full"):
        models.model_dir("mnist_cnn")
