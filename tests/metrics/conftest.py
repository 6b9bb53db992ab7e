"""Fixtures shared by the metric tests: real MNIST test images and tie-free attributions.

Quantus ranks with numpy's unstable argsort, so wherever a test compares orderings with Quantus
the attributions are continuous random values (no ties); tie-breaking is tested on its own.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch


@pytest.fixture(scope="session")
def mnist_test_images(real_data):
    """A function (start, n) -> (n, 1, 28, 28) float32 pixels in [0, 1] of the MNIST test split."""
    from explainbench.core import data

    images, labels = data.load_mnist("test")

    def take(start: int, n: int):
        x = torch.from_numpy(images[start:start + n].astype(np.float32) / 255.0).unsqueeze(1)
        return x, torch.from_numpy(labels[start:start + n].astype(np.int64))

    return take


def tie_free(shape, seed: int) -> torch.Tensor:
    """Continuous random attributions: no two features tie."""
    return torch.rand(shape, generator=torch.Generator().manual_seed(seed))


def predicted(model, x) -> torch.Tensor:
    with torch.no_grad():
        return model(x).argmax(dim=1)
