"""`bench compare RUN_DIR | SCORE_FILE... [--baseline results]`: a run's explainers, or attributions
made elsewhere and scored with `bench score`, ranked against a published run's per-sample scores
(bench/report/compare.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer


def compare(sources: list[Path] = typer.Argument(..., metavar="RUN_DIR|SCORE_FILE", help="A run folder (e.g. `bench run --suite standard --explainer mine`), or the files `bench score` wrote for attributions made elsewhere (one per metric)."),
            baseline: Path = typer.Option(Path("results"), "--baseline", help="A folder `bench leaderboard publish` wrote into (scores.parquet, scores.json)."),
            out: Optional[Path] = typer.Option(None, "--out", "-o", help="Where to write the comparison (default RUN_DIR/compare, or compare/ beside the first score file)."),
            plugin: Optional[list[str]] = typer.Option(None, "--plugin", help="The plugins the run used (for their definition versions).")) -> None:
    """Rank a run's explainers (or maps scored with `bench score`) against a published run on
    the same samples, checkpoints and metric definitions: merged leaderboards, paired tests
    against every published explainer and the controls, a paragraph per model."""
    from rich.console import Console

    from explainbench.bench.cli.options import setup
    from explainbench.bench.report import compare as comparing

    setup(None, plugin)
    result = comparing.compare(sources, baseline)
    first = Path(sources[0])
    target = out or (first / "compare" if first.is_dir() else first.parent / "compare")
    what = first if len(sources) == 1 else f"{len(sources)} score files ({', '.join(p.name for p in sources)})"
    written = comparing.write(result, target, what, baseline)
    console = Console()
    for line in result.paragraphs:
        console.print(line)
    for note in result.notes:
        console.print(f"[yellow]note[/] {note}")
    console.print(f"wrote {len(written)} files into {target}; read {target / 'COMPARE.md'}")
