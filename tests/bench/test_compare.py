"""`bench compare`: a new explainer ranked against a published run from its per-sample scores.

End to end as a method author would: publish a baseline, write the README's plugin (a saliency
clone), `bench run --suite BASE --explainer my_saliency`, `bench compare`. The clone must come
out with the published saliency's numbers; a definition version bump, another checkpoint, a
damaged published file are refused with one line; a partial overlap is compared on the common
samples."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from explainbench.core.errors import BenchError
from tests.core.test_plugins import readme_examples

ROOT = Path(__file__).resolve().parents[2]
BASE = {
    "name": "compare-base", "version": 1, "seeds": [0], "chunk_size": 6,
    "experiments": [{
        "name": "mnist", "slice": {"name": "mnist-test", "size": 6}, "models": ["mnist_cnn"],
        "explainers": ["saliency", {"name": "integrated_gradients", "params": {"n_steps": 8}},
                       "edge"],
        "metrics": [{"name": "deletion", "params": {"steps": 4, "substrate": "zero"}},
                    {"name": "insertion", "params": {"steps": 4, "substrate": "blur"}},
                    "sparseness"],
        "studies": {"agreement": {}},
    }],
}


def bench(*args, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "100"}
    return subprocess.run([sys.executable, "-m", "explainbench.bench", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=900)


@pytest.fixture(scope="module")
def published(tmp_path_factory, real_data):
    """A published baseline (results/ with per-sample scores) and the plugin's run beside it."""
    root = tmp_path_factory.mktemp("compare")
    (root / "base.yaml").write_text(yaml.safe_dump(BASE))
    for name, content in readme_examples().items():
        (root / name).write_text(content)
    done = bench("run", "--suite", "base.yaml", "--out", "base", "--no-progress", cwd=root)
    assert done.returncode == 0, done.stderr
    done = bench("leaderboard", "publish", "base", "--dest", "results/leaderboard", cwd=root)
    assert done.returncode == 0, done.stderr
    done = bench("run", "--suite", "base.yaml", "--explainer", "my_saliency", "--plugin",
                 "my_saliency.py", "--out", "mine", "--no-progress", cwd=root)
    assert done.returncode == 0, done.stderr
    return root


def test_publish_writes_per_sample_scores_with_provenance(published):
    results = published / "results"
    scores = pd.read_parquet(results / "scores.parquet")
    provenance = json.loads((results / "scores.json").read_text())
    from explainbench.core.data import file_digest

    assert provenance["sha256"] == file_digest(results / "scores.parquet")
    assert provenance["definitions"]["metrics"]["deletion"] == 2  # the random tie order
    assert provenance["models"]["mnist_cnn"] == scores["model_sha256"].iloc[0]
    assert {"explainer_version", "metric_version", "sample_id", "seed", "metric_params"} <= set(scores.columns)
    base = pd.read_parquet(published / "base" / "scores.parquet")
    assert len(scores) == len(base)
    # every table FINDINGS.md cites is published beside it
    import re

    answered = [line for line in (results / "FINDINGS.md").read_text().splitlines()
                if "no data for this question" not in line]  # those name the table they lack
    cited = set(re.findall(r"\*\(([^()*]+\.(?:csv|json))\)\*", "\n".join(answered)))
    assert cited and all((results / name).is_file() or name.startswith("leaderboard/")
                         for name in cited), cited
    assert (results / "agreement_pairs.csv").is_file() and (results / "versus_controls.csv").is_file()


def test_the_readme_saliency_clone_comes_out_as_the_published_saliency(published):
    done = bench("compare", "mine", "--baseline", "results", "--plugin", "my_saliency.py",
                 cwd=published)
    assert done.returncode == 0, done.stderr
    out = published / "mine" / "compare"
    board = pd.read_csv(out / "leaderboard" / "mnist-mnist_cnn.csv")
    for metric in ("deletion[steps=4,substrate=zero]", "insertion[steps=4,substrate=blur]", "sparseness"):
        rows = board[board["metric"].str.startswith(metric.split("[")[0])].set_index("explainer")
        assert rows.loc["my_saliency", "mean"] == rows.loc["saliency", "mean"], metric
        assert rows.loc["my_saliency", "rank"] == rows.loc["saliency", "rank"], metric
    ranks = board.drop_duplicates("explainer").set_index("explainer")["mean_faithfulness_rank"]
    assert ranks["my_saliency"] == ranks["saliency"]
    pairwise = pd.read_csv(out / "pairwise.csv")
    same = pairwise[pairwise["other"] == "saliency"]
    assert len(same) == 3 and (same["p"] == 1).all() and (same["verdict"] == "not different").all()
    text = (out / "COMPARE.md").read_text()
    assert "my_saliency on mnist_cnn: ranks" in text and "tied with 1" in text
    assert "not significantly different from" in text and "saliency" in text
    assert set(pd.read_csv(out / "versus_controls.csv")["explainer"]) == {"my_saliency"}
    assert "my_saliency on mnist_cnn" in done.stdout


def test_a_definition_version_bump_makes_compare_refuse_old_scores(published, monkeypatch):
    from explainbench import metrics
    from explainbench.bench.report import compare

    real = metrics.version_of
    monkeypatch.setattr(metrics, "version_of", lambda m: 3 if m == "deletion" else real(m))
    with pytest.raises(BenchError, match="metric deletion was scored by definition version 2; "
                                         "this code's is 3"):
        compare.compare(published / "mine", published / "results")


def _republished(published, tmp_path, change) -> Path:
    """A copy of the published folder with its scores changed by `change` and its digest
    recomputed (a consistent publication of something else)."""
    from explainbench.core.data import file_digest

    folder = tmp_path / "results"
    folder.mkdir()
    scores = change(pd.read_parquet(published / "results" / "scores.parquet"))
    scores.to_parquet(folder / "scores.parquet", index=False)
    provenance = json.loads((published / "results" / "scores.json").read_text())
    provenance["sha256"] = file_digest(folder / "scores.parquet")
    (folder / "scores.json").write_text(json.dumps(provenance))
    return folder


def test_another_checkpoint_or_metric_setting_is_one_line_naming_both_values(published, tmp_path):
    other = _republished(published, tmp_path, lambda s: s.assign(model_sha256="f" * 64))
    done = bench("compare", "mine", "--baseline", str(other), "--plugin", "my_saliency.py",
                 cwd=published)
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1, done.stderr
    assert "model_sha256 differs" in lines[0] and "f" * 64 in lines[0]


def test_a_published_file_that_fails_its_digest_is_refused(published, tmp_path):
    folder = tmp_path / "results"
    folder.mkdir()
    for name in ("scores.parquet", "scores.json"):
        (folder / name).write_bytes((published / "results" / name).read_bytes())
    payload = bytearray((folder / "scores.parquet").read_bytes())
    payload[100] ^= 0xFF
    (folder / "scores.parquet").write_bytes(bytes(payload))
    done = bench("compare", "mine", "--baseline", str(folder), "--plugin", "my_saliency.py",
                 cwd=published)
    assert done.returncode == 2 and "fails its digest" in done.stderr, done.stderr


def test_a_partial_overlap_is_compared_on_the_common_samples(published, tmp_path):
    from explainbench.bench.report import compare

    keep = sorted(pd.read_parquet(published / "results" / "scores.parquet")["sample_id"].unique())[:4]
    fewer = _republished(published, tmp_path, lambda s: s[s["sample_id"].isin(keep)])
    result = compare.compare(published / "mine", fewer)
    assert any("compared on the 4 samples both have (this run 6, baseline 4)" in n
               for n in result.notes)
    board = result.boards[("mnist", "mnist_cnn")]
    assert (board["n"] == 4).all()
    assert np.isfinite(board["mean"]).all()


def _score_external(root: Path, npz: str, name: str) -> list[str]:
    """`bench score` of an .npz with the baseline's three metric settings: the files written."""
    files = []
    for metric, extra in (("deletion", ["--steps", "4", "--substrate", "zero"]),
                          ("insertion", ["--steps", "4", "--substrate", "blur"]), ("sparseness", [])):
        target = f"{Path(npz).parent}/{name}.{metric}.csv"
        done = bench("score", "-m", "mnist_cnn", "-a", npz, "--metric", metric, *extra,
                     "--name", name, "-o", target, cwd=root)
        assert done.returncode == 0, done.stderr
        files.append(target)
    return files


def test_attributions_made_elsewhere_compare_through_bench_score(published):
    """An .npz from anywhere (here `bench explain` writes saliency's maps, as a user's own code
    would), scored with `bench score` metric by metric and compared from those files: it comes
    out with the published saliency's means and p = 1 against it, under its own name."""
    root = published
    (root / "ext").mkdir()
    done = bench("explain", "-m", "mnist_cnn", "-e", "saliency", "--n", "6", "-o", "ext/maps.npz", cwd=root)
    assert done.returncode == 0, done.stderr
    files = _score_external(root, "ext/maps.npz", "external")
    done = bench("compare", *files, "--baseline", "results", cwd=root)
    assert done.returncode == 0, done.stderr
    out = root / "ext" / "compare"
    board = pd.read_csv(out / "leaderboard" / "mnist-mnist_cnn.csv")
    for metric in ("deletion", "insertion", "sparseness"):
        rows = board[board["metric"].str.startswith(metric)].set_index("explainer")
        assert rows.loc["external", "mean"] == rows.loc["saliency", "mean"], metric
        assert rows.loc["external", "n"] == rows.loc["saliency", "n"] == 6
    pairwise = pd.read_csv(out / "pairwise.csv")
    same = pairwise[(pairwise["explainer"] == "external") & (pairwise["other"] == "saliency")]
    assert len(same) == 3 and (same["p"] == 1).all()
    assert "external on mnist_cnn: ranks" in (out / "COMPARE.md").read_text()


def test_a_file_explaining_other_classes_than_the_baseline_is_refused(published):
    root = published
    (root / "other").mkdir()
    done = bench("explain", "-m", "mnist_cnn", "-e", "saliency", "--n", "6", "-o", "other/maps.npz", cwd=root)
    assert done.returncode == 0, done.stderr
    with np.load(root / "other" / "maps.npz") as npz:
        arrays = {k: npz[k] for k in npz.files}
    arrays["targets"] = (arrays["targets"] + 1) % 10
    np.savez(root / "other" / "shifted.npz", **arrays)
    files = _score_external(root, "other/shifted.npz", "shifted")
    done = bench("compare", *files, "--baseline", "results", cwd=root)
    assert done.returncode == 2
    line = done.stderr.strip().splitlines()[-1]
    assert "the file explains class" in line and "6 samples differ" in line, line
