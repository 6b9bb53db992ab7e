"""`bench report RUN_DIR` and `bench leaderboard publish RUN_DIR`."""

from __future__ import annotations

import json
import sys
from datetime import datetime, timezone
from pathlib import Path

import typer

from explainbench.core.errors import BenchError

leaderboard_app = typer.Typer(no_args_is_help=True, help="The published leaderboard.")


def report(run_dir: Path = typer.Argument(..., help="A folder written by `bench run`."),
           plots: bool = typer.Option(True, "--plots/--no-plots", help="Also draw figures and report.html.")) -> None:
    """Write the leaderboards, study tables, plots and report.html of a run. Its parts are
    verified first; damaged ones are computed again (one line each)."""
    from rich.console import Console

    from explainbench.bench import report as reports, runner

    runner.repair(run_dir, show_progress=False)  # prints one line per cell it recomputes
    written = reports.write_all(run_dir, plots=plots)
    Console().print(f"wrote {len(written)} files into {run_dir}"
                    + (f"; open {run_dir / 'report.html'}" if plots else ""))


@leaderboard_app.command("publish")
def publish(run_dir: Path = typer.Argument(..., help="A finished run folder."),
            dest: Path = typer.Option(Path("results/leaderboard"), "--dest",
                                      help="The public leaderboard folder (committed).")) -> None:
    """Copy a run's leaderboard CSVs, with a provenance header, into the public leaderboard."""
    from rich.console import Console

    copied = publish_leaderboards(run_dir, dest)
    for path in copied:
        Console().print(f"published {path}")


def publish_leaderboards(run_dir: Path, dest: Path) -> list[Path]:
    boards = sorted((Path(run_dir) / "leaderboard").glob("*.csv"))
    manifest_path = Path(run_dir) / "manifest.json"
    if not boards or not manifest_path.is_file():
        raise BenchError(f"{run_dir} has no leaderboard/*.csv and manifest.json; run `bench report "
                         f"{run_dir}` on a finished run first")
    manifest = json.loads(manifest_path.read_text())
    if manifest.get("cells", {}).get("failed"):
        raise BenchError(f"{run_dir} has failed cells ({manifest['cells']['failed']}); rerun with "
                         "--retry-failed before publishing")
    suite = manifest.get("suite", {})
    dest.mkdir(parents=True, exist_ok=True)
    out = []
    for board in boards:
        model = board.stem.split("-", 1)[1]
        card = manifest.get("models", {}).get(model, {})
        header = [
            f"# explainbench leaderboard {board.stem}",
            f"# suite: {suite.get('name')} v{suite.get('version')} (hash {suite.get('hash')})",
            f"# git commit: {manifest.get('git_commit')}",
            f"# model: {model} checkpoint sha256 {card.get('checkpoint_sha256')} "
            f"(profile {card.get('profile')}, test accuracy {card.get('test_accuracy')})",
            f"# slices: {json.dumps(manifest.get('slices', {}), sort_keys=True)}",
            f"# seeds: {manifest.get('seeds')}",
            f"# device: {json.dumps(manifest.get('device', {}), sort_keys=True)}",
            f"# run: {manifest.get('start_utc')} to {manifest.get('end_utc')}",
            f"# published: {datetime.now(timezone.utc).isoformat(timespec='seconds')}",
            "# read with pandas.read_csv(path, comment='#')",
        ]
        target = dest / board.name
        target.write_text("\n".join(header) + "\n" + board.read_text())
        out.append(target)
    return out


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
