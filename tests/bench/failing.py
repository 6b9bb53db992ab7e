"""Deliberately broken explainers for the runner's failure handling (registered by tests only)."""

from __future__ import annotations

import torch

from explainbench.explainers.base import Explainer


class AlwaysFails(Explainer):
    name = "always_fails"

    def attribute(self, model, task, inputs, targets, *, seed):
        raise RuntimeError("this explainer always fails")


class ReturnsNaN(Explainer):
    name = "returns_nan"

    def attribute(self, model, task, inputs, targets, *, seed):
        return torch.full((len(inputs), *task.feature_shape), float("nan"))
