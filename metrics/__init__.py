"""Metrics: pure batched tensor functions, grouped by category, each with its direction declared.

    import metrics
    deletion = metrics.get("deletion", steps=20, substrate="zero")
    result = deletion(model, task, inputs, attributions, targets)   # result.scores: (B,)
"""

from __future__ import annotations

from bench.registry import Registry
from metrics.base import Metric, MetricResult, MetricSpec

REGISTRY: Registry = Registry("metric")


def _register(name: str, target: str, *, category: str, higher_is_better: bool, summary: str,
              **defaults) -> None:
    REGISTRY.add(name, target, spec=MetricSpec(name, category, higher_is_better, defaults, summary))


# ---- faithfulness (metrics/faithfulness.py)
_register("deletion", "metrics.faithfulness:deletion", category="faithfulness",
          higher_is_better=False, steps=20, substrate=None,
          summary="area under the target probability as top features are removed (Petsiuk 2018)")
_register("insertion", "metrics.faithfulness:insertion", category="faithfulness",
          higher_is_better=True, steps=20, substrate=None,
          summary="area under the target probability as top features are inserted (Petsiuk 2018)")

# ---- complexity (metrics/complexity.py)
_register("sparseness", "metrics.complexity:sparseness", category="complexity",
          higher_is_better=True, summary="Gini index of |attribution| (Chalasani 2020)")
_register("complexity", "metrics.complexity:complexity", category="complexity",
          higher_is_better=False, summary="entropy of the |attribution| distribution (Bhatt 2020)")

# ---- ground truth on the linear model (metrics/ground_truth.py)
_register("linear_ground_truth", "metrics.ground_truth:linear_ground_truth",
          category="ground_truth", higher_is_better=True, similarity_measure="spearman",
          summary="similarity to the exact attributions W[c]*x of mnist_logreg")


def names() -> list[str]:
    return REGISTRY.names()


def spec(name: str) -> MetricSpec:
    return REGISTRY.entry(name).meta["spec"]


def get(name: str, **params) -> Metric:
    """A metric with its parameters bound; unknown names and parameters are one-line errors."""
    entry = REGISTRY.entry(name)
    return Metric(entry.meta["spec"], entry.load(), params)


__all__ = ["Metric", "MetricResult", "MetricSpec", "REGISTRY", "get", "names", "spec"]
