"""Silencing the warnings that wrapped libraries print on every call (and that say nothing about
the explanation), so that a run's log shows the warnings that matter."""

from __future__ import annotations

import contextlib
import warnings

# Captum: it hooks the activations for DeepLift / guided backprop, and removes the hooks after.
CAPTUM_HOOKS = ("Setting forward, backward hooks", "Setting backward hooks on ReLU")
# shap.DeepExplainer passes modules it has no rule for through as linear; the only such module in
# the zoo is Normalize, which is linear (shap's additivity check confirms the sums).
SHAP_DEEP = ("unrecognized nn.Module: Normalize", "__array_wrap__ must accept context")


@contextlib.contextmanager
def quiet(*messages: str):
    with warnings.catch_warnings():
        for message in messages:
            warnings.filterwarnings("ignore", message=message)
        yield
