"""Scores do not depend on the forward batch size, and an out-of-memory cell halves it and retries."""

from __future__ import annotations

import copy

import pandas as pd
import torch

from explainbench import models
from explainbench.bench.run import execute, runner, suite as suites
from explainbench.bench.cells.context import RunContext
from tests.bench.test_runner import TINY


def test_scores_do_not_depend_on_the_batch_size(tmp_path, real_data, monkeypatch):
    monkeypatch.setenv("BENCH_ATTRIBUTION_CACHE", "0")
    suite = suites.parse(copy.deepcopy(TINY))
    runner.run(suite, tmp_path / "big", device="cpu", batch_size=256, show_progress=False)
    runner.run(suite, tmp_path / "small", device="cpu", batch_size=3, show_progress=False)
    big = pd.read_parquet(tmp_path / "big" / "scores.parquet")
    small = pd.read_parquet(tmp_path / "small" / "scores.parquet")
    pd.testing.assert_frame_equal(big, small, check_exact=False, rtol=1e-5, atol=1e-6)


def test_out_of_memory_halves_the_batch_and_retries(real_data, monkeypatch):
    suite = suites.parse(copy.deepcopy(TINY))
    cell = runner.plan(suite)[0]
    ctx = RunContext(torch.device("cpu"), batch_size=64)
    real_execute = execute.execute
    calls = []

    task = models.task_of(cell.model)

    def flaky(cell, suite, ctx):
        calls.append(ctx.batch_for(task, cell.model))
        if ctx.batch_for(task, cell.model) > 16:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return real_execute(cell, suite, ctx)

    monkeypatch.setattr(execute, "execute", flaky)
    files, failure = execute.compute_cell(cell, suite, ctx)
    assert failure is None and "parquet" in files
    assert calls == [64, 32, 16] and ctx.batch_for(task, cell.model) == 16


def test_the_fastest_measured_batch_wins_and_ties_go_to_the_smaller():
    from explainbench.bench.run.batch_tuning import fastest

    assert fastest({64: 3e-4, 128: 1e-4, 256: 2e-4}) == 128
    assert fastest({256: 1e-4, 128: 1e-4}) == 128
    # the default stays unless beaten by more than the noise margin (5 %)
    assert fastest({64: 1.0e-4, 128: 0.98e-4, 256: 1.02e-4}, default=256) == 256
    assert fastest({64: 1.0e-4, 128: 0.9e-4, 256: 1.06e-4}, default=256) == 128


def test_measurement_sees_the_per_call_cost_that_large_batches_amortise(monkeypatch):
    """A forward that costs 2 ms per call whatever its size: per row, 8 rows cost 8x as much as
    64, so the measurement must pick 64 and report about 2 ms / rows for each."""
    import time

    from explainbench.bench.run import batch_tuning

    task = models.task_of("mnist_logreg")
    monkeypatch.setattr(task, "forward", lambda model, x: time.sleep(0.002))
    monkeypatch.setattr(batch_tuning, "ROUND_SECONDS", 0.02)
    times = batch_tuning.measure("mnist_logreg", torch.device("cpu"), (8, 64))
    assert batch_tuning.fastest(times) == 64
    for rows, per_row in times.items():
        assert 0.002 / rows <= per_row < 0.004 / rows  # sleep is never shorter, rarely 2x longer


def test_a_machine_measures_each_model_once_and_keeps_its_choice(tmp_path, monkeypatch):
    from explainbench.bench.run import batch_tuning

    monkeypatch.setenv("BENCH_CACHE_DIR", str(tmp_path))
    measured = []

    def scripted(name, device, candidates):
        measured.append(name)
        return {b: (1e-4 if b == 128 else 2e-4) for b in candidates}

    monkeypatch.setattr(batch_tuning, "measure", scripted)
    monkeypatch.setattr(batch_tuning, "machine_load", lambda: None)  # idle
    first = batch_tuning.forward_batches(["mnist_cnn", "imdb_lstm"], torch.device("cpu"))
    assert first["mnist_cnn"]["batch"] == 128 and first["mnist_cnn"]["measured_now"]
    assert first["imdb_lstm"]["batch"] == 32  # 128 is not a text candidate: all tie, the default
    again = batch_tuning.forward_batches(["mnist_cnn"], torch.device("cpu"))
    assert again["mnist_cnn"]["batch"] == 128 and not again["mnist_cnn"]["measured_now"]
    assert measured == ["imdb_lstm", "mnist_cnn"]  # never measured twice on one machine
    assert "measured now" in batch_tuning.describe(first)
    # measured while the machine is busy: used, said, not kept
    monkeypatch.setattr(batch_tuning, "machine_load", lambda: 3.2)
    busy = batch_tuning.forward_batches(["mnist_logreg"], torch.device("cpu"))
    assert busy["mnist_logreg"]["batch"] == 128 and "under load 3.2: not kept" in batch_tuning.describe(busy)
    batch_tuning.forward_batches(["mnist_logreg"], torch.device("cpu"))
    assert measured.count("mnist_logreg") == 2


def test_a_run_uses_and_records_the_measured_batch(tmp_path, real_data, monkeypatch):
    from explainbench.bench.run import batch_tuning

    monkeypatch.setenv("BENCH_TUNE_BATCH", "1")
    monkeypatch.setenv("BENCH_ATTRIBUTION_CACHE", "0")
    suite = suites.parse(copy.deepcopy(TINY))
    names = {c.model for c in runner.plan(suite)}
    monkeypatch.setattr(batch_tuning, "forward_batches", lambda models, device: {
        n: {"batch": 7, "seconds_per_row": {"7": 1e-4}, "measured_now": True} for n in models})
    seen = set()
    real_get = execute.execute

    def spy(cell, suite, ctx):
        seen.add(ctx.batch_for(models.task_of(cell.model), cell.model))
        return real_get(cell, suite, ctx)

    monkeypatch.setattr(execute, "execute", spy)
    summary = runner.run(suite, tmp_path / "run", device="cpu", show_progress=False)
    import json

    manifest = json.loads((summary.out / "manifest.json").read_text())
    assert manifest["sessions"][-1]["forward_batches"] == {n: 7 for n in sorted(names)}
    assert seen == {7}
    # --batch-size wins over the measurement, and says so
    runner.run(suite, tmp_path / "fixed", device="cpu", batch_size=5, show_progress=False)
    manifest = json.loads((tmp_path / "fixed" / "manifest.json").read_text())
    assert manifest["sessions"][-1]["forward_batches"] == {"all models": 5} and seen == {7, 5}
