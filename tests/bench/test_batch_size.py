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
        calls.append(ctx.batch_for(task))
        if ctx.batch_for(task) > 16:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return real_execute(cell, suite, ctx)

    monkeypatch.setattr(execute, "execute", flaky)
    files, failure = execute.compute_cell(cell, suite, ctx)
    assert failure is None and "parquet" in files
    assert calls == [64, 32, 16] and ctx.batch_for(task) == 16
