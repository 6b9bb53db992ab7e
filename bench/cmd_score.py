"""`bench score`: score attributions made elsewhere (by `bench explain` or by a user's own code).

The file is the `.npz` that `bench explain` writes; only `inputs`, `sample_ids`, `targets` and
`attributions` are required (`explainer` and `params` are read when a metric re-explains).
Prints one row per sample and writes them to a CSV with the model's checkpoint hash.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from explainbench.bench.cli_options import DataDir, Plugins, console as _console, setup as _setup
from explainbench.core.errors import BenchError

REQUIRED = ("inputs", "sample_ids", "targets", "attributions")
CSV_COLUMNS = ["sample_id", "target", "metric", "value", "higher_is_better", "model",
               "model_sha256", "metric_params", "seed"]


def parse_params(pairs: list[str] | None) -> dict:
    """`k=v` strings; values are read as YAML scalars or lists (20, 0.25, true, [1, 5], zero)."""
    import yaml

    params = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise BenchError(f"--param takes key=value, got {pair!r}")
        try:
            params[key.strip()] = yaml.safe_load(value)
        except yaml.YAMLError as exc:
            raise BenchError(f"--param {pair!r}: value is not valid YAML ({exc.problem})") from None
    return params


def read_attributions(path: Path) -> dict:
    """The arrays of an attribution file, without pickles; one-line errors for what is missing."""
    import numpy as np

    if not path.is_file():
        raise BenchError(f"attribution file {path} not found")
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    except (OSError, ValueError) as exc:
        raise BenchError(f"{path} is not a readable .npz attribution file ({exc})") from None
    missing = [k for k in REQUIRED if k not in arrays]
    if missing:
        raise BenchError(f"{path} lacks {', '.join(missing)}; an attribution file holds "
                         f"{', '.join(REQUIRED)} (as `bench explain` writes)")
    return arrays


def check_shapes(arrays: dict, task, path: Path) -> None:
    n = len(arrays["inputs"])
    inputs_shape = (n, 1, 28, 28) if task.modality == "image" else (n, *task.feature_shape)
    expected = {"inputs": inputs_shape, "sample_ids": (n,), "targets": (n,),
                "attributions": (n, *task.feature_shape)}
    for key, shape in expected.items():
        if tuple(arrays[key].shape) != shape:
            raise BenchError(f"{path}: {key} has shape {tuple(arrays[key].shape)}, expected {shape} "
                             f"for task {task.name}")
    targets = arrays["targets"]
    if targets.size and (targets.min() < 0 or targets.max() >= task.num_classes):
        raise BenchError(f"{path}: targets must be classes 0..{task.num_classes - 1} of {task.name}")


def metric_explainer(metric, arrays: dict, name: Optional[str]):
    """The explainer a re-explaining metric needs: --explainer, else the file's `explainer`."""
    if not metric.needs_explainer:
        return None
    from explainbench import explainers

    recorded = str(arrays["explainer"]) if "explainer" in arrays else None
    name = name or recorded
    if name is None:
        raise BenchError(f"metric {metric.name!r} re-explains perturbed inputs and needs the "
                         f"explainer that made the attributions: pass --explainer NAME "
                         f"(one of {', '.join(explainers.names())})")
    params = {}
    if name == recorded and "params" in arrays:
        params = json.loads(str(arrays["params"]))
    return explainers.get(name, **params)


def score(
    model: str = typer.Option(..., "--model", "-m", help="Model the attributions explain."),
    attributions: Path = typer.Option(..., "--attributions", "-a", help=".npz as `bench explain` writes."),
    metric: str = typer.Option(..., "--metric", help="Metric name (see `bench list metrics`)."),
    steps: Optional[int] = typer.Option(None, "--steps", help="Steps of a curve metric."),
    substrate: Optional[str] = typer.Option(None, "--substrate", help="What removed features become."),
    param: Optional[list[str]] = typer.Option(None, "--param", help="Other metric parameter, key=value (repeatable)."),
    explainer: Optional[str] = typer.Option(None, "--explainer", help="Explainer for metrics that re-explain (max_sensitivity); default: the file's."),
    seed: int = typer.Option(0, "--seed", min=0, help="Seed of the metric's random draws."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="CSV to write (default <attributions>.<metric>.csv)."),
    device: str = typer.Option("auto", "--device", help="auto, cpu or cuda."),
    batch_size: int = typer.Option(256, "--batch-size", min=1, help="Model evaluations per forward batch."),
    data_dir: Optional[Path] = DataDir,
    plugin: Optional[list[str]] = Plugins,
) -> None:
    """Score attributions from a file with one metric: one row per sample, printed and written."""
    import numpy as np
    import pandas as pd
    import torch
    from rich.table import Table

    from explainbench import metrics
    from explainbench import models

    _setup(data_dir, plugin)
    params = parse_params(param)
    spec = metrics.spec(metric)
    for flag, key, value in (("--steps", "steps", steps), ("--substrate", "substrate", substrate)):
        if value is not None:
            if key not in spec.defaults:
                raise BenchError(f"metric {metric!r} takes no {flag}; its parameters: "
                                 f"{', '.join(sorted(spec.defaults)) or 'none'}")
            params[key] = value
    bound = metrics.get(metric, **params)
    models.spec(model)
    task = models.task_of(model)
    reason = bound.supports(task)
    if reason:
        raise BenchError(reason)
    if bound.params.get("substrate") is not None:
        task.check_substrate(bound.params["substrate"])
    arrays = read_attributions(attributions)
    if "model" in arrays and str(arrays["model"]) != model:
        raise BenchError(f"{attributions} explains model {str(arrays['model'])!r}, not {model!r}")
    check_shapes(arrays, task, attributions)
    chosen = metric_explainer(bound, arrays, explainer)

    net = models.load(model, device=device)
    dev = next(net.parameters()).device
    inputs = torch.as_tensor(arrays["inputs"]).to(dev)
    inputs = inputs.float() if task.modality == "image" else inputs.long()
    result = bound(net, task, inputs, torch.as_tensor(arrays["attributions"]).float().to(dev),
                   torch.as_tensor(arrays["targets"]).long().to(dev), seed=seed, explainer=chosen,
                   batch_size=batch_size)
    outputs = result.outputs(bound.spec)  # one (name, higher is better, scores, curve) per row set

    rows = pd.concat([pd.DataFrame({
        "sample_id": arrays["sample_ids"].astype(np.int64), "target": arrays["targets"].astype(np.int64),
        "metric": name, "value": values.detach().double().cpu().numpy(), "higher_is_better": higher,
        "model": model, "model_sha256": net.card["checkpoint_sha256"],
        "metric_params": json.dumps(bound.params, sort_keys=True, default=str), "seed": seed,
    }) for name, higher, values, _ in outputs], ignore_index=True)[CSV_COLUMNS]
    out = out or attributions.with_suffix(f".{metric}.csv")
    out.parent.mkdir(parents=True, exist_ok=True)
    rows.to_csv(out, index=False)

    columns = [f"{name} ({'higher' if higher else 'lower'} is better)" for name, higher, _, _ in outputs]
    table = Table("sample_id", "target", *columns,
                  title=f"{metric} of {attributions.name} on {model} ({bound!r}, seed {seed})")
    wide = rows.pivot_table(index=["sample_id", "target"], columns="metric", values="value",
                            dropna=False, sort=False)
    names = [name for name, _, _, _ in outputs]
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
    console.print(f"wrote {len(rows)} rows to {out}")
