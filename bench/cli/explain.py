"""`bench explain`: explain a few samples of the fixed test slice with one explainer, write them to
an .npz file (bench/run/explain_file.py) and, with --plot, draw them (bench/report/pictures.py).

What the .npz holds: bench/run/explain_file.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from explainbench.bench.cli.options import DataDir, Plugins, parse_assignments, setup
from explainbench.core.errors import BenchError

from explainbench.bench.run.explain_file import DEFAULT_N  # light: no torch until it explains


PLOT_TYPES = (".png", ".svg", ".pdf")


def parse_ids(text: str) -> list[int]:
    try:
        ids = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise BenchError(f"--ids expects comma-separated integers, got {text!r}") from None
    if not ids:
        raise BenchError("--ids is empty")
    return ids


def explain(
    model: str = typer.Option(..., "--model", "-m", help="Model name (see `bench list models`)."),
    explainer: str = typer.Option(..., "--explainer", "-e", help="Explainer name (see `bench list explainers`)."),
    out: Path = typer.Option(..., "--out", "-o", help="Output .npz file."),
    seed: int = typer.Option(0, "--seed", min=0, max=2**32 - 1, help="Seed of stochastic explainers."),
    n: Optional[int] = typer.Option(None, "--n", min=1, help=f"Explain the first N samples of the test slice (default {DEFAULT_N})."),
    ids: Optional[str] = typer.Option(None, "--ids", help="Explain these sample ids of the test slice, e.g. 3,17."),
    target: str = typer.Option("predicted", "--target", help="Class to explain: predicted or label."),
    param: Optional[list[str]] = typer.Option(None, "--param", "-p", help="Explainer parameter key=value (repeatable)."),
    plot: Optional[Path] = typer.Option(None, "--plot", help="Also draw the explanations to this .png, .svg or .pdf."),
    data_dir: Optional[Path] = DataDir,
    plugin: Optional[list[str]] = Plugins,
    device: str = typer.Option("auto", "--device", help="auto, cpu or cuda."),
    batch_size: int = typer.Option(256, "--batch-size", min=1, max=2**20, help="Model evaluations per forward batch."),
) -> None:
    """Explain samples of the fixed test slice; write an .npz and optionally a PNG."""
    from explainbench import models
    from explainbench.bench.run.explain_file import explain_samples

    setup(data_dir, plugin)
    if plot is not None:  # checked before minutes of explaining, not after
        from explainbench.bench.store import check_output_file

        check_output_file(plot, "--plot", PLOT_TYPES)
    arrays = explain_samples(model, explainer, out, seed=seed, n=n,
                             ids=parse_ids(ids) if ids is not None else None, target=target,
                             params=parse_assignments(param, "--param"), device=device,
                             batch_size=batch_size)
    if plot is not None:
        from explainbench.bench.report.pictures import draw

        draw(plot, arrays, models.task_of(model))
    _report(arrays, out, plot)


def _report(arrays, out: Path, plot: Optional[Path]) -> None:
    from rich.console import Console

    console = Console()
    kind = "example sets" if "example_ids" in arrays else "attributions"
    console.print(f"[green]wrote[/] {len(arrays['sample_ids'])} {kind} of {arrays['explainer']} on "
                  f"{arrays['model']} -> {out}" + (f" and {plot}" if plot else ""))
