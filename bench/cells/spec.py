"""What a suite is, once parsed: frozen dataclasses (hashable, so cells can key on them).
`bench/run/suite.py` reads and validates the YAML into these."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any

from explainbench.core import slices


@dataclass(frozen=True)
class Component:
    """An explainer or metric with its parameters, as named in a suite."""

    name: str
    params_items: tuple[tuple[str, Any], ...] = ()

    @property
    def params(self) -> dict[str, Any]:
        return dict(self.params_items)

    @property
    def label(self) -> str:
        if not self.params_items:
            return self.name
        return f"{self.name}({', '.join(f'{k}={v}' for k, v in self.params_items)})"


@dataclass(frozen=True)
class Experiment:
    name: str
    slice: slices.SliceSpec
    models: tuple[str, ...]
    explainers: tuple[Component, ...]
    metrics: tuple[Component, ...]
    seeds: tuple[int, ...]
    chunk_size: int
    target: str
    floor: bool = True
    studies: tuple[tuple[str, Any], ...] = ()  # (study name, frozen options) pairs

    def study_options(self) -> dict[str, dict]:
        return {name: thaw(options) for name, options in self.studies}


@dataclass(frozen=True)
class Suite:
    name: str
    version: int
    description: str
    experiments: tuple[Experiment, ...]
    content_hash: str
    cell_timeout_s: float = 1800.0
    plugins: tuple[str, ...] = ()  # users' modules imported before the suite was checked
    source: str = field(default="", compare=False)  # where the YAML came from
    text: str = field(default="", compare=False, repr=False)  # the YAML as written


TARGETS = ("predicted", "label")  # which class a suite (or `bench explain`) explains and scores


def bound_metric(component: Component):
    """The metric object of a suite entry, built once per process: validation, the forecast and
    the cells that score all use this one (its parameters checked and defaults filled once). The
    registry's current entry is part of the key, so a re-registered plugin metric is rebuilt."""
    from explainbench import metrics

    return _bound(component, id(metrics.REGISTRY.entry(component.name)))


@functools.lru_cache(maxsize=None)
def _bound(component: Component, entry: int):
    from explainbench import metrics

    return metrics.get(component.name, **component.params)


def freeze(obj):
    """Hashable form of YAML settings (dicts become sorted item tuples, lists tuples)."""
    if isinstance(obj, dict):
        return ("__dict__", tuple((k, freeze(v)) for k, v in sorted(obj.items())))
    if isinstance(obj, (list, tuple)):
        return tuple(freeze(v) for v in obj)
    return obj


def thaw(obj):
    if isinstance(obj, tuple) and len(obj) == 2 and obj[0] == "__dict__":
        return {k: thaw(v) for k, v in obj[1]}
    if isinstance(obj, tuple):
        return [thaw(v) for v in obj]
    return obj
