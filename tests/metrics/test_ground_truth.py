"""The exact attributions of the linear model, and the metric that scores against them."""

from __future__ import annotations

import pytest
import torch

from explainbench import explainers
from explainbench import metrics


def test_input_x_gradient_of_logreg_scores_exactly_one(logreg, image_task, images):
    targets = logreg(images).argmax(1)
    exact = logreg.weight[targets].view(8, 28, 28) * images[:, 0]
    for measure in ("spearman", "cosine"):
        m = metrics.get("linear_ground_truth", similarity_measure=measure)
        assert torch.allclose(m(logreg, image_task, images, exact, targets).scores,
                              torch.ones(8, dtype=torch.float64))
    ig = explainers.get("integrated_gradients", n_steps=8).explain(logreg, image_task, images, targets)
    score = metrics.get("linear_ground_truth")(logreg, image_task, images, ig, targets).scores
    assert (score > 0.999).all()
    noise = torch.randn(8, 28, 28, generator=torch.Generator().manual_seed(123))
    assert metrics.get("linear_ground_truth")(logreg, image_task, images, noise, targets).scores.abs().max() < 0.2


def test_non_linear_models_are_refused(tiny_cnn, image_task, images):
    with pytest.raises(ValueError, match="needs a linear model"):
        metrics.get("linear_ground_truth")(tiny_cnn, image_task, images, torch.rand(8, 28, 28),
                                           torch.zeros(8, dtype=torch.long))
