"""`bench score` on a small attribution file made here with the saliency explainer."""

from __future__ import annotations

import json
import re
import sys

import numpy as np
import pandas as pd
import pytest
import torch

from explainbench import explainers
from explainbench import metrics


@pytest.fixture(scope="module")
def attribution_file(ci_model, tmp_path_factory):
    """An .npz in the format of `bench explain`: 4 MNIST test images, ci mnist_cnn, saliency."""
    from explainbench.core import data
    from explainbench.core.tasks import ImageTask

    model = ci_model("mnist_cnn")
    images, labels = data.load_mnist("test")
    ids = np.array([3, 14, 15, 92])
    x = torch.from_numpy(images[ids].astype(np.float32) / 255.0).unsqueeze(1)
    task = ImageTask()
    probs = task.probabilities(model, x)
    targets = probs.argmax(1)
    a = explainers.get("saliency").explain(model, task, x, targets, seed=0)
    path = tmp_path_factory.mktemp("score") / "saliency.npz"
    arrays = dict(model="mnist_cnn", explainer="saliency", params=json.dumps({}), seed=0,
                  sample_ids=ids.astype(np.int64), labels=labels[ids].astype(np.int64),
                  targets=targets.numpy().astype(np.int64), probabilities=probs.numpy(),
                  inputs=x.numpy(), attributions=a.numpy())
    np.savez_compressed(path, **arrays)
    return path, arrays, model, task


def bench(monkeypatch, capsys, *args) -> tuple[int, str, str]:
    from explainbench.bench.cli import main

    monkeypatch.setattr(sys, "argv", ["bench", *map(str, args)])
    with pytest.raises(SystemExit) as exit_:
        main()
    out = capsys.readouterr()
    return exit_.value.code, out.out, out.err


def test_score_writes_one_row_per_sample(attribution_file, monkeypatch, capsys, tmp_path):
    path, arrays, model, task = attribution_file
    out = tmp_path / "deletion.csv"
    code, stdout, err = bench(monkeypatch, capsys, "score", "--model", "mnist_cnn", "--attributions",
                              path, "--metric", "deletion", "--steps", 14, "--substrate", "zero",
                              "--out", out)
    assert code == 0, err
    rows = pd.read_csv(out)
    assert list(rows.columns[:8]) == ["sample_id", "target", "metric", "value", "higher_is_better",
                                      "task", "model", "model_sha256"]
    # what `bench compare` pairs on: the definition versions of this code
    assert (rows.metric_version == metrics.version_of("deletion")).all() and (rows.seed == 0).all()
    assert rows.sample_id.tolist() == arrays["sample_ids"].tolist()
    assert (rows.metric == "deletion").all() and not rows.higher_is_better.any()
    assert (rows.model_sha256 == model.card["checkpoint_sha256"]).all()
    expected = metrics.get("deletion", steps=14, substrate="zero")(
        model, task, torch.from_numpy(arrays["inputs"]), torch.from_numpy(arrays["attributions"]),
        torch.from_numpy(arrays["targets"])).scores.numpy()
    np.testing.assert_allclose(rows.value.to_numpy(), expected, rtol=1e-6)
    for sid in arrays["sample_ids"]:
        assert str(sid) in stdout


def test_score_with_params_and_a_re_explaining_metric(attribution_file, monkeypatch, capsys, tmp_path):
    path, arrays, *_ = attribution_file
    code, _, err = bench(monkeypatch, capsys, "score", "-m", "mnist_cnn", "-a", path, "--metric",
                         "faithfulness_correlation", "--param", "nr_runs=12", "--param",
                         "subset_fraction=0.1", "--seed", 3, "--out", tmp_path / "fc.csv")
    assert code == 0, err
    assert json.loads(pd.read_csv(tmp_path / "fc.csv").metric_params[0])["nr_runs"] == 12
    # max_sensitivity reads the explainer from the file
    code, _, err = bench(monkeypatch, capsys, "score", "-m", "mnist_cnn", "-a", path, "--metric",
                         "max_sensitivity", "--param", "n_perturb_samples=2", "--out", tmp_path / "ms.csv")
    assert code == 0, err
    assert (pd.read_csv(tmp_path / "ms.csv").value >= 0).all()


def test_score_input_errors_are_one_line(attribution_file, monkeypatch, capsys, tmp_path):
    path, arrays, *_ = attribution_file
    without = tmp_path / "no_explainer.npz"
    np.savez(without, **{k: v for k, v in arrays.items() if k not in ("explainer", "params")})
    bad = tmp_path / "bad_shape.npz"
    np.savez(bad, **{**arrays, "attributions": arrays["attributions"][:, :27, :27]})
    cases = [
        (["--metric", "max_sensitivity", "-a", without], "needs the explainer.*--explainer NAME"),
        (["--metric", "deletion", "-a", bad], r"attributions has shape \(4, 27, 27\), expected \(4, 28, 28\)"),
        (["--metric", "faithfulness_correlation", "--steps", 5, "-a", path], "takes no --steps"),
        (["--metric", "deletion", "--substrate", "mask", "-a", path], "unknown substrate for mnist 'mask'"),
        (["--metric", "delection", "-a", path], "Did you mean 'deletion'"),
        (["--metric", "deletion", "--param", "steps", "-a", path], "key=value"),
        (["--metric", "deletion", "-a", tmp_path / "missing.npz"], "not found"),
    ]
    for args, message in cases:
        code, _, err = bench(monkeypatch, capsys, "score", "-m", "mnist_cnn", *args)
        assert code == 2, (args, err)
        assert len(err.strip().splitlines()) == 1 and err.startswith("error: "), err
        assert re.search(message, err), (message, err)
    code, _, err = bench(monkeypatch, capsys, "score", "-m", "imdb_lstm", "-a", path, "--metric", "road")
    assert code == 2 and "image inputs only" in err


BROKEN = {  # how an attribution file is broken -> a piece of the one line that refuses it
    "string targets": (lambda a: {**a, "targets": a["targets"].astype(str)}, "targets holds"),
    "string attributions": (lambda a: {**a, "attributions": a["attributions"].astype(str)},
                            "attributions holds"),
    "scalar inputs": (lambda a: {**a, "inputs": np.float32(1.0)}, "single value"),
    "float targets": (lambda a: {**a, "targets": a["targets"] + 0.5}, "expected integers"),
    "float ids": (lambda a: {**a, "sample_ids": a["sample_ids"].astype(float)}, "expected integers"),
    "nan targets": (lambda a: {**a, "targets": a["targets"].astype(float) * np.nan},
                    "expected integers"),
    "nan attributions": (lambda a: {**a, "attributions": a["attributions"] * np.nan}, "NaN"),
    "infinite inputs": (lambda a: {**a, "inputs": a["inputs"] / 0.0}, "NaN or infinite"),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_a_broken_attribution_file_is_one_line(attribution_file, tmp_path, monkeypatch, capsys,
                                               case):
    _, arrays, _, _ = attribution_file
    broken, piece = BROKEN[case]
    path = tmp_path / "broken.npz"
    with np.errstate(all="ignore"):
        np.savez(path, **broken(dict(arrays)))
    code, _, err = bench(monkeypatch, capsys, "score", "-m", "mnist_cnn", "-a", path,
                         "--metric", "deletion")
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and piece in lines[0], err


@pytest.mark.parametrize("content", [b"", b"PK\x03\x04truncated"])
def test_an_empty_or_truncated_file_is_one_line(tmp_path, monkeypatch, capsys, content):
    path = tmp_path / "cut.npz"
    path.write_bytes(content)
    code, _, err = bench(monkeypatch, capsys, "score", "-m", "mnist_cnn", "-a", path,
                         "--metric", "deletion")
    assert code == 2 and "not a readable .npz" in err and len(err.strip().splitlines()) == 1


def test_out_of_range_options_and_outputs_are_refused(attribution_file, tmp_path, monkeypatch,
                                                      capsys):
    path, _, _, _ = attribution_file
    for extra, code, piece in ((["--seed", "99999999999999"], 2, "--seed"),
                               (["--batch-size", "99999999999999999999"], 2, "--batch-size"),
                               (["-o", str(tmp_path)], 2, "is a folder"),
                               (["-o", "/proc/nope/x.csv"], 5, "cannot create")):
        got, _, err = bench(monkeypatch, capsys, "score", "-m", "mnist_cnn", "-a", path,
                            "--metric", "deletion", *extra)
        assert got == code and piece in err and len(err.strip().splitlines()) == 1, (extra, err)
