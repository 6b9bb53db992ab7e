"""`bench compare RUN_DIR [--baseline results]`: a run's explainers ranked against a published
run's per-sample scores (bench/report/compare.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer


def compare(run_dir: Path = typer.Argument(..., help="A run folder: e.g. `bench run --suite standard --explainer mine`."),
            baseline: Path = typer.Option(Path("results"), "--baseline", help="A folder `bench leaderboard publish` wrote into (scores.parquet, scores.json)."),
            out: Optional[Path] = typer.Option(None, "--out", "-o", help="Where to write the comparison (default RUN_DIR/compare)."),
            plugin: Optional[list[str]] = typer.Option(None, "--plugin", help="The plugins the run used (for their definition versions).")) -> None:
    """Rank a run's explainers against a published run on the same samples, checkpoints and
    metric definitions: merged leaderboards, paired tests against every published explainer and
    the controls, a paragraph per model."""
    from rich.console import Console

    from explainbench.bench.cli.options import setup
    from explainbench.bench.report import compare as comparing

    setup(None, plugin)
    result = comparing.compare(run_dir, baseline)
    target = out or Path(run_dir) / "compare"
    written = comparing.write(result, target, Path(run_dir), baseline)
    console = Console()
    for line in result.paragraphs:
        console.print(line)
    for note in result.notes:
        console.print(f"[yellow]note[/] {note}")
    console.print(f"wrote {len(written)} files into {target}; read {target / 'COMPARE.md'}")
