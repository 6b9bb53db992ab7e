"""Cells, the unit of work, and the explain stage every kind of cell shares.

A cell is (kind, experiment, model, explainer with its parameters, seed, slice chunk, options).
`kind` is "scores" for the plain explain-then-score cell, or a study (stability, background,
sanity, agreement) whose cells combine several explanations. Every explanation goes through
`explain_chunk`, which reads the content-addressed attribution cache before computing, so an
explanation is computed once per (model, explainer, params, seed, chunk) whichever cell asks.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import torch

from explainbench.core import slices
from explainbench.bench import attribution_cache
from explainbench.core.errors import ExplainerError
from explainbench.bench.store import SCORE_COLUMNS
from explainbench.bench.spec import Component, Experiment, Suite


@dataclass(frozen=True)
class Cell:
    kind: str
    experiment: Experiment
    model: str
    explainer: Component | None
    seed: int
    chunk: int
    start: int  # positions [start, stop) in the experiment's slice
    stop: int
    options: tuple[tuple[str, Any], ...] = ()  # the study's settings for this cell

    @property
    def id(self) -> str:
        key = {
            "kind": self.kind,
            "experiment": self.experiment.name,
            "slice": self.experiment.slice.label,
            "model": self.model,
            "explainer": None if self.explainer is None else [self.explainer.name,
                                                              self.explainer.params_items],
            "metrics": [m.label for m in self.experiment.metrics],
            "target": self.experiment.target,
            "seed": self.seed,
            "chunk": [self.start, self.stop],
            "options": self.options,
        }
        digest = hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()
        who = self.explainer.name if self.explainer else "all"
        return f"{self.kind}-{self.experiment.name}-{self.model}-{who}-s{self.seed}-c{self.chunk}-{digest[:10]}"

    @property
    def label(self) -> str:
        who = self.explainer.label if self.explainer else "all explainers"
        return f"{self.kind}: {self.model} · {who} · seed {self.seed} · chunk {self.chunk}"

    @property
    def n_samples(self) -> int:
        return self.stop - self.start

    def option(self, name: str, default: Any = None) -> Any:
        return dict(self.options).get(name, default)


_ARCHITECTURES: dict[str, object] = {}


def unsupported_reason(model_name: str, component: Component) -> str | None:
    """Why `component` cannot explain `model_name` (None when it can), decided at planning time
    on an untrained instance of the architecture, so no weights are needed."""
    from explainbench import explainers
    from explainbench import models

    if model_name not in _ARCHITECTURES:
        _ARCHITECTURES[model_name] = models.zoo.build(model_name)
    explainer = explainers.get(component.name, **component.params)
    return explainer.supports(_ARCHITECTURES[model_name], models.task_of(model_name))


@dataclass
class RunContext:
    """Loaded once per process: models on the device and slices."""

    device: torch.device
    batch_size: int | None = None  # model evaluations per forward; None: each task's default
    models: dict = field(default_factory=dict)
    slices: dict = field(default_factory=dict)
    halved: dict = field(default_factory=dict)  # task name -> batch size after out-of-memory

    def batch_for(self, task) -> int:
        if task.name in self.halved:
            return self.halved[task.name]
        return self.batch_size or task.default_batch_size(self.device)

    def halve(self, task) -> bool:
        """Halve the task's batch size after running out of memory; False when it is already 1."""
        current = self.batch_for(task)
        if current <= 1:
            return False
        self.halved[task.name] = current // 2
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
    preds = task.probabilities(model, inputs, ctx.batch_for(task)).argmax(dim=1)
    targets = preds if cell.experiment.target == "predicted" else labels
    return Chunk(task, whole, part, inputs, labels, preds, targets)


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
    explainer = explainers.get(component.name, batch_size=ctx.batch_for(chunk.task),
                               **component.params)
    key = attribution_cache.key(model.card["checkpoint_sha256"], explainer, seed,
                                f"{chunk.slice.spec.dataset}/{chunk.slice.spec.split}",
                                chunk.part.ids, targets, ctx.device)
    cached = attribution_cache.load(key, ctx.device) if use_cache else None
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
        params=json.dumps(params, sort_keys=True, default=str), metric=metric,
        metric_params=json.dumps(metric_params, sort_keys=True, default=str), category=category,
        family=family or metric,
        seed=cell.seed if seed is None else seed, higher_is_better=higher_is_better,
        slice=cell.experiment.slice.label, slice_hash=chunk.slice.content_hash, cell_id=cell.id,
    )
    return frame[SCORE_COLUMNS]


@dataclass
class Demands:
    """What a cell asks for, for `bench plan`: explanations of its chunk that the attribution cache
    serves once (explainer with parameters, seed), explanations that are never cached (of
    randomised models or other targets: the explainer and how many), and the metrics that score
    its explanation."""

    cached: list[tuple[Component, int]] = field(default_factory=list)
    uncached: list[tuple[Component, int]] = field(default_factory=list)
    metrics: list[Component] = field(default_factory=list)


def cost_record(cell: Cell, explainer, cost: dict, seed: int) -> dict:
    return {"experiment": cell.experiment.name, "model": cell.model, "explainer": explainer.name,
            "params_hash": explainer.params_hash, "seed": seed, "cell_id": cell.id,
            "samples": cell.n_samples, **cost}
