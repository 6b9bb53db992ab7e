"""`bench explain` end to end: `python -m explainbench.bench explain ...` on ci-profile models and real samples
(the test session's environment: BENCH_TRAIN_PROFILE=ci and its cache), and its one-line errors."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]


def bench(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "explainbench.bench", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)


COMMON = ("model", "explainer", "params", "seed", "sample_ids", "labels", "targets",
          "probabilities", "inputs")


def test_image_attributions_npz_and_plot(ci_model, tmp_path):
    ci_model("mnist_cnn")  # trained (once per test cache) before the subprocess loads it
    out, png = tmp_path / "a.npz", tmp_path / "a.png"
    result = bench("explain", "--model", "mnist_cnn", "--explainer", "integrated_gradients",
                   "--n", "2", "--param", "n_steps=16", "--out", str(out), "--plot", str(png))
    assert result.returncode == 0, result.stderr
    data = np.load(out)
    assert set(data.files) == {*COMMON, "attributions"}
    assert data["inputs"].shape == (2, 1, 28, 28) and data["inputs"].dtype == np.float32
    assert data["attributions"].shape == (2, 28, 28) and data["attributions"].dtype == np.float32
    assert data["probabilities"].shape == (2, 10)
    assert np.array_equal(data["targets"], data["probabilities"].argmax(1))
    assert str(data["model"]) == "mnist_cnn" and str(data["explainer"]) == "integrated_gradients"
    assert '"n_steps": 16' in str(data["params"])
    assert png.stat().st_size > 10_000
    with open(png, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"


def test_text_attributions_by_id_with_label_targets(ci_model, tmp_path):
    from explainbench.core import slices

    ci_model("imdb_lstm")
    ids = slices.load(slices.named("imdb-test", size=6)).ids[[5, 2]]
    out, png = tmp_path / "t.npz", tmp_path / "t.png"
    result = bench("explain", "-m", "imdb_lstm", "-e", "input_x_gradient", "--ids",
                   ",".join(map(str, ids)), "--target", "label", "--out", str(out), "--plot", str(png))
    assert result.returncode == 0, result.stderr
    data = np.load(out)
    assert set(data.files) == {*COMMON, "attributions", "tokens"}
    assert np.array_equal(data["sample_ids"], ids)
    assert np.array_equal(data["targets"], data["labels"])
    assert data["inputs"].shape == data["tokens"].shape == data["attributions"].shape == (2, 256)
    assert data["inputs"].dtype == np.int64
    assert data["tokens"][0, 0] == "[CLS]"
    assert (data["attributions"][data["tokens"] == "[PAD]"] == 0).all()
    assert png.stat().st_size > 10_000


def test_nearest_examples_npz_and_plot(ci_model, tmp_path):
    ci_model("mnist_logreg")
    out, png = tmp_path / "e.npz", tmp_path / "e.png"
    result = bench("explain", "-m", "mnist_logreg", "-e", "nearest_examples", "--n", "2",
                   "-p", "k=3", "--out", str(out), "--plot", str(png))
    assert result.returncode == 0, result.stderr
    data = np.load(out)
    assert set(data.files) == {*COMMON, "example_ids", "similarities"}
    assert data["example_ids"].shape == data["similarities"].shape == (2, 3)
    assert (np.diff(data["similarities"], axis=1) <= 0).all()
    assert png.stat().st_size > 5_000


@pytest.mark.parametrize("model, params", [
    ("mnist_cnn", ()),
    # the first two reviews at a small budget (one-word anchors, a loose KL-LUCB tolerance): a
    # long review's search over ~200 words costs minutes at the defaults on a CPU (README)
    ("imdb_transformer", ("-p", "max_anchor_size=1", "-p", "tau=0.9", "-p", "coverage_samples=500")),
])
def test_anchor_npz_is_the_same_for_the_same_seed(ci_model, tmp_path, model, params):
    ci_model(model)
    runs = []
    for name in ("a.npz", "b.npz"):
        result = bench("explain", "-m", model, "-e", "anchor", "--n", "2", *params,
                       "-o", str(tmp_path / name))
        assert result.returncode == 0, result.stderr
        runs.append(np.load(tmp_path / name))
    first, again = runs
    records = {"anchor_features", "anchor_precision", "anchor_coverage", "anchor_size"}
    assert set(first.files) >= {*COMMON, "attributions", *records}
    for name in ("attributions", *records):
        assert np.array_equal(first[name], again[name]), name
    # the map is the anchor: its features' positions, weighted 1, (s-1)/s, ... by order added
    size = first["anchor_size"].astype(int)
    levels = [np.unique(a[a > 0]) for a in first["attributions"]]
    assert [len(v) for v in levels] == list(size)
    assert all(np.allclose(np.sort(v)[::-1], np.arange(s, 0, -1) / s) for v, s in zip(levels, size))


@pytest.mark.parametrize("args, message", [
    (("-m", "mnist_cnn", "-e", "gradcam"), "unknown explainer 'gradcam'. Did you mean 'grad_cam'"),
    (("-m", "mnist_logreg", "-e", "grad_cam"), "needs a convolutional layer"),
    (("-m", "mnist_cnn", "-e", "attention"), "attention explains text models, not image"),
    (("-m", "mnist_cnn", "-e", "rise", "-p", "n_mask=3"), "valid parameters: grid, n_masks, p_keep"),
    (("-m", "mnist_cnn", "-e", "rise", "-p", "n_masks"), "--param expects key=value"),
    (("-m", "mnist_cnn", "-e", "rise", "--n", "2", "--ids", "3"), "either --n or --ids"),
    (("-m", "mnist_cnn", "-e", "rise", "--target", "true"), "Valid choices: label, predicted"),
    (("-m", "mnist_cnn", "-e", "rise", "--ids", "3,x"), "comma-separated integers"),
    (("-m", "mnist_cnn", "-e", "rise", "--ids", "3"), "sample ids [3] are not in slice"),
    (("-m", "mnist_cnnn", "-e", "rise"), "unknown model 'mnist_cnnn'"),
])
def test_bad_input_is_one_line_with_exit_code_2(real_data, tmp_path, args, message):
    result = bench("explain", *args, "--out", str(tmp_path / "x.npz"))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], result.stderr
    assert not (tmp_path / "x.npz").exists()
