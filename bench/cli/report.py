"""`bench report RUN_DIR` and `bench leaderboard publish RUN_DIR`."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from explainbench.core.errors import BenchError

leaderboard_app = typer.Typer(no_args_is_help=True, help="The published leaderboard.")


def report(run_dir: Path = typer.Argument(..., help="A folder written by `bench run`."),
           plots: bool = typer.Option(True, "--plots/--no-plots", help="Also draw figures and report.html.")) -> None:
    """Write the leaderboards, study tables, plots and report.html of a run. Its parts are
    verified first; damaged ones are computed again (one line each)."""
    from rich.console import Console

    from explainbench.bench import report as reports
    from explainbench.bench.run import runner
    from explainbench.bench.run.progress import ReportStages
    from explainbench.bench.store import ResultStore

    reports.check_run_folder(run_dir)
    # Held for the whole report: a `bench run` writing into the folder refuses to start, and a
    # report never reads a running run's half-written folder (it is refused instead).
    with ResultStore(run_dir).lock("bench report"):
        runner.repair(run_dir, show_progress=False)  # prints one line per cell it recomputes
        shown = ReportStages(reports.stages(plots))
        written = reports.write_all(run_dir, plots=plots, step=shown)
        shown.done()
    Console().print(f"wrote {len(written)} files into {run_dir}"
                    + (f"; open {run_dir / 'report.html'}" if plots else ""))


@leaderboard_app.command("publish")
def publish(run_dir: Path = typer.Argument(..., help="A finished run folder."),
            dest: Path = typer.Option(Path("results/leaderboard"), "--dest",
                                      help="The public leaderboard folder (committed)."),
            force: bool = typer.Option(False, "--force",
                                       help="Replace a published run of another suite or with fewer samples.")) -> None:
    """Copy a run's leaderboard CSVs, with a provenance header, into the public leaderboard, and
    its FINDINGS.md and report.html beside that folder. It never replaces a published run of
    another suite, or one with more samples, without --force, and says what it replaces."""
    from rich.console import Console

    from explainbench.bench.report.publish import publish_leaderboards, replacements

    console = Console()
    if (Path(run_dir) / "manifest.json").is_file():
        for line in replacements(run_dir, dest)[0]:
            console.print(f"replacing {line}")
    copied = publish_leaderboards(run_dir, dest, force=force)
    for path in copied:
        console.print(f"published {path}")


def verify(run_dir: Path = typer.Argument(..., help="A folder written by `bench run`.")) -> None:
    """Check every part of a run folder against its digest, without running or moving anything.
    Exit code 0 when all verify, 6 when some are damaged or unverified."""
    from rich.console import Console

    from explainbench.bench.store import ResultStore

    if not (Path(run_dir) / "parts").is_dir():
        raise BenchError(f"{run_dir} is not a run folder: it has no parts/")
    result = ResultStore(run_dir).verify()
    for line in result.lines():
        print(line, file=sys.stderr)
    Console().print(f"{len(result.verified)} cells verified, {len(result.damaged)} damaged, "
                    f"{len(result.unverified)} unverified in {run_dir}")
    if not result.ok:
        raise typer.Exit(6)
