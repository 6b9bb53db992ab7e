"""Explainers: one file per family, registered by name, imported lazily.

    import explainers
    ig = explainers.get("integrated_gradients", n_steps=32)
    attributions = ig.explain(model, task, inputs, targets, seed=0)   # (B, *feature_shape)
"""

from __future__ import annotations

from bench.registry import Registry
from explainers.base import Explainer, params_hash

REGISTRY: Registry[type[Explainer]] = Registry("explainer")

# name -> "module:Class". Keep one line per explainer; the family file holds the method.
for _name, _target in {
    "saliency": "explainers.gradients:Saliency",
    "integrated_gradients": "explainers.gradients:IntegratedGradients",
}.items():
    REGISTRY.add(_name, _target)


def names() -> list[str]:
    return REGISTRY.names()


def get_class(name: str) -> type[Explainer]:
    return REGISTRY.load(name)


def get(name: str, **params) -> Explainer:
    """An explainer instance; unknown names and parameters are one-line errors with the choices."""
    return get_class(name)(**params)


__all__ = ["Explainer", "REGISTRY", "get", "get_class", "names", "params_hash"]
