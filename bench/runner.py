"""The runner: a suite becomes cells; each cell explains one chunk once and scores it with every
metric; finished cells are written atomically and skipped on a rerun; failures are recorded and
the run goes on.

A cell is (experiment, model, explainer with its parameters, seed, slice chunk). Stochastic
explainers run under every seed of the experiment, deterministic ones under the first.
"""

from __future__ import annotations

import hashlib
import json
import time
import traceback
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from bench import attribution_cache, provenance, slices
from bench.errors import BenchError, ExplainerError
from bench.store import SCORE_COLUMNS, ResultStore
from bench.suite import Component, Experiment, Suite


@dataclass(frozen=True)
class Cell:
    experiment: Experiment
    model: str
    explainer: Component
    seed: int
    chunk: int
    start: int  # positions [start, stop) in the experiment's slice
    stop: int

    @property
    def id(self) -> str:
        key = {
            "experiment": self.experiment.name,
            "slice": self.experiment.slice.label,
            "model": self.model,
            "explainer": self.explainer.name,
            "params": self.explainer.params_items,
            "metrics": [m.label for m in self.experiment.metrics],
            "target": self.experiment.target,
            "seed": self.seed,
            "chunk": [self.start, self.stop],
        }
        digest = hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()
        return f"{self.experiment.name}-{self.model}-{self.explainer.name}-s{self.seed}-c{self.chunk}-{digest[:10]}"

    @property
    def label(self) -> str:
        return f"{self.model} · {self.explainer.label} · seed {self.seed} · chunk {self.chunk}"


def plan(suite: Suite) -> list[Cell]:
    """Every cell of a suite, in a fixed order (grouped by model so each is loaded once)."""
    import explainers

    cells = []
    for exp in suite.experiments:
        size, step = exp.slice.size, exp.chunk_size
        for model in exp.models:
            for comp in exp.explainers:
                stochastic = explainers.get_class(comp.name).stochastic
                for seed in exp.seeds if stochastic else exp.seeds[:1]:
                    for chunk, start in enumerate(range(0, size, step)):
                        cells.append(Cell(exp, model, comp, seed, chunk, start, min(size, start + step)))
    return cells


@dataclass
class RunContext:
    """Loaded once per run: models, tasks, slices and their inputs on the device."""

    device: torch.device
    batch_size: int = 256
    models: dict = field(default_factory=dict)
    slices: dict = field(default_factory=dict)

    def model(self, name: str):
        if name not in self.models:
            import models

            self.models[name] = models.load(name, device=self.device)
        return self.models[name]

    def slice(self, spec: slices.SliceSpec) -> slices.Slice:
        if spec not in self.slices:
            self.slices[spec] = slices.load(spec)
        return self.slices[spec]


@dataclass
class CellOutput:
    rows: pd.DataFrame
    curves: pd.DataFrame | None
    cost: dict  # explanation cost; kept out of the scores, which must not depend on timing
    seconds: float


def execute(cell: Cell, suite: Suite, ctx: RunContext) -> CellOutput:
    """Explain one chunk (or read its cached attributions) and score it with every metric."""
    import explainers
    import metrics
    from bench import tasks

    started = time.perf_counter()
    model = ctx.model(cell.model)
    task = tasks.for_model(cell.model)
    sl = ctx.slice(cell.experiment.slice)
    chunk = sl.subset(np.arange(cell.start, cell.stop))
    inputs = task.inputs(chunk).to(ctx.device)
    labels = torch.as_tensor(chunk.labels, device=ctx.device)
    probs = task.probabilities(model, inputs, ctx.batch_size)
    preds = probs.argmax(dim=1)
    targets = preds if cell.experiment.target == "predicted" else labels

    explainer = explainers.get(cell.explainer.name, batch_size=ctx.batch_size, **cell.explainer.params)
    key = attribution_cache.key(model.card["checkpoint_sha256"], explainer, cell.seed, sl.content_hash,
                                chunk.ids, targets, ctx.device)
    cached = attribution_cache.load(key, ctx.device)
    if cached is None:
        with attribution_cache.count_forward_passes(model) as counter:
            t0 = time.perf_counter()
            try:
                attributions = explainer.explain(model, task, inputs, targets, seed=cell.seed)
            except ExplainerError as exc:
                raise ExplainerError(f"{exc} (sample ids {chunk.ids.tolist()})") from exc
            explain_seconds = time.perf_counter() - t0
        cost = {"seconds_per_explanation": explain_seconds / len(chunk),
                "forward_passes_per_explanation": counter.rows / len(chunk)}
        attribution_cache.save(key, attributions, cost)
    else:
        attributions, cost = cached

    base = {
        "suite": suite.name, "suite_version": suite.version, "suite_hash": suite.content_hash,
        "experiment": cell.experiment.name, "task": task.name, "model": cell.model,
        "model_sha256": model.card["checkpoint_sha256"], "explainer": cell.explainer.name,
        "params_hash": explainer.params_hash,
        "params": json.dumps(explainer.params, sort_keys=True, default=str),
        "seed": cell.seed, "slice": cell.experiment.slice.label, "slice_hash": sl.content_hash,
        "cell_id": cell.id,
    }
    per_sample = {
        "sample_id": chunk.ids.astype(np.int64),
        "label": chunk.labels.astype(np.int64),
        "target": targets.cpu().numpy().astype(np.int64),
        "pred": preds.cpu().numpy().astype(np.int64),
    }
    per_sample["correct"] = per_sample["pred"] == per_sample["label"]
    frames, curve_frames = [], []
    for comp in cell.experiment.metrics:
        metric = metrics.get(comp.name, **comp.params)
        result = metric(model, task, inputs, attributions, targets, seed=cell.seed,
                        explainer=explainer, batch_size=ctx.batch_size)
        metric_params = json.dumps(metric.params, sort_keys=True, default=str)
        frame = pd.DataFrame({**per_sample, "value": result.scores.detach().double().cpu().numpy()})
        frame = frame.assign(**base, metric=comp.name, metric_params=metric_params,
                             category=metric.category, higher_is_better=metric.higher_is_better)
        frames.append(frame)
        if result.curve is not None:
            curve = result.curve.detach().double().cpu().numpy()
            steps = curve.shape[1]
            curve_frames.append(pd.DataFrame({
                "sample_id": np.repeat(per_sample["sample_id"], steps),
                "correct": np.repeat(per_sample["correct"], steps),
                "step": np.tile(np.arange(steps), len(chunk)),
                "fraction": np.tile(np.linspace(0.0, 1.0, steps), len(chunk)),
                "value": curve.reshape(-1),
            }).assign(**{k: base[k] for k in ("suite", "experiment", "task", "model", "explainer",
                                               "params_hash", "seed", "cell_id")},
                      metric=comp.name, metric_params=metric_params))
    rows = pd.concat(frames, ignore_index=True)[SCORE_COLUMNS]
    curves = pd.concat(curve_frames, ignore_index=True) if curve_frames else None
    cost = {**{k: base[k] for k in ("experiment", "task", "model", "explainer", "params_hash",
                                      "seed", "cell_id")}, "samples": len(chunk), **cost}
    return CellOutput(rows, curves, cost, time.perf_counter() - started)


@dataclass
class RunSummary:
    out: Path
    total: int
    done: int
    skipped: int
    failed: list[dict]

    @property
    def ok(self) -> bool:
        return not self.failed


def run(suite: Suite, out: str | Path, *, device: str = "auto", retry_failed: bool = False,
        batch_size: int = 256, show_progress: bool = True) -> RunSummary:
    import explainers
    import models

    store = ResultStore(out)
    with store.lock():
        store.open_for(suite)
        ctx = RunContext(models.resolve_device(device), batch_size=batch_size)
        cells = plan(suite)
        previously_failed = store.failed_cells()
        todo = [c for c in cells if not store.is_done(c.id)]
        if retry_failed:
            todo = [c for c in todo if c.id in previously_failed]
        manifest = provenance.start_manifest(store.read_manifest(), suite, ctx, len(cells))
        _check_models(manifest, suite, ctx)
        store.write_manifest(manifest)

        failed: list[dict] = []
        with provenance.progress(show_progress) as bar:
            task_id = bar.add_task("cells", total=len(cells), completed=len(cells) - len(todo),
                                   current="", rate="")
            for cell in todo:
                bar.update(task_id, current=cell.label)
                try:
                    output = execute(cell, suite, ctx)
                    store.write_cell(cell.id, output.rows, output.curves, output.cost)
                    rate = f"{(cell.stop - cell.start) / max(output.seconds, 1e-9):.1f} samples/s"
                    bar.update(task_id, advance=1, rate=rate)
                except (KeyboardInterrupt, BenchError):
                    raise
                except Exception as exc:  # a failing cell is recorded, the run goes on
                    record = {
                        "cell_id": cell.id, "experiment": cell.experiment.name, "model": cell.model,
                        "explainer": cell.explainer.label,
                        "params_hash": explainers.params_hash(
                            cell.explainer.name,
                            {**explainers.get_class(cell.explainer.name).defaults,
                             **cell.explainer.params}),
                        "seed": cell.seed,
                        "chunk": cell.chunk, "error_type": type(exc).__name__,
                        "error": str(exc).splitlines()[0] if str(exc) else type(exc).__name__,
                        "traceback": traceback.format_exc(),
                    }
                    store.write_failure(cell.id, record)
                    failed.append(record)
                    bar.update(task_id, advance=1)
        scores = store.consolidate()
        from bench import report

        report.write_leaderboard(scores, store.root)
        manifest["end_utc"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
        manifest["cells"] = {"total": len(cells), "finished": int(sum(store.is_done(c.id) for c in cells)),
                             "failed": len(store.failed_cells())}
        store.write_manifest(manifest)
    all_failed = [r for r in store.failures().to_dict("records")]
    return RunSummary(store.root, len(cells), len(todo) - len(failed), len(cells) - len(todo), all_failed)


def _check_models(manifest: dict, suite: Suite, ctx: RunContext) -> None:
    """Load (training if needed) every model; a resumed run must see the same checkpoints."""
    recorded = manifest.setdefault("models", {})
    for exp in suite.experiments:
        for name in exp.models:
            card = ctx.model(name).card
            digest = card["checkpoint_sha256"]
            if name in recorded and recorded[name]["checkpoint_sha256"] != digest:
                raise BenchError(
                    f"model {name} changed since this run started (checkpoint "
                    f"{recorded[name]['checkpoint_sha256'][:12]} -> {digest[:12]}); "
                    "choose another --out"
                )
            recorded[name] = {k: card.get(k) for k in
                              ("checkpoint_sha256", "identity_sha256", "profile", "test_accuracy")}
    for exp in suite.experiments:
        manifest.setdefault("slices", {})[exp.slice.label] = ctx.slice(exp.slice).content_hash
