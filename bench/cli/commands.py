"""The `bench` command line: argument parsing, printing and exit codes. Each command calls one
library function of the run or report stage (commands with more to say live in their own modules
here: explain, score, listing, plan, report, stability).

Bad input (an unknown name, a malformed suite, a missing file) is one line on stderr with the valid
choices and exit code 2; a run with failed cells ends with a summary and exit code 1; every other
exit code is in EXIT_CODES. An exception that still reaches this level is a bug: one line on the
screen, its traceback in a log file.
"""

from __future__ import annotations

import os
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Optional

import typer

from explainbench.bench.cli.options import (DataDir, Plugins, console as _console, parse_assignments,
                                            setup as _setup)

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing is ever fetched from a model hub

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="explainbench: score explanation methods on MNIST and IMDB.")



@app.command()
def run(
    suite: str = typer.Option(..., "--suite", "-s", help="Built-in suite name or path to a YAML file."),
    out: Optional[str] = typer.Option(None, "--out", "-o", help="Run folder (default results/<suite>-<UTC time>). An existing one resumes."),
    device: str = typer.Option("auto", "--device", help="auto, cpu or cuda."),
    data_dir: Optional[Path] = DataDir,
    plugin: Optional[list[str]] = Plugins,
    retry_failed: bool = typer.Option(False, "--retry-failed", help="Run only the cells that failed before."),
    batch_size: Optional[int] = typer.Option(None, "--batch-size", min=1, max=2**20, help="Model evaluations per forward batch for every model (default: measured per model on this machine, see README)."),
    progress: bool = typer.Option(True, "--progress/--no-progress"),
    backend: str = typer.Option("local", "--backend", help="local, or ray (pip install 'explainbench-xai[ray]')."),
    ray_address: Optional[str] = typer.Option(None, "--ray-address", help="An existing Ray cluster (default: a local Ray runtime)."),
    cpus_per_cell: int = typer.Option(1, "--cpus-per-cell", min=1, help="CPUs (and torch threads) per Ray task on CPU runs."),
    workers: Optional[int] = typer.Option(None, "--workers", "-w", min=1, max=256, help="Cells computed at once, each in its own process (default: the machine's CPU cores; 1: one after another). Scores do not depend on it."),
    threads_per_cell: Optional[int] = typer.Option(None, "--threads-per-cell", min=1, max=1024, help="Torch threads per cell (default: the cores over the workers). Equal thread counts give identical scores; other counts differ in float32 rounding."),
    explainer: Optional[list[str]] = typer.Option(None, "--explainer", "-e", help="Score only this explainer (repeatable) on the suite's scoring experiments, as the published run scored its own: then `bench compare`."),
    param: Optional[list[str]] = typer.Option(None, "--param", "-p", help="With --explainer: its parameter key=value (repeatable)."),
) -> None:
    """Run a suite: explain, score, write scores.parquet, manifest.json, leaderboards and report.html."""
    from explainbench.bench import report
    from explainbench.bench.run import runner, suite as suites
    from explainbench.bench.run.progress import ReportStages

    _setup(data_dir, plugin)
    out = _run_folder(out)
    if param and not explainer:
        from explainbench.core.errors import BenchError

        raise BenchError("--param needs --explainer (the explainer it sets)")
    spec = (suites.load_like(suite, list(explainer), parse_assignments(param, "--param"))
            if explainer else suites.load(suite))
    if out is None:
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        from explainbench.bench.cells.cell import file_safe

        out = Path("results") / f"{file_safe(spec.name)}-{stamp}"  # a suite's name is no path
    from explainbench.bench.store import ResultStore

    with ResultStore(out).lock():  # the run and its report, with no other writer between them
        summary = runner.run(spec, out, device=device, retry_failed=retry_failed,
                             batch_size=batch_size, show_progress=progress, backend=backend,
                             ray_address=ray_address, cpus_per_cell=cpus_per_cell, announce=True,
                             workers=workers or _default_workers(), threads=threads_per_cell)
        # a minute of tables and figures on a large run: say so rather than sit silent
        print(f"writing the report into {summary.out}", file=sys.stderr, flush=True)
        shown = ReportStages(report.stages())
        report.write_all(summary.out, step=shown)
        shown.done()
    console = _console()
    console.print(f"[bold]{spec.name}[/]: {summary.total} cells, {summary.done} run now, "
                  f"{summary.skipped} already done, {len(summary.failed)} failed -> {summary.out}")
    console.print(f"  read {summary.out / 'FINDINGS.md'} first, then open {summary.out / 'report.html'}")
    for record in summary.failed:
        console.print(f"  [red]failed[/] {record['model']} {record['explainer']} seed "
                      f"{record['seed']} chunk {record['chunk']}: {record['error']}")
    if summary.failed:
        console.print(f"  details in {summary.out / 'failures.csv'}; rerun with --retry-failed")
        raise typer.Exit(1)


def _default_workers() -> int:
    from explainbench.bench.run.workers import default_workers

    return default_workers()


def _run_folder(out: Optional[str]) -> Optional[Path]:
    """--out as a folder: not empty, not an existing file."""
    from explainbench.core.errors import BenchError

    if out is None:
        return None
    if not out.strip():
        raise BenchError("--out is empty; give the run folder (a new one, or a run to resume)")
    if Path(out).exists() and not Path(out).is_dir():
        raise BenchError(f"--out {out} is a file; give a folder (a new one, or a run to resume)")
    return Path(out)


@app.command()
def train(
    names: Optional[list[str]] = typer.Argument(None, help="Models to train (default: all)."),
    profile: Optional[str] = typer.Option(None, "--profile", help="full (default) or ci (short, for tests)."),
    force: bool = typer.Option(False, "--force", help="Retrain even if an intact checkpoint is cached."),
    data_dir: Optional[Path] = DataDir,
) -> None:
    """Train models deterministically (skipping those cached) and print their model cards."""
    from rich.table import Table

    from explainbench import models
    from explainbench.core.errors import UnknownNameError

    _setup(data_dir)
    if profile is not None and profile not in models.PROFILES:
        raise UnknownNameError("training profile", profile, list(models.PROFILES))
    names = names or models.names()
    for name in names:
        models.spec(name)  # every name is checked before anything trains
    table = Table("model", "profile", "test accuracy", "target", "parameters", "train s", "checkpoint")
    for name in names:
        card = models.train(name, profile, force=force)
        target = card.get("accuracy_target")
        table.add_row(name, card["profile"], f"{card['test_accuracy']:.4f}",
                      f">= {target}" if target else "-", f"{card['parameters']:,}",
                      f"{card['training_wall_time_s']:.1f}", card["checkpoint_sha256"][:12])
    _console().print(table)


@app.command()
def validate(suite: str = typer.Argument(..., help="Built-in suite name or path to a YAML file."),
             plugin: Optional[list[str]] = Plugins) -> None:
    """Check a suite file without running it. Its plugins are imported (their code runs) to
    register the names it uses: a suite is as trusted as its plugins' code."""
    _setup(None, plugin)
    from explainbench.bench.cli.options import plugin_notice
    from explainbench.bench.run import suite as suites, suite_cells

    spec = suites.load(suite)
    cells = suite_cells.plan(spec)
    console = _console()
    if notice := plugin_notice(spec.plugins, plugin):
        console.print(notice)
    console.print(f"[green]ok[/] suite {spec.name} v{spec.version} (hash {spec.content_hash}): "
                  f"{len(spec.experiments)} experiments, {len(cells)} cells")
    for exp in spec.experiments:
        console.print(f"  {exp.name}: {exp.slice.label}, models {', '.join(exp.models)}; "
                      f"{len(exp.explainers)} explainers x {len(exp.metrics)} metrics, seeds {list(exp.seeds)}")


from explainbench.bench.cli.compare import compare  # noqa: E402
from explainbench.bench.cli.explain import explain  # noqa: E402
from explainbench.bench.cli.listing import list_  # noqa: E402
from explainbench.bench.cli.plan import plan  # noqa: E402
from explainbench.bench.cli.report import leaderboard_app, report, verify  # noqa: E402
from explainbench.bench.cli.score import score  # noqa: E402
from explainbench.bench.cli.stability import stability  # noqa: E402

app.command("compare")(compare)
app.command("explain")(explain)
app.command("list")(list_)
app.command("plan")(plan)
app.command("score")(score)
app.command("report")(report)
app.command("verify")(verify)
app.command("stability")(stability)
app.add_typer(leaderboard_app, name="leaderboard")


EXIT_CODES = {  # documented in the README; every error the CLI prints is one line on stderr
    0: "success",
    1: "the run finished, but some cells failed (failures.csv; rerun with --retry-failed)",
    2: "bad input: an unknown name, a bad parameter or option, a malformed suite or file, a plugin",
    3: "data: a file is missing and cannot be downloaded, or fails its checksum",
    4: "the run folder is in use by another bench run or bench report",
    5: "storage: the disk refused a write (full, read-only); finished cells are kept",
    6: "bench verify: some parts are damaged or unverified",
    70: "a bug in explainbench: the traceback is in the log file the message names",
    130: "interrupted; finished cells are kept",
}


def _log_traceback() -> Path | None:
    """Write the current exception's traceback to a log file under the cache; its path, or None
    when even that is impossible."""
    import traceback

    from explainbench.core import paths

    try:
        folder = paths.cache_dir() / "logs"
        folder.mkdir(parents=True, exist_ok=True)
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
        path = folder / f"bench-{stamp}-{os.getpid()}.log"
        path.write_text(f"bench {' '.join(sys.argv[1:])}\n\n{traceback.format_exc()}")
        return path
    except Exception:
        return None


def _click_exceptions():
    """Typer 0.29 carries its own click (typer._click); older ones use click itself."""
    try:
        from typer._click import exceptions
    except ImportError:
        from click import exceptions
    return exceptions


class Terminated(KeyboardInterrupt):
    """SIGTERM (a scheduler's or `kill`'s stop): handled like ^C, so the user is told what was
    kept and how to resume instead of the process vanishing without a word."""


_TERMINATED: list[int] = []  # the signal, once received (typer turns the exception into code 130)


def _terminate(signum, frame):
    _TERMINATED.append(signum)
    raise Terminated()


def _stopped() -> None:
    how = "terminated" if _TERMINATED else "interrupted"
    print(f"{how}; finished cells are kept, rerun the same command to resume", file=sys.stderr)
    sys.exit(130)


def main() -> None:
    import signal

    from explainbench.core.errors import BenchError

    signal.signal(signal.SIGTERM, _terminate)
    cx = _click_exceptions()
    try:
        code = app(standalone_mode=False)
    except cx.NoArgsIsHelpError as exc:  # `bench` alone, or a group alone: the help it asked for
        exc.show()
        sys.exit(0 if exc.ctx is None or exc.ctx.parent is None else 2)
    except cx.UsageError as exc:  # a missing or bad option: one line, not the usage
        where = f" (see bench {exc.ctx.command_path.split(' ', 1)[1]} --help)" \
            if exc.ctx is not None and " " in exc.ctx.command_path else " (see bench --help)"
        print(f"error: {' '.join(exc.format_message().split())}{where}", file=sys.stderr)
        sys.exit(2)
    except cx.ClickException as exc:
        print(f"error: {' '.join(exc.format_message().split())}", file=sys.stderr)
        sys.exit(exc.exit_code)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:  # click turns ^C (and our SIGTERM) into Abort
        _stopped()
    except BenchError as exc:
        print(f"error: {' '.join(str(exc).split())}", file=sys.stderr)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        _stopped()
    except Exception as exc:  # a bug: one line on the screen, the traceback in a log file
        log = _log_traceback()
        message = " ".join(str(exc).split())[:300]
        print(f"error: {type(exc).__name__}: {message} (this is a bug in explainbench; "
              f"traceback in {log or 'no log file'})", file=sys.stderr)
        sys.exit(70)
    if code == 130:  # typer returns ^C (and SIGTERM) as this code, without a word
        _stopped()
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
