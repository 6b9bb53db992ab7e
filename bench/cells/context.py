"""The explain stage every kind of cell shares, and the tidy rows a cell writes.

`RunContext` holds what one process loads once (models on the device, slices); `load_chunk` puts a
cell's samples on the device with the classes to explain; every explanation goes through
`explain_chunk`, which reads the content-addressed attribution cache before computing, so an
explanation is computed once per (model, explainer, params, seed, chunk) whichever cell asks;
`score_rows` turns per-sample values into rows of scores.parquet.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import torch

from explainbench import metrics
from explainbench.bench.cells import attribution_cache
from explainbench.bench.cells.cell import Cell
from explainbench.bench.cells.spec import TARGETS, Component, Suite
from explainbench.bench.store import SCORE_COLUMNS, encode_params
from explainbench.core import slices
from explainbench.core.errors import ExplainerError

__all__ = ["TARGETS", "RunContext", "Chunk", "CellOutput", "load_chunk", "explain_chunk",
           "explained_classes", "score_rows", "cost_record"]


def explained_classes(rule: str, predictions: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """The classes explained and scored: the model's predictions or the true labels."""
    return predictions if rule == "predicted" else labels


@dataclass
class RunContext:
    """Loaded once per process: models on the device and slices."""

    device: torch.device
    batch_size: int | None = None  # model evaluations per forward, for every model (--batch-size)
    models: dict = field(default_factory=dict)
    slices: dict = field(default_factory=dict)
    halved: dict = field(default_factory=dict)  # model name -> batch size after out-of-memory
    tuned: dict = field(default_factory=dict)  # model name -> measured batch (run.batch_tuning)

    def batch_for(self, task, model: str) -> int:
        """The forward batch of `model` (of `task`): halved after running out of memory, else
        --batch-size, else the batch measured fastest here, else the task's default."""
        if model in self.halved:
            return self.halved[model]
        return self.batch_size or self.tuned.get(model) or task.default_batch_size(self.device)

    def halve(self, task, model: str) -> bool:
        """Halve the model's batch size after running out of memory; False when it is already 1."""
        current = self.batch_for(task, model)
        if current <= 1:
            return False
        self.halved[model] = current // 2
        return True

    def model(self, name: str):
        if name not in self.models:
            from explainbench import models

            self.models[name] = models.load(name, device=self.device)
        return self.models[name]

    def slice(self, spec: slices.SliceSpec) -> slices.Slice:
        if spec not in self.slices:
            self.slices[spec] = slices.load(spec)
        return self.slices[spec]


@dataclass
class CellOutput:
    rows: pd.DataFrame
    curves: pd.DataFrame | None = None
    costs: list[dict] = field(default_factory=list)  # explanation costs, kept out of the scores
    seconds: float = 0.0
    extras: dict[str, bytes] = field(default_factory=dict)  # parts/<cell>.<name> files


@dataclass
class Chunk:
    """The samples of one cell on the device, with what every row records about them."""

    task: Any
    slice: slices.Slice  # the whole slice (for its hash)
    part: slices.Slice  # this chunk
    inputs: torch.Tensor
    labels: torch.Tensor
    preds: torch.Tensor
    targets: torch.Tensor
    model: str  # the explained model's name (its forward batch: RunContext.batch_for)

    def per_sample(self) -> dict[str, np.ndarray]:
        pred = self.preds.cpu().numpy().astype(np.int64)
        label = self.part.labels.astype(np.int64)
        return {"sample_id": self.part.ids.astype(np.int64), "label": label,
                "target": self.targets.cpu().numpy().astype(np.int64), "pred": pred,
                "correct": pred == label}


def load_chunk(cell: Cell, ctx: RunContext) -> Chunk:
    from explainbench import models

    model = ctx.model(cell.model)
    task = models.task_of(cell.model)
    whole = ctx.slice(cell.experiment.slice)
    part = whole.subset(np.arange(cell.start, cell.stop))
    inputs = task.inputs(part).to(ctx.device)
    labels = torch.as_tensor(part.labels, device=ctx.device)
    preds = task.probabilities(model, inputs, ctx.batch_for(task, cell.model)).argmax(dim=1)
    targets = explained_classes(cell.experiment.target, preds, labels)
    return Chunk(task, whole, part, inputs, labels, preds, targets, cell.model)


def explain_chunk(ctx: RunContext, model_name: str, component: Component, seed: int,
                  chunk: Chunk, *, model=None, inputs=None, targets=None, use_cache: bool = True,
                  records: dict | None = None):
    """(attributions, explainer, cost) of one chunk, from the cache when it has them.

    `model`, `inputs` and `targets` override the chunk's (the sanity study explains randomised
    models, which must never be cached under the trained model's digest: pass use_cache=False).
    `records`: a dict that receives the explainer's per-sample records (Anchor's rules: see
    `Explainer.explain_with_records`), cached with the attributions.
    """
    from explainbench import explainers

    model = model if model is not None else ctx.model(model_name)
    inputs = chunk.inputs if inputs is None else inputs
    targets = chunk.targets if targets is None else targets
    explainer = explainers.get(component.name, batch_size=ctx.batch_for(chunk.task, model_name),
                               **component.params)
    key = attribution_cache.key(model.card["checkpoint_sha256"], explainer, seed,
                                f"{chunk.slice.spec.dataset}/{chunk.slice.spec.split}",
                                chunk.part.ids, targets, ctx.device)
    shape = (len(chunk.part.ids), *chunk.task.feature_shape)
    cached = attribution_cache.load(key, ctx.device, shape) if use_cache else None
    if cached is not None:
        attributions, cost, kept = cached
        if records is not None:
            records.update(kept)
        return attributions, explainer, cost
    with attribution_cache.count_forward_passes(model) as counter:
        started = time.perf_counter()
        try:
            attributions, kept = explainer.explain_with_records(
                model, chunk.task, inputs, targets, seed=seed, sample_ids=chunk.part.ids)
        except ExplainerError as exc:
            raise ExplainerError(f"{exc} (sample ids {chunk.part.ids.tolist()})") from exc
        seconds = time.perf_counter() - started
    n = len(inputs)
    cost = {"seconds_per_explanation": seconds / n, "forward_passes_per_explanation": counter.rows / n}
    if use_cache:
        attribution_cache.save(key, attributions, cost, kept)
    if records is not None:
        records.update(kept)
    return attributions, explainer, cost


def score_rows(suite: Suite, cell: Cell, chunk: Chunk, *, model_sha256: str, explainer_name: str,
               params: dict, params_hash: str, metric: str, metric_params: dict, category: str,
               higher_is_better: bool, values, seed: int | None = None,
               family: str | None = None) -> pd.DataFrame:
    """Tidy rows, one per sample of the chunk, in the column order of scores.parquet. `family`:
    the metric family the aggregate rank counts once (default: the metric itself); a NaN value
    is a sample the metric is undefined for."""
    frame = pd.DataFrame({**chunk.per_sample(),
                          "value": torch.as_tensor(values).detach().double().cpu().numpy()})
    frame = frame.assign(
        suite=suite.name, suite_version=suite.version, suite_hash=suite.content_hash,
        experiment=cell.experiment.name, study=cell.kind, task=chunk.task.name, model=cell.model,
        model_sha256=model_sha256, explainer=explainer_name, params_hash=params_hash,
        params=encode_params(params), metric=metric,
        metric_params=encode_params(metric_params), category=category,
        family=family or metric,
        seed=cell.seed if seed is None else seed, higher_is_better=higher_is_better,
        slice=cell.experiment.slice.label, slice_hash=chunk.slice.content_hash, cell_id=cell.id,
        explainer_version=explainer_version(explainer_name), metric_version=metrics.version_of(metric),
    )
    return frame[SCORE_COLUMNS]


def explainer_version(name: str) -> int:
    """A registered explainer's definition version (explainers.base.Explainer.version), else 1."""
    from explainbench import explainers

    try:
        return int(explainers.get_class(name).version)
    except Exception:  # noqa: BLE001 - a name no registry knows (a study's own label)
        return 1



def cost_record(cell: Cell, explainer, cost: dict, seed: int) -> dict:
    return {"experiment": cell.experiment.name, "model": cell.model, "explainer": explainer.name,
            "params_hash": explainer.params_hash, "seed": seed, "cell_id": cell.id,
            "samples": cell.n_samples, **cost}
