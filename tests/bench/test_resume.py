"""Killing a run at any moment (SIGKILL) and rerunning gives the uninterrupted run's scores;
a failing explainer is recorded and the other cells finish."""

from __future__ import annotations

import copy
import os
import random
import signal
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from explainbench.bench.run import runner, suite as suites
from tests.bench.test_runner import TINY

ROOT = Path(__file__).resolve().parents[2]


def _start(suite_file: Path, out: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "BENCH_ATTRIBUTION_CACHE": "0"}
    return subprocess.Popen(
        [sys.executable, "-m", "explainbench.bench", "run", "--suite", str(suite_file), "--out", str(out),
         "--device", "cpu", "--no-progress"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def test_sigkill_at_random_moments_then_resume_gives_identical_scores(tmp_path, real_data):
    suite_file = tmp_path / "tiny.yaml"
    suite_file.write_text(yaml.safe_dump(TINY))
    reference = tmp_path / "reference"
    assert _start(suite_file, reference).wait(timeout=600) == 0

    out = tmp_path / "killed"
    rng = random.Random(7)
    kills = 0
    for _ in range(3):  # kill -9 at random moments (start-up, mid-cell, while writing)
        proc = _start(suite_file, out)
        try:
            proc.wait(timeout=rng.uniform(2.0, 9.0))
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            kills += 1
    final = _start(suite_file, out)  # then the same command, left to finish
    assert final.wait(timeout=600) == 0, final.stderr.read()
    assert kills >= 1, "no kill landed; the test exercised nothing"
    pd.testing.assert_frame_equal(pd.read_parquet(out / "scores.parquet"),
                                  pd.read_parquet(reference / "scores.parquet"))
    # nothing duplicated: one part per cell
    parts = [p for p in (out / "parts").glob("*.parquet") if not p.name.endswith(".curves.parquet")]
    assert len(parts) == len(runner.plan(suites.parse(copy.deepcopy(TINY))))


@pytest.fixture
def broken_explainers(monkeypatch):
    from explainbench import explainers
    from explainbench.core.registry import Entry

    for name, target in (("always_fails", "tests.bench.failing:AlwaysFails"),
                         ("returns_nan", "tests.bench.failing:ReturnsNaN")):
        monkeypatch.setitem(explainers.REGISTRY._entries, name, Entry(name, target))


def test_a_failing_explainer_is_recorded_and_the_rest_finishes(tmp_path, real_data,
                                                               broken_explainers):
    raw = copy.deepcopy(TINY)
    raw["experiments"][0]["explainers"] += ["always_fails", "returns_nan"]
    summary = runner.run(suites.parse(raw), tmp_path / "run", device="cpu", show_progress=False)
    assert len(summary.failed) == 4  # two chunks of each broken explainer
    assert summary.done == summary.total - 4
    failures = pd.read_csv(tmp_path / "run" / "failures.csv")
    assert len(failures) == 4 and (failures["error_type"] == "ExplainerError").all()
    assert failures["error"].str.contains("always fails").sum() == 2
    nan = failures[failures["explainer"] == "returns_nan"]["error"]
    assert nan.str.contains("non-finite attributions").all() and nan.str.contains("sample ids").all()
    scores = pd.read_parquet(tmp_path / "run" / "scores.parquet")
    assert len(scores[scores.category != "ties"]) == 22  # every other cell is there
    # --retry-failed runs only those again (and they fail again, still recorded once each)
    again = runner.run(suites.parse(raw), tmp_path / "run", device="cpu", show_progress=False,
                       retry_failed=True)
    assert again.skipped == summary.total - 4 and len(again.failed) == 4


def test_a_cell_over_its_time_limit_fails_and_the_run_goes_on(tmp_path, real_data):
    raw = copy.deepcopy(TINY)
    raw["cell_timeout_s"] = 0.001
    summary = runner.run(suites.parse(raw), tmp_path / "run", device="cpu", show_progress=False)
    assert summary.failed and all(f["error_type"] == "CellTimeout" for f in summary.failed)


def test_cli_exit_code_is_1_when_cells_failed(tmp_path, real_data):
    raw = copy.deepcopy(TINY)
    raw["experiments"] = raw["experiments"][:1]
    # fails when it runs, not when the suite is checked: a text baseline ([MASK]) for images
    raw["experiments"][0]["explainers"] = [{"name": "integrated_gradients",
                                            "params": {"n_steps": 4, "baseline": "mask"}}]
    suite_file = tmp_path / "fails.yaml"
    suite_file.write_text(yaml.safe_dump(raw))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = subprocess.run([sys.executable, "-m", "explainbench.bench", "run", "--suite", str(suite_file),
                             "--out", str(tmp_path / "o"), "--device", "cpu", "--no-progress"],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 1
    assert "failed" in result.stdout and "--retry-failed" in result.stdout
