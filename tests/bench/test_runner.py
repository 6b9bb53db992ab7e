"""The runner end to end on tiny slices of the real data with ci-profile models."""

from __future__ import annotations

import copy

import pandas as pd
import pytest

from explainbench.bench import report
from explainbench.bench.run import runner, suite as suites
from explainbench.bench.cells.context import RunContext
from explainbench.core.errors import BenchError
from explainbench.bench.store import SCORE_COLUMNS, ResultStore

TINY = {
    "name": "tiny",
    "version": 1,
    "seeds": [0],
    "chunk_size": 3,
    "experiments": [
        {
            "name": "mnist",
            "floor": False,  # counts below are for the listed explainers; the floor has its test
            "slice": {"name": "mnist-test", "size": 5},
            "models": ["mnist_cnn"],
            "explainers": ["saliency", {"name": "integrated_gradients", "params": {"n_steps": 8}}],
            "metrics": [{"name": "deletion", "params": {"steps": 4, "substrate": "zero"}},
                        {"name": "insertion", "params": {"steps": 4, "substrate": "blur"}}],
        },
        {
            "name": "imdb",
            "floor": False,
            "slice": {"name": "imdb-test", "size": 2},
            "models": ["imdb_lstm"],
            "explainers": ["saliency"],
            "metrics": [{"name": "deletion", "params": {"steps": 5, "substrate": "mask"}}],
        },
    ],
}


@pytest.fixture
def tiny_suite():
    return suites.parse(copy.deepcopy(TINY), source="tiny")


def test_run_writes_scores_manifest_and_leaderboard(tmp_path, tiny_suite, real_data):
    summary = runner.run(tiny_suite, tmp_path / "run", device="cpu", show_progress=False)
    assert summary.ok and summary.total == 2 * 2 + 1 and summary.done == 5
    report.write_all(summary.out, plots=False)  # `bench run` writes the report after the cells
    scores = pd.read_parquet(tmp_path / "run" / "scores.parquet")
    assert list(scores.columns) == SCORE_COLUMNS
    # 5 images x 2 explainers x 2 metrics + 2 reviews x 1 x 1, and each explained sample's
    # tied-feature share (5 x 2 + 2 x 1)
    assert len(scores) == 5 * 2 * 2 + 2 + 5 * 2 + 2
    assert scores["value"].notna().all()
    mnist = scores[scores.task == "mnist"]
    assert set(mnist.sample_id) == set(RunContext("cpu").slice(tiny_suite.experiments[0].slice).ids)
    assert (mnist.loc[mnist.metric == "deletion", "higher_is_better"] == False).all()  # noqa: E712
    assert (scores.correct == (scores.pred == scores.label)).all()
    manifest = ResultStore(tmp_path / "run").read_manifest()
    assert manifest["suite"]["hash"] == tiny_suite.content_hash
    assert set(manifest["models"]) == {"mnist_cnn", "imdb_lstm"}
    assert manifest["end_utc"] and manifest["packages"]["torch"]
    board = pd.read_csv(tmp_path / "run" / "leaderboard.csv")
    board = board[board.metric != "tied_feature_share"]
    assert len(board) == 2 * 2 + 1
    row = board[(board.explainer == "saliency") & (board.metric == "deletion") & (board.task == "mnist")]
    expected = mnist[(mnist.explainer == "saliency") & (mnist.metric == "deletion")]["value"]
    assert row["mean"].item() == pytest.approx(expected.mean()) and row["n"].item() == 5
    curves = pd.read_parquet(tmp_path / "run" / "curves.parquet")
    assert set(curves.step) == set(range(6)) | set(range(5))


def test_rerun_skips_finished_cells_and_gives_identical_scores(tmp_path, tiny_suite, real_data):
    out = tmp_path / "run"
    runner.run(tiny_suite, out, device="cpu", show_progress=False)
    first = pd.read_parquet(out / "scores.parquet")
    parts = sorted(p.name for p in (out / "parts").iterdir())
    # simulate a run killed after three cells: remove two finished parts
    victims = [p for p in (out / "parts").glob("*.parquet") if "curves" not in p.name][:2]
    for v in victims:
        v.unlink()
    again = runner.run(tiny_suite, out, device="cpu", show_progress=False)
    assert again.done == 2 and again.skipped == 3
    pd.testing.assert_frame_equal(pd.read_parquet(out / "scores.parquet"), first)
    assert sorted(p.name for p in (out / "parts").iterdir()) == parts


def test_a_folder_of_another_suite_is_refused(tmp_path, tiny_suite, real_data):
    runner.run(tiny_suite, tmp_path, device="cpu", show_progress=False)
    other = copy.deepcopy(TINY)
    other["version"] = 2
    with pytest.raises(BenchError, match="choose another --out"):
        runner.run(suites.parse(other), tmp_path, device="cpu", show_progress=False)


def test_second_writer_is_locked_out(tmp_path):
    """Another process is refused while one holds the folder; the holder may take it again
    (re-entrant: `bench report` recomputing damaged cells); no .lock is left behind."""
    import subprocess
    import sys

    probe = ("import sys; from pathlib import Path; from explainbench.bench.store import "
             "ResultStore, RunLockedError\n"
             "try:\n    with ResultStore(Path(sys.argv[1])).lock('bench report'): pass\n"
             "except RunLockedError as e:\n    print(e); sys.exit(9)")
    store = ResultStore(tmp_path)
    with store.lock():
        with ResultStore(tmp_path).lock():  # the same process: re-entrant
            pass
        other = subprocess.run([sys.executable, "-c", probe, str(tmp_path)], capture_output=True,
                               text=True)
        assert other.returncode == 9 and "in use by bench run (pid" in other.stdout, other
        assert (tmp_path / ".lock").is_file()
    assert not (tmp_path / ".lock").exists()
    other = subprocess.run([sys.executable, "-c", probe, str(tmp_path)], capture_output=True)
    assert other.returncode == 0  # released


def test_the_random_floor_is_scored_beside_every_experiment(tmp_path, real_data):
    raw = copy.deepcopy(TINY)
    raw["experiments"] = raw["experiments"][:1]
    raw["experiments"][0]["floor"] = True
    suite = suites.parse(raw)
    assert {c.explainer.name for c in runner.plan(suite)} == {"saliency", "integrated_gradients",
                                                            "random"}
    runner.run(suite, tmp_path, device="cpu", show_progress=False)
    report.write_all(tmp_path, plots=False)
    board = pd.read_csv(tmp_path / "leaderboard" / "mnist-mnist_cnn.csv")
    deletion = board[board.metric == "deletion"].set_index("explainer")
    floor = deletion.loc["random", "mean"]
    assert (deletion["floor_mean"] == floor).all()
    assert deletion.loc["saliency", "better_than_floor_by"] == pytest.approx(
        floor - deletion.loc["saliency", "mean"])


def test_a_dot_or_slash_in_an_experiment_name_loses_nothing(tmp_path, real_data):
    """`name: mnist.v2` used to split the cell id at its dot: the run computed, then `bench report`
    moved every valid part to damaged/ and left scores.parquet empty."""
    raw = copy.deepcopy(TINY)
    raw["experiments"] = raw["experiments"][:1]
    raw["experiments"][0]["name"] = "mnist.v2/../x"
    summary = runner.run(suites.parse(raw), tmp_path / "run", device="cpu", show_progress=False)
    assert summary.ok
    assert ResultStore(tmp_path / "run").verify().ok
    report.write_all(tmp_path / "run", plots=False)
    scores = pd.read_parquet(tmp_path / "run" / "scores.parquet")
    assert len(scores) and set(scores.experiment) == {"mnist.v2/../x"}
    assert all(p.parent == tmp_path / "run" / "parts" for p in (tmp_path / "run").rglob("*.parquet")
               if "parts" in p.parts)


def test_parallel_workers_give_the_serial_scores_and_resume_alike(tmp_path, real_data,
                                                                  monkeypatch):
    """--workers 3 against one after another at one thread per cell: exactly the same
    scores.parquet and curves (cells in other processes, in another order); a resume with
    workers finds nothing to do."""
    monkeypatch.setenv("BENCH_ATTRIBUTION_CACHE", "0")  # each run computes its own maps
    raw = copy.deepcopy(TINY)
    raw["experiments"][0]["explainers"].append({"name": "lime_batched", "params": {"n_samples": 20}})
    raw["experiments"][0]["studies"] = {"stability": {"explainers": ["lime_batched"], "seeds": 2}}
    raw["seeds"] = [0, 1]
    serial = runner.run(suites.parse(copy.deepcopy(raw)), tmp_path / "serial", device="cpu",
                        show_progress=False, threads=1)
    parallel = runner.run(suites.parse(copy.deepcopy(raw)), tmp_path / "parallel", device="cpu",
                          show_progress=False, workers=3, threads=1)
    assert serial.ok and parallel.ok and serial.done == parallel.done > 6
    for name in ("scores.parquet", "curves.parquet"):  # exactly: the same threads per cell
        a = pd.read_parquet(tmp_path / "serial" / name)
        b = pd.read_parquet(tmp_path / "parallel" / name)
        pd.testing.assert_frame_equal(a, b, check_exact=True)
    again = runner.run(suites.parse(copy.deepcopy(raw)), tmp_path / "parallel", device="cpu",
                       show_progress=False, workers=3, threads=1)
    assert again.done == 0 and again.skipped == parallel.total
    assert ResultStore(tmp_path / "parallel").verify().ok
