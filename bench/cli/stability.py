"""`bench stability`: the seed-stability study of one explainer on one model, on its own."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Optional

import typer


def stability(
    explainer: str = typer.Option(..., "--explainer", "-e", help="A stochastic explainer, e.g. lime."),
    model: str = typer.Option(..., "--model", "-m"),
    seeds: int = typer.Option(10, "--seeds", min=2, help="How many seeds (K >= 2)."),
    n: int = typer.Option(16, "--n", min=1, help="Samples from the model's fixed test slice."),
    budget: Optional[str] = typer.Option(None, "--budget", help="Sweep a parameter: name=v1,v2,..."),
    param: Optional[list[str]] = typer.Option(None, "--param", help="Explainer parameter name=value (repeatable)."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Run folder (default: a new results/stability-<explainer>-<model>-<time> on every call; give one to resume it)."),
    device: str = typer.Option("auto", "--device"),
    data_dir: Optional[Path] = typer.Option(None, "--data-dir"),
    progress: bool = typer.Option(True, "--progress/--no-progress"),
) -> None:
    """How much do an explainer's explanations move when only the seed changes? Runs the
    stability study and prints per-sample Spearman, top-k intersection, sign agreement and CV."""
    import pandas as pd
    from rich.console import Console
    from rich.markup import escape
    from rich import box
    from rich.table import Table

    from explainbench import models
    from explainbench.bench import report
    from explainbench.bench.cli.options import parse_assignments
    from explainbench.bench.run import runner, suite as suites
    from explainbench.bench.run.progress import ReportStages
    from explainbench.core import data
    from explainbench.core.errors import BenchError

    data.set_data_dir(data_dir)
    dataset = models.spec(model).task
    params = parse_assignments(param, "--param")
    study = {"explainers": [explainer], "seeds": seeds}
    if budget:
        name, sep, values = budget.partition("=")
        if not sep or not values:
            raise BenchError(f"--budget {budget!r} is not of the form name=v1,v2,...")
        swept = parse_assignments([f"{name}=[{values}]"], "--budget")[name]
        study["budgets"] = {explainer: {name: swept if isinstance(swept, list) else [swept]}}
    if seeds < 2:
        raise BenchError(f"--seeds must be at least 2, got {seeds}")
    raw = {
        "name": f"stability-{explainer}-{model}", "version": 1, "seeds": list(range(seeds)),
        "chunk_size": n,
        "experiments": [{"name": "stability", "slice": {"name": f"{dataset}-test", "size": n},
                         "models": [model], "floor": False,
                         "explainers": [{"name": explainer, "params": params}],
                         "studies": {"stability": study}}],
    }
    spec = suites.parse(raw, source="bench stability")
    if out is None:
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        from explainbench.bench.cells.cell import file_safe

        out = Path("results") / f"{file_safe(spec.name)}-{stamp}"
    from explainbench.bench.store import ResultStore

    with ResultStore(out).lock():  # the run and its report, with no other writer between them
        summary = runner.run(spec, out, device=device, show_progress=progress)
        shown = ReportStages(report.stages())
        report.write_all(summary.out, step=shown)
        shown.done()
    table = pd.read_csv(out / "stability.csv") if (out / "stability.csv").is_file() else pd.DataFrame()
    console = Console()
    if table.empty:
        console.print(f"[red]no stability rows[/]: see {out / 'failures.csv'}")
        raise typer.Exit(1)
    # One row per (explainer, measure): four "0.989 [0.980, 0.995]" cells side by side do not
    # fit 80 columns.
    console.print(f"{explainer} on {model}: stability across {seeds} seeds, {n} samples (mean "
                  "over samples, 95% bootstrap interval)")
    shown = Table(box=box.SIMPLE_HEAD)
    shown.add_column("explainer", overflow="fold")
    shown.add_column("measure", no_wrap=True)
    shown.add_column("mean", justify="right", no_wrap=True)
    shown.add_column("95% CI", justify="right", no_wrap=True)
    order = {m: i for i, m in enumerate(["stability_spearman", "stability_topk", "stability_sign",
                                         "stability_cv"])}
    table = table.assign(_order=table["metric"].map(order).fillna(len(order)))
    for name, rows in table.sort_values(["explainer", "_order"]).groupby("explainer", sort=False):
        for i, r in enumerate(rows.itertuples()):
            shown.add_row(escape(name) if i == 0 else "", r.metric.replace("stability_", ""),
                          f"{r.mean:.3f}", f"[{r.ci_low:.3f}, {r.ci_high:.3f}]")
    console.print(shown)
    console.print(f"rows in {out / 'scores.parquet'}, table {out / 'stability.csv'}")
    if not summary.ok:
        raise typer.Exit(1)
