"""Cells, the unit of work: what a cell is, which chunks of a slice it covers, and what it asks for.

A cell is (kind, experiment, model, explainer with its parameters, seed, slice chunk, options).
`kind` is "scores" for the plain explain-then-score cell, or a study (stability, background,
sanity, agreement) whose cells combine several explanations. Studies build their cells here
(`bench/studies/`); the run stage plans, forecasts and executes them (`bench/run/`).
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from typing import Any, Iterator

from explainbench.bench.cells.spec import Component, Experiment


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
        # the id names files: user-chosen names are made safe (a dot would split the id from its
        # part's suffix, a slash would leave the folder); the digest keeps ids unique
        parts = (self.kind, self.experiment.name, self.model, who)
        return "-".join(map(file_safe, parts)) + f"-s{self.seed}-c{self.chunk}-{digest[:10]}"

    @property
    def label(self) -> str:
        who = self.explainer.label if self.explainer else "all explainers"
        seed = "across seeds" if self.seed < 0 else f"seed {self.seed}"  # the stability study's
        return f"{self.kind}: {self.model} · {who} · {seed} · chunk {self.chunk}"

    @property
    def n_samples(self) -> int:
        return self.stop - self.start

    def option(self, name: str, default: Any = None) -> Any:
        return dict(self.options).get(name, default)




def file_safe(name: str) -> str:
    """`name` with every character but letters, digits, '_' and '-' replaced by '_'."""
    return re.sub(r"[^A-Za-z0-9_-]", "_", str(name))


def chunks(exp: Experiment) -> Iterator[tuple[int, int, int]]:
    """(chunk number, start, stop) of every chunk of the experiment's slice, in order."""
    for chunk, start in enumerate(range(0, exp.slice.size, exp.chunk_size)):
        yield chunk, start, min(exp.slice.size, start + exp.chunk_size)


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
class Demands:
    """What a cell asks for, for `bench plan`: explanations of its chunk that the attribution cache
    serves once (explainer with parameters, seed), explanations that are never cached (of
    randomised models or other targets: the explainer and how many), and the metrics that score
    its explanation."""

    cached: list[tuple[Component, int]] = field(default_factory=list)
    uncached: list[tuple[Component, int]] = field(default_factory=list)
    metrics: list[Component] = field(default_factory=list)


