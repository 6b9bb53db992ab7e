"""Seeding the global random generators that wrapped libraries draw from.

Captum's NoiseTunnel and GradientShap draw from torch's global generator (and GradientShap also
from numpy's), Captum's Lime/KernelShap from torch's, shap from numpy's. `global_rng(seed)` seeds
all of them for one call and restores their previous states afterwards, so an explanation depends
on its seed alone and never disturbs (or is disturbed by) anything else in the process.
"""

from __future__ import annotations

import contextlib
import random

import numpy as np
import torch


@contextlib.contextmanager
def global_rng(seed: int, device: torch.device | str | None = None):
    device = torch.device(device) if device is not None else torch.device("cpu")
    cuda = [device.index if device.index is not None else torch.cuda.current_device()] \
        if device.type == "cuda" else []
    np_state, py_state = np.random.get_state(), random.getstate()
    with torch.random.fork_rng(devices=cuda):
        torch.manual_seed(int(seed))
        np.random.seed(int(seed) % 2**32)
        random.seed(int(seed))
        try:
            yield
        finally:
            np.random.set_state(np_state)
            random.setstate(py_state)


def numpy_random_state(seed: int) -> np.random.RandomState:
    """A fresh legacy RandomState for libraries that take one (lime, shap's samplers)."""
    return np.random.RandomState(int(seed) % 2**32)
