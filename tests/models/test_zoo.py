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


@pytest.mark.parametrize("damage", [
    lambda text: text[: len(text) // 2],          # cut mid-write
    lambda text: "[1, 2]",                        # JSON, but not a card
    lambda text: "\x00\xff garbage",              # not JSON at all
])
def test_a_damaged_card_is_retrained_with_one_line(fresh_cache, real_data, capsys, damage):
    card = models.train("mnist_logreg", "ci")
    path = models.model_dir("mnist_logreg", "ci") / "card.json"
    path.write_text(damage(path.read_text()))
    capsys.readouterr()
    assert models.card("mnist_logreg", "ci") is None  # a lookup says nothing and trains nothing
    assert capsys.readouterr().err == ""
    model = models.load("mnist_logreg", profile="ci")
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "mnist_logreg" in err[0] and "training it again" in err[0], err
    assert model.card["checkpoint_sha256"] == card["checkpoint_sha256"]
    assert json.loads(path.read_text()) == model.card


def test_a_damaged_tokenizer_is_trained_again_to_the_same_file(fresh_cache, real_data, capsys):
    from explainbench.core import tokenizer

    first = tokenizer.load_tokenizer()
    path = tokenizer._tokenizer_path()
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) // 3])
    again = tokenizer.load_tokenizer()
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "tokenizer" in err[0] and "training it again" in err[0], err
    assert again.sha256 == first.sha256 and path.read_bytes() == raw
    assert path.with_name(path.name + ".damaged").read_bytes() == raw[: len(raw) // 3]


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
