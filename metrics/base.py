"""What every metric returns, and the thin wrapper that binds a metric function to its parameters."""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Any, Callable

import torch
from torch import Tensor

from explainbench.core.params import Param, check_all


# What a metric measures; the leaderboard ranks the first six (bench/report/tables.py).
CATEGORIES = ("faithfulness", "robustness", "complexity", "ground_truth", "examples", "rules",
              "stability", "sanity", "agreement", "background")


@dataclass
class MetricResult:
    scores: Tensor  # (B,) one score per sample; NaN where it is undefined for a sample
    curve: Tensor | None = None  # (B, steps + 1) where the metric has a curve
    extras: dict[str, Tensor] = field(default_factory=dict)  # other per-sample series, by name
    # A metric with several outputs (MetricSpec.outputs) gives each its (B,) scores here, and the
    # curves it keeps by output name: one evaluation, several rows.
    named: dict[str, Tensor] = field(default_factory=dict)
    named_curves: dict[str, Tensor] = field(default_factory=dict)

    def outputs(self, spec: "MetricSpec") -> list[tuple[str, bool, Tensor, Tensor | None]]:
        """(output name, higher is better, scores (B,), curve or None) of every row set."""
        if not spec.outputs:
            return [(spec.name, spec.higher_is_better, self.scores, self.curve)]
        return [(name, higher, self.named[name], self.named_curves.get(name))
                for name, higher in spec.outputs.items()]


@dataclass(frozen=True)
class MetricSpec:
    name: str
    category: str  # one of CATEGORIES
    higher_is_better: bool
    parameters: dict[str, Param]  # each with its default, type and valid range
    summary: str = ""
    modalities: frozenset[str] = frozenset({"image", "text"})
    # Metrics of one family measure one idea (MIF, LIF, SRG are pixel flipping; ROAD's outputs
    # are ROAD): the aggregate rank counts each family once (bench/report/tables.py).
    family: str = ""
    outputs: dict[str, bool] | None = None  # output name -> higher is better (several rows)
    # The definition's version: bumped whenever the metric's numbers would change (a bug fix, a
    # new tie rule, a new default). Score rows carry it; `bench compare` pairs only equal ones.
    version: int = 1

    @property
    def defaults(self) -> dict[str, Any]:
        return {k: p.default for k, p in self.parameters.items()}


class Metric:
    """A metric function with its parameters bound. Calling it passes only what the function takes:
    `generator` (seeded from the cell's seed), `seed` itself and `explainer` (for re-explaining
    metrics)."""

    def __init__(self, spec: MetricSpec, fn: Callable[..., MetricResult], params: dict[str, Any]):
        self.spec, self.fn = spec, fn
        self.params = check_all(spec.parameters, params, f"metric {spec.name!r}")
        self._accepts = set(inspect.signature(fn).parameters)

    name = property(lambda self: self.spec.name)
    higher_is_better = property(lambda self: self.spec.higher_is_better)
    category = property(lambda self: self.spec.category)

    @property
    def needs_explainer(self) -> bool:
        return "explainer" in self._accepts

    def supports(self, task) -> str | None:
        """None when this metric is defined for the task's modality, else the reason it is not."""
        if task.modality not in self.spec.modalities:
            return (f"metric {self.name!r} is defined for {'/'.join(sorted(self.spec.modalities))} "
                    f"inputs only, not {task.modality} ({task.name}); see its docstring for why")
        return None

    def __repr__(self) -> str:
        return f"{self.name}({', '.join(f'{k}={v!r}' for k, v in sorted(self.params.items()))})"

    def __call__(self, model, task, inputs: Tensor, attributions: Tensor, targets: Tensor, *,
                 seed: int = 0, explainer=None, batch_size: int = 256,
                 shared: dict | None = None) -> MetricResult:
        """`shared`: one dict the caller passes to every metric of the same explanations, where
        metrics keep evaluations others reuse (the same removal curve, the same substrate)."""
        kwargs: dict[str, Any] = dict(self.params)
        if "generator" in self._accepts:
            kwargs["generator"] = torch.Generator().manual_seed(int(seed))
        if "explainer" in self._accepts:
            kwargs["explainer"] = explainer
        if "seed" in self._accepts:  # e.g. the random tie order (metrics/ordering.py)
            kwargs["seed"] = seed
        if "batch_size" in self._accepts:
            kwargs["batch_size"] = batch_size
        if "shared" in self._accepts:
            kwargs["shared"] = shared
        result = self.fn(model, task, inputs, attributions, targets, **kwargs)
        if isinstance(result, Tensor):  # a plugin may return the per-sample scores alone
            result = MetricResult(result)
        if not isinstance(result, MetricResult) or tuple(result.scores.shape) != (len(inputs),):
            got = getattr(getattr(result, "scores", result), "shape", type(result).__name__)
            raise ValueError(f"metric {self.name!r} returned {got}; expected a MetricResult or "
                             f"a tensor of {len(inputs)} per-sample scores")
        return result
