"""`bench plan`: the forward passes it counts are the ones a run makes, and its arithmetic holds on
scripted throughputs (no clock is read)."""

from __future__ import annotations

import copy
import json
import subprocess
import sys

import pandas as pd
import pytest

from explainbench.bench.run import forecast, runner, suite as suites, suite_cells as planning
from explainbench.bench.run.forecast import Throughput
from tests.bench.test_runner import TINY

# explainers whose forward passes are exact (no adaptive refinement), metrics sharing a curve
EXACT = {
    "name": "exact", "version": 1, "seeds": [0, 1], "chunk_size": 3,
    "experiments": [{
        "name": "mnist", "floor": True, "slice": {"name": "mnist-test", "size": 5},
        "models": ["mnist_cnn"],
        "explainers": ["saliency", {"name": "smoothgrad", "params": {"n_samples": 4}},
                       {"name": "occlusion", "params": {"window": 7, "stride": 7}}],
        "metrics": [{"name": "deletion", "params": {"steps": 4, "substrate": "zero"}},
                    {"name": "mif", "params": {"steps": 4, "substrate": "zero"}},
                    {"name": "srg", "params": {"steps": 4, "substrate": "zero"}},
                    {"name": "road", "params": {"percentages": [10, 50]}}, "sparseness"],
        "studies": {"stability": {"seeds": 2}, "agreement": {}},
    }],
}


def exact_suite():
    return suites.parse(copy.deepcopy(EXACT), source="exact")


def test_planned_forward_passes_are_the_counted_ones(tmp_path, real_data, monkeypatch):
    """Per cell, the plan's forward passes equal the rows the run pushed through the model;
    deletion, MIF and SRG share two curves; the stability and agreement studies read the
    explanations the scores cells made."""
    monkeypatch.setenv("BENCH_ATTRIBUTION_CACHE", "0")  # cells compute; the planner simulates it
    suite = exact_suite()
    cells = planning.plan(suite)
    planned = {cell.id: sum(w.forward for w in work.values())
               for cell, work in forecast.plan_cells(cells)}
    runner.run(suite, tmp_path / "run", device="cpu", show_progress=False)
    timings = pd.read_csv(tmp_path / "run" / "timings.csv").set_index("cell_id")
    # without the cache the studies recompute: the planner's cache-free count is each cell alone
    alone = {}
    for cell in cells:
        (_, work), = forecast.plan_cells([cell])
        alone[cell.id] = sum(w.forward for w in work.values())
    assert {k: int(v) for k, v in timings["forward_passes"].items()} == \
        {k: int(v) for k, v in alone.items()}
    # with the cache: the studies' explanations are free, only the chunk's predictions remain
    # (but for the stability controls: a deterministic explainer's second seed is new work)
    from explainbench import explainers

    for cell in cells:
        reused = cell.kind == "agreement" or (
            cell.kind == "stability" and explainers.get_class(cell.explainer.name).stochastic)
        if reused:
            assert planned[cell.id] == cell.n_samples
        elif cell.kind == "stability" and cell.explainer.name == "saliency":
            assert planned[cell.id] == cell.n_samples * 2  # seed 1 explained anew: 1 pass each
        elif cell.kind == "stability":  # occlusion's 4 x 4 windows of 7 pixels + the input
            assert planned[cell.id] == cell.n_samples * (1 + 17)
    # sharing: deletion == MIF and SRG needs MIF's and LIF's curves: 2 x 5 points, not 4 x 5
    scores_cell = next(c for c in cells if c.kind == "scores" and c.explainer.name == "saliency")
    (_, work), = forecast.plan_cells([scores_cell])
    n = scores_cell.n_samples
    assert work["metric deletion"].forward == n * 5
    assert work["metric mif"].forward == 0 and work["metric srg"].forward == n * 5
    assert work["metric road"].forward == n * 2 * 2


def test_seconds_are_the_passes_times_the_scripted_throughput():
    suite = suites.parse(copy.deepcopy(TINY), source="tiny")
    cells = planning.plan(suite)
    throughput = {"mnist_cnn": Throughput(0.001, 0.002), "imdb_lstm": Throughput(0.01, 0.03)}
    result = forecast.forecast(cells, throughput, "cpu")
    # the run's start-up and the report it writes at its end
    expected = forecast.STARTUP_S + forecast.report_seconds(cells)
    assert not forecast.setup_work(cells)  # no explanation by example: no index to build
    for cell, work in forecast.plan_cells(cells):
        t = throughput[cell.model]
        expected += sum(w.forward * t.forward_s + w.backward * t.backward_s + w.overhead_s
                        for w in work.values())
    assert result.projected_seconds == pytest.approx(expected)
    # by hand: saliency on 5 images is 5 forward + 5 backward; IG (8 steps + the completeness
    # check) 45 + 40; deletion and insertion 5 points each on 2 explanations x 5 images;
    # predictions 5 per cell (2 chunks x 2 explainers); the LSTM cell: 2 reviews
    mnist = [r for r in result.rows if r["model"] == "mnist_cnn"]
    assert sum(r["forward"] for r in mnist) == 5 + 45 + 2 * 2 * 5 * 5 + 2 * 5
    assert sum(r["backward"] for r in mnist) == 5 + 40
    assert result.forward_passes == sum(r["forward"] for r in result.rows)


def test_bench_plan_json_has_the_totals_and_a_breakdown(real_data):
    done = subprocess.run([sys.executable, "-m", "explainbench.bench", "plan", "--suite", "smoke",
                           "--json"], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    payload = json.loads(done.stdout)
    assert isinstance(payload["forward_passes"], int) and payload["forward_passes"] > 0
    assert isinstance(payload["projected_seconds"], float) and payload["forecast"] is True
    # one row per experiment plus the start-up's and the report's (time, no passes)
    assert {e["experiment"] for e in payload["experiments"]} == {"mnist", "imdb", "(setup)", "(report)"}
    report = [e for e in payload["experiments"] if e["experiment"] == "(report)"]
    assert report[0]["forward"] == 0 and report[0]["seconds"] > 0
    assert sum(e["forward"] for e in payload["experiments"]) == pytest.approx(
        payload["forward_passes"], abs=1)


def test_the_plan_says_which_models_it_trains_first_and_how_long(tmp_path, monkeypatch):
    """An empty cache: the announcement and `bench plan` name the models to train and, for the
    full profile, their reference time (the cells' forecast leaves training out); nothing to
    say once they are cached."""
    from explainbench.bench.run.forecast import training_line
    from explainbench.models import zoo

    monkeypatch.setenv("BENCH_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("BENCH_TRAIN_PROFILE", "full")
    line = training_line(["mnist_logreg", "mnist_cnn", "mnist_cnn"])
    assert line == "first it trains mnist_cnn, mnist_logreg (about 46 s on 2 CPU cores; once, then cached)"
    assert zoo.REFERENCE_TRAINING_S.keys() == zoo.BUILTIN_SPECS.keys()
    monkeypatch.setenv("BENCH_TRAIN_PROFILE", "ci")
    assert training_line(["mnist_logreg"]) == "first it trains mnist_logreg (once, then cached)"
    monkeypatch.setattr(zoo, "card", lambda name, profile=None: {"checkpoint_sha256": "x"})
    assert training_line(["mnist_logreg"]) is None


def test_bench_plan_reads_at_80_columns_with_every_experiment_named_in_full():
    """`full` has experiments that share their first 11 characters (mnist-cnn-rules and
    mnist-cnn-robustness): at 80 columns each is printed whole, and no line is wider."""
    import os
    import subprocess
    import sys

    from explainbench.bench.run import suite as suites

    done = subprocess.run([sys.executable, "-m", "explainbench.bench", "plan", "--suite", "full",
                           "--device", "cuda"], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "COLUMNS": "80", "CUDA_VISIBLE_DEVICES": ""})
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert max(len(line) for line in lines) <= 80
    firsts = {line.split()[0] for line in lines if line.strip()}
    assert {e.name for e in suites.load("full").experiments} <= firsts


def test_the_wall_time_with_workers_spreads_only_the_host_side_work():
    """Model passes keep their time (the workers split the same cores or GPU), host-side Python
    divides over min(workers, cores), set-up and report run once, and no run beats its longest
    cell: by hand on a scripted plan."""
    from explainbench.bench.run.forecast import Forecast

    def r(kind, seconds, host):
        return {"experiment": "e", "kind": kind, "model": "m", "component": "c", "cells": 1,
                "explanations": 0, "forward": 0, "backward": 0, "seconds": seconds,
                "host_seconds": host, "unknown": set()}

    plan = Forecast([r("scores", 100.0, 80.0), r("stability", 50.0, 10.0), r("report", 20.0, 0.0)],
                    {}, "cpu", longest_cell_s=30.0)
    assert plan.wall_seconds(1) == plan.projected_seconds == 170.0
    assert plan.wall_seconds(2, cores=2) == 20.0 + 60.0 + 90.0 / 2
    assert plan.wall_seconds(16, cores=2) == plan.wall_seconds(2, cores=2)  # cores bound it
    assert plan.wall_seconds(16, cores=16) == 20.0 + max(60.0 + 90.0 / 16, 30.0)
    slow_cell = Forecast([r("scores", 100.0, 100.0)], {}, "cpu", longest_cell_s=90.0)
    assert slow_cell.wall_seconds(4, cores=4) == 90.0


def test_the_announcement_counts_the_passes_the_bar_counts(real_data):
    """`quick` announced 679,100 forward passes while its bar counted to 559,100: the difference
    was the one-off index of the training split for explanation by example. The cells' passes
    are announced as the bar counts them, the index apart."""
    import re

    import torch

    from explainbench.bench.cells.context import RunContext
    from explainbench.bench.run import forecast, runner, suite as suites
    from explainbench.bench.run.suite_cells import plan

    cells = plan(suites.load("quick"))
    bar_total = sum(sum(w.forward for w in parts.values())
                    for _, parts in forecast.plan_cells(cells))
    line = runner.announcement(cells, cells, RunContext(torch.device("cpu")), None)
    announced = int(re.search(r"cells to run, ([\d,]+) forward", line).group(1).replace(",", ""))
    assert announced == int(round(bar_total)), line
    setup = sum(w.forward for w in forecast.setup_work(cells).values())
    if setup:
        assert f"(+{int(setup):,} once: the training split indexed" in line


def test_host_time_follows_the_sampling_budget_and_slic_is_paid_once_per_image():
    from explainbench import explainers

    lime = forecast.EXPLAIN_OVERHEAD_S[("lime", "image")]
    assert forecast.host_seconds(explainers.get("lime"), "image") == lime  # measured at 1,000
    assert forecast.host_seconds(explainers.get("lime", n_samples=5000), "image") == pytest.approx(5 * lime)
    assert forecast.host_seconds(explainers.get("saliency"), "image") == 0.0
    # a stability cell explains each image at 10 seeds: one segmentation per image, not ten
    suite = suites.parse({"name": "t", "version": 1, "seeds": [0], "experiments": [{
        "name": "s", "models": ["mnist_logreg"], "slice": {"name": "mnist-test", "size": 6},
        "floor": False, "explainers": ["lime"], "metrics": [],
        "studies": {"stability": {"seeds": 10, "explainers": ["lime"]}}}]})
    cell = next(c for c in planning.plan(suite) if c.kind == "stability")
    work = forecast.Planner().cell(cell)["explain"]
    per_image = 10 * forecast.host_seconds(explainers.get("lime"), "image")
    assert work.overhead_s == pytest.approx(cell.n_samples * (per_image + forecast.IMAGE_SEGMENTATION_S))


def test_the_throughput_is_kept_from_an_idle_machine_and_used_while_it_is_busy(tmp_path, monkeypatch):
    """Idle: measured (forward 1 ms per row; forward and backward 3 ms, so 2 ms of backward) and
    kept per machine and batch. Busy (other work on the cores stalls torch's threads): the kept
    idle measurement, not a new one, and the forecast says so. Busy at a batch never measured
    idle: measured, marked with the load, not kept."""
    import torch

    from explainbench.bench.run import machine

    monkeypatch.setenv("BENCH_CACHE_DIR", str(tmp_path))
    cpu = torch.device("cpu")
    timings = iter([1e-3, 3e-3])
    monkeypatch.setattr(forecast, "seconds_per_row", lambda *a, **k: next(timings))
    monkeypatch.setattr(forecast, "busy_load", lambda: None)
    idle = forecast.calibrate(["mnist_logreg"], cpu, batches={"mnist_logreg": 64})
    assert idle["mnist_logreg"] == Throughput(1e-3, 2e-3)
    assert forecast.calibration_note(idle) == ""

    def never(*a, **k):
        raise AssertionError("measured on a busy machine although an idle measurement is kept")

    monkeypatch.setattr(forecast, "busy_load", lambda: 3.6)
    monkeypatch.setattr(forecast, "seconds_per_row", never)
    busy = forecast.calibrate(["mnist_logreg"], cpu, batches={"mnist_logreg": 64})
    assert busy["mnist_logreg"] == Throughput(1e-3, 2e-3, kept=True)
    assert forecast.calibration_note(busy) == "as measured on this machine when idle (it is busy now)"

    monkeypatch.setattr(forecast, "seconds_per_row", lambda *a, **k: 0.5)
    loaded = forecast.calibrate(["mnist_logreg"], cpu, batches={"mnist_logreg": 128})
    assert loaded["mnist_logreg"] == Throughput(0.5, 0.0, busy_load=3.6)
    assert forecast.calibration_note(loaded).startswith("measured under load 3.6")
    kept = machine.read(forecast.THROUGHPUT_STORE)[machine.key(cpu)]["mnist_logreg"]
    assert set(kept) == {"64"}
