"""The Ray backend on a local runtime with 2 CPUs gives the local backend's scores, and resumes."""

from __future__ import annotations

import copy
import sys

import pandas as pd
import pytest

from explainbench.bench.run import runner, suite as suites
from explainbench.core.errors import BenchError
from tests.bench.test_runner import TINY


def test_ray_backend_matches_local_and_resumes(tmp_path, real_data, monkeypatch):
    ray = pytest.importorskip("ray")
    monkeypatch.setenv("BENCH_ATTRIBUTION_CACHE", "0")  # both backends really compute
    suite = suites.parse(copy.deepcopy(TINY))
    local = runner.run(suite, tmp_path / "local", device="cpu", show_progress=False)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        distributed = runner.run(suite, tmp_path / "ray", device="cpu", show_progress=False,
                                 backend="ray")
        assert distributed.ok and distributed.done == local.total
        pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "ray" / "scores.parquet"),
                                      pd.read_parquet(tmp_path / "local" / "scores.parquet"))
        # resuming works the same way: drop one finished cell, rerun, identical again
        victim = next(p for p in (tmp_path / "ray" / "parts").glob("*.parquet")
                      if not p.name.endswith(".curves.parquet"))
        victim.unlink()
        again = runner.run(suite, tmp_path / "ray", device="cpu", show_progress=False, backend="ray")
        assert again.done == 1 and again.skipped == local.total - 1
        pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "ray" / "scores.parquet"),
                                      pd.read_parquet(tmp_path / "local" / "scores.parquet"))
    finally:
        ray.shutdown()


def test_without_ray_the_backend_says_how_to_install_it(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    with pytest.raises(BenchError, match=r"pip install 'explainbench-xai\[ray\]'"):
        runner.run(suites.parse(copy.deepcopy(TINY)), tmp_path / "x", device="cpu",
                   show_progress=False, backend="ray")
    assert not (tmp_path / "x").exists()


def test_unknown_backend_is_one_line(tmp_path):
    with pytest.raises(BenchError, match="Valid choices: local, ray"):
        runner.run(suites.parse(copy.deepcopy(TINY)), tmp_path / "x", backend="spark")
