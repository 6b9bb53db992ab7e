"""The command line as a user meets it: exit codes, one-line errors, the smoke path."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import yaml

from tests.bench.test_runner import TINY

ROOT = Path(__file__).resolve().parents[2]


def bench(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "explainbench.bench", *args], capture_output=True, text=True,
                          cwd=cwd or ROOT, env=env, timeout=600)


def test_unknown_suite_exits_2_with_one_line_listing_the_suites():
    result = bench("run", "--suite", "nope")
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0
    assert "unknown suite 'nope'" in result.stderr and "smoke" in result.stderr
    assert "Traceback" not in result.stderr


def test_unknown_names_exit_2():
    result = bench("train", "mnist_cnx")
    assert result.returncode == 2 and "Did you mean 'mnist_cnn'" in result.stderr
    result = bench("list", "modles")
    assert result.returncode == 2 and "Valid choices: explainers, metrics, models, suites" in result.stderr


def test_list_names_everything():
    result = bench("list")
    assert result.returncode == 0
    for name in ("mnist_cnn", "imdb_transformer", "saliency", "integrated_gradients", "deletion",
                 "smoke"):
        assert name in result.stdout


def test_validate_reports_cells_or_the_mistake(tmp_path):
    ok = bench("validate", "smoke")
    assert ok.returncode == 0 and "ok suite smoke" in ok.stdout
    bad = tmp_path / "bad.yaml"
    raw = yaml.safe_load(yaml.safe_dump(TINY))
    raw["experiments"][0]["explainers"] = ["salency"]
    bad.write_text(yaml.safe_dump(raw))
    result = bench("validate", str(bad))
    assert result.returncode == 2 and "Did you mean 'saliency'" in result.stderr


def test_run_a_user_suite_file_end_to_end(tmp_path, real_data):
    suite_file = tmp_path / "mine.yaml"
    suite_file.write_text(yaml.safe_dump(TINY))
    out = tmp_path / "out"
    result = bench("run", "--suite", str(suite_file), "--out", str(out), "--device", "cpu",
                   "--no-progress")
    assert result.returncode == 0, result.stderr
    for name in ("scores.parquet", "manifest.json", "leaderboard.csv", "suite.yaml"):
        assert (out / name).is_file()
    scores = pd.read_parquet(out / "scores.parquet")
    assert len(scores[scores.category != "ties"]) == 22  # and one tied-share row per explained sample
    assert len(scores[scores.category == "ties"]) == 12
    # rerunning the same command resumes: nothing to do, nothing lost
    again = bench("run", "--suite", str(suite_file), "--out", str(out), "--device", "cpu",
                  "--no-progress")
    assert again.returncode == 0 and "5 already done" in again.stdout


def test_bad_device_is_one_line():
    result = bench("run", "--suite", "smoke", "--device", "tpu", "--out", "/tmp/never-written")
    assert result.returncode == 2 and "Valid choices: auto, cpu, cuda" in result.stderr
    assert not Path("/tmp/never-written/scores.parquet").exists()


def test_the_progress_bar_keeps_its_numbers_at_80_columns():
    from rich.console import Console

    from explainbench.bench.run.progress import bar as progress

    cell = "scores: imdb_transformer · integrated_gradients(n_steps=32) · seed 0 · chunk 3"
    with progress(True) as bar:
        bar.add_task("forward passes", total=679100, completed=123456, current=cell)
        bar.tasks[0].start_time -= 0.5  # 123,456 passes in half a second: the widest rate
        screen = Console(width=80, record=True, force_terminal=False, file=open(os.devnull, "w"))
        screen.print(bar.get_renderable())
        bar.stop()
    lines = screen.export_text().splitlines()
    assert len(lines) == 2 and all(len(line) <= 80 for line in lines)
    # the counts, the ETA and the rate are never the part that is cut; the cell's name may be
    assert "123456/679100" in lines[0] and "ETA" in lines[0]
    assert re.search(r" \d{3},\d{3} passes/s$", lines[0].rstrip()), lines[0]  # whole, at the end
    assert lines[1].strip().startswith("scores: imdb_transformer · integrated_gradients")


def test_the_cli_starts_without_importing_torch():
    # `bench --help`, `bench list` and the one-line errors must not wait 1-2 s for torch
    done = subprocess.run([sys.executable, "-c", "import sys, explainbench.bench.cli; "
                           "print(sorted(m for m in ('torch', 'captum', 'shap', 'pandas') "
                           "if m in sys.modules))"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_hostile_names_never_make_a_path_outside_the_run_folder(tmp_path, real_data):
    """A suite named ../../escaped run without --out, an experiment named a/../../b: every file
    lands under results/ of the working folder, inside the run folder."""
    import copy

    raw = copy.deepcopy(TINY)
    raw["name"] = "../../escaped"
    raw["experiments"] = raw["experiments"][1:]  # the two reviews: quick
    raw["experiments"][0]["name"] = "a/../../b.c"
    work = tmp_path / "deep" / "work"
    work.mkdir(parents=True)
    (work / "s.yaml").write_text(yaml.safe_dump(raw))
    before = {p for p in tmp_path.rglob("*")}
    done = bench("run", "--suite", "s.yaml", "--device", "cpu", "--no-progress", cwd=work)
    assert done.returncode == 0, done.stderr
    created = {p for p in tmp_path.rglob("*")} - before
    assert created and all(p.is_relative_to(work / "results") for p in created), sorted(created)[:5]
    (run,) = (work / "results").iterdir()
    assert run.name.startswith("______escaped-")
    assert pd.read_parquet(run / "scores.parquet")["experiment"].eq("a/../../b.c").all()


def test_bench_stability_table_reads_at_80_columns(tmp_path, real_data):
    """One row per measure with its mean and interval: nothing cut at 80 columns (the title and
    the fifth column were: `[95% C`, `0.989 [0`)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "80"}
    done = subprocess.run([sys.executable, "-m", "explainbench.bench", "stability", "-e",
                           "smoothgrad", "-m", "mnist_cnn", "--seeds", "2", "--n", "3", "--param",
                           "n_samples=2", "-o", str(tmp_path / "run"), "--no-progress"],
                          capture_output=True, text=True, env=env, timeout=600, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert max(len(line) for line in lines) <= 80, done.stdout
    assert any("smoothgrad on mnist_cnn: stability across 2 seeds, 3 samples" in l for l in lines)
    table = pd.read_csv(tmp_path / "run" / "stability.csv")
    for row in table.itertuples():
        measure = row.metric.replace("stability_", "")
        shown = f"{row.mean:.3f}   [{row.ci_low:.3f}, {row.ci_high:.3f}]"
        assert any(measure in l and " ".join(shown.split()) in " ".join(l.split()) for l in lines), (
            measure, done.stdout)


def test_the_eta_and_rate_are_the_sessions_average_not_the_last_seconds():
    """Resumed at 20 of 100 passes, 20 more in 10 s: 60 left at 2 per second is 0:00:30 and the
    rate 2 passes/s, whatever the last update's rate (a burst of cheap passes no longer makes it
    0:00:10; a last cell with few planned passes no longer shows its own rate)."""
    from rich.console import Console

    from explainbench.bench.run.progress import bar as progress

    with progress(True) as bar:
        bar.stop()
        task = bar.add_task("forward passes", total=100, completed=20, initial=20, current="")
        state = bar.tasks[0]
        state.start_time = state.start_time - 10.0  # 10 s ago
        bar.update(task, completed=39)
        bar.update(task, completed=40)  # a burst at the end
        screen = Console(width=80, record=True, force_terminal=False, file=open(os.devnull, "w"))
        screen.print(bar.get_renderable())
    line = screen.export_text().splitlines()[0]
    assert "ETA 0:00:30" in " ".join(line.split()), line
    assert line.rstrip().endswith(" 2 passes/s"), line
