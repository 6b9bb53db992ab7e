"""`bench score`: score attributions made elsewhere with one metric (bench/run/score_file.py),
print one row per sample and the mean, and write them to a CSV with the model's checkpoint hash."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from explainbench.bench.cli.options import (DataDir, Plugins, console as _console, parse_assignments,
                                            setup as _setup)


def score(
    model: str = typer.Option(..., "--model", "-m", help="Model the attributions explain."),
    attributions: Path = typer.Option(..., "--attributions", "-a", help=".npz as `bench explain` writes."),
    metric: str = typer.Option(..., "--metric", help="Metric name (see `bench list metrics`)."),
    steps: Optional[int] = typer.Option(None, "--steps", help="Steps of a curve metric."),
    substrate: Optional[str] = typer.Option(None, "--substrate", help="What removed features become."),
    param: Optional[list[str]] = typer.Option(None, "--param", help="Other metric parameter, key=value (repeatable)."),
    explainer: Optional[str] = typer.Option(None, "--explainer", help="Explainer for metrics that re-explain (max_sensitivity); default: the file's."),
    seed: int = typer.Option(0, "--seed", min=0, max=2**32 - 1, help="Seed of the metric's random draws."),
    name: Optional[str] = typer.Option(None, "--name", help="The method's name in the rows (default: the file's explainer, else its stem); `bench compare` ranks it under this name."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="CSV to write (default <attributions>.<metric>.csv)."),
    device: str = typer.Option("auto", "--device", help="auto, cpu or cuda."),
    batch_size: int = typer.Option(256, "--batch-size", min=1, max=2**20, help="Model evaluations per forward batch."),
    data_dir: Optional[Path] = DataDir,
    plugin: Optional[list[str]] = Plugins,
) -> None:
    """Score attributions from a file with one metric: one row per sample, printed and written."""
    import numpy as np
    from rich.table import Table

    from explainbench.bench.run.score_file import score_file

    _setup(data_dir, plugin)
    scored = score_file(model, attributions, metric, params=parse_assignments(param, "--param"),
                        steps=steps, substrate=substrate, explainer=explainer, seed=seed, out=out,
                        device=device, batch_size=batch_size, name=name)
    rows, bound = scored.rows, scored.metric
    columns = [f"{name} ({'higher' if higher else 'lower'} is better)" for name, higher in scored.outputs]
    table = Table("sample_id", "target", *columns,
                  title=f"{metric} of {attributions.name} on {model} ({bound!r}, seed {seed})")
    wide = rows.pivot_table(index=["sample_id", "target"], columns="metric", values="value",
                            dropna=False, sort=False)
    names = [name for name, _ in scored.outputs]
    for (sid, target), row in wide.iterrows():
        table.add_row(str(sid), str(target), *(f"{row[n]:.6g}" for n in names))
    table.add_section()
    summary = []
    for n in names:
        v = wide[n].to_numpy()
        defined = v[~np.isnan(v)]
        excluded = f", {len(v) - len(defined)} undefined" if len(defined) < len(v) else ""
        summary.append(f"{np.mean(defined):.6g} ± {np.std(defined):.2g} (n={len(defined)}{excluded})"
                       if len(defined) else "undefined")
    table.add_row("mean", "", *summary)
    console = _console()
    console.print(table)
    console.print(f"wrote {len(rows)} rows to {scored.out}")
