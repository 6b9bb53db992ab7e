"""`bench plan`: a suite's cells, explanations and forward/backward passes per experiment, cell kind
and component, and its projected wall time on this machine, without running anything heavy."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from explainbench.bench.cli.options import DataDir, Plugins, console, setup

# Nominal rows per second of one H200, used only when `--device cuda` is asked for on a machine
# without one: an assumption (small models, large batches, memory-bound), printed as such.
ASSUMED_GPU_ROWS_PER_S = {"mnist_cnn": 400_000.0, "mnist_logreg": 2_000_000.0,
                          "imdb_transformer": 40_000.0, "imdb_lstm": 25_000.0}


def plan(
    suite: str = typer.Option(..., "--suite", "-s", help="Built-in suite name or path to a YAML file."),
    device: str = typer.Option("auto", "--device", help="auto, cpu or cuda."),
    batch_size: Optional[int] = typer.Option(None, "--batch-size", min=1, max=2**20, help="Model evaluations per forward batch for every model (default: measured per model, as bench run)."),
    workers: Optional[int] = typer.Option(None, "--workers", "-w", min=1, max=256, help="Cells at once, as `bench run --workers` (default: the CPU cores)."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object instead of tables."),
    data_dir: Optional[Path] = DataDir,
    plugin: Optional[list[str]] = Plugins,
) -> None:
    """Forecast a suite: cells, explanations, forward and backward passes, and wall time. Its
    plugins are imported (their code runs) to register the names it uses."""
    import torch

    from explainbench import models
    from explainbench.bench.run import forecast, suite as suites, suite_cells

    setup(data_dir, plugin)
    spec = suites.load(suite)
    cells = suite_cells.plan(spec)
    names = {c.model for c in cells}
    for name in names:
        models.spec(name)
    from explainbench.bench.run.runner import cell_threads, tune_batches
    from explainbench.bench.run.workers import default_workers

    workers = workers or default_workers()
    tuned: dict[str, dict] = {}
    assumed = device == "cuda" and not torch.cuda.is_available()
    if assumed:
        throughput = {n: forecast.Throughput(1 / ASSUMED_GPU_ROWS_PER_S.get(n, 20_000.0),
                                             2 / ASSUMED_GPU_ROWS_PER_S.get(n, 20_000.0))
                      for n in names}
        basis = "ASSUMED H200 throughput and a CPU core per worker (no GPU here to calibrate on)"
        device_name = "cuda"
    else:
        resolved = models.resolve_device(device)
        if not batch_size:  # the batches `bench run` would use
            tuned = tune_batches(names, resolved, cell_threads(workers, len(cells), None))
        batches = {name: entry["batch"] for name, entry in tuned.items()}
        throughput = forecast.calibrate(names, resolved, batch_size, batches)
        note = forecast.calibration_note(throughput)
        basis = f"throughput calibrated on this {resolved.type}" + (f", {note}" if note else "")
        device_name = resolved.type
    result = forecast.forecast(cells, throughput, device_name)
    cores = workers if assumed else None  # the GPU machine's cores, one per worker; else this one's
    if as_json:
        payload = result.to_json()
        payload.update(suite=spec.name, cells=len(cells), basis=basis, workers=workers,
                       forward_batches={n: e["batch"] for n, e in tuned.items()} or batch_size,
                       projected_wall_seconds=round(result.wall_seconds(workers, cores), 1),
                       longest_cell_seconds=round(result.longest_cell_s, 1))
        print(json.dumps(payload, indent=2, default=sorted))
        return
    _print_tables(spec, cells, result, basis, workers, cores)
    if tuned:
        from explainbench.bench.run.batch_tuning import describe

        console().print(f"forward batches: {describe(tuned)}")
    from explainbench.bench.cli.options import plugin_notice

    if notice := plugin_notice(spec.plugins, plugin):
        console().print(notice)


def compact(n: float) -> str:
    """A count in at most 6 characters: 9,999, 363k, 11.0M (the totals line has the exact ones)."""
    n = float(n)
    if n < 10_000:
        return f"{n:,.0f}"
    if n < 999_500:
        return f"{n / 1e3:.0f}k"
    if n < 9.995e7:
        return f"{n / 1e6:.1f}M" if n < 9.95e6 else f"{n / 1e6:.0f}M"
    return f"{n / 1e9:.2g}G" if n >= 9.995e8 else f"{n / 1e6:.0f}M"


def _print_tables(spec, cells, result, basis: str, workers: int = 1, cores: int | None = None) -> None:
    from rich.table import Table

    from explainbench.bench.run.forecast import format_seconds

    from rich import box

    out = console()
    # At 80 columns: no outer frame, counts in k/M, and names never cut (two experiments must
    # never read the same, as "mnist-cnn-r…" did for -rules and -robustness).
    table = Table(title=f"{spec.name}: {len(cells)} cells (forecast; fwd and bwd: forward and "
                        "backward passes)", box=box.SIMPLE_HEAD,
                  show_edge=False, pad_edge=False)
    for column in ("experiment", "kind", "cells", "expl.", "fwd", "bwd", "time"):
        table.add_column(column, justify="left" if column in ("experiment", "kind") else "right",
                         no_wrap=True)
    for row in sorted(result.by("experiment", "kind"), key=lambda r: (r["experiment"], r["kind"])):
        table.add_row(row["experiment"], row["kind"], f"{row['cells']:,}",
                      compact(row["explanations"]), compact(row["forward"]),
                      compact(row["backward"]), format_seconds(row["seconds"]))
    out.print(table)
    parts = Table(title="by component (explaining, and each metric)", box=box.SIMPLE_HEAD,
                  show_edge=False, pad_edge=False)
    for column in ("component", "forward", "backward", "time"):
        parts.add_column(column, justify="left" if column == "component" else "right",
                         no_wrap=True)
    for row in sorted(result.by("component"), key=lambda r: -r["forward"]):
        parts.add_row(row["component"], compact(row["forward"]), compact(row["backward"]),
                      format_seconds(row["seconds"]))
    out.print(parts)
    unknown = sorted({u for r in result.rows for u in r["unknown"]})
    if unknown:
        out.print(f"[yellow]not forecast[/] (no declared cost): {', '.join(unknown)}")
    out.print(f"total: {result.forward_passes:,} forward and {result.backward_passes:,} backward "
              f"passes, about {format_seconds(result.projected_seconds)} one cell after another "
              f"({basis}; a forecast)")
    if workers > 1:
        out.print(f"with {workers} workers: about {format_seconds(result.wall_seconds(workers, cores))} "
                  "(the host-side Python of the reference libraries spread over the workers; "
                  "model passes share the same cores or GPU; never below the longest cell, "
                  f"{format_seconds(result.longest_cell_s)})")
    from explainbench.bench.run.forecast import training_line

    if training := training_line({c.model for c in cells}):
        out.print(f"before that, {training}")
