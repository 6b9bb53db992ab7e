"""The control explainers: Sobel edges on a step image, uniform noise from the seed."""

from __future__ import annotations

import torch

from explainbench import explainers


def test_edge_is_the_sobel_magnitude_of_a_step(tiny_cnn, image_task):
    x = torch.zeros(1, 1, 28, 28)
    x[..., 14:] = 1.0  # a vertical step between columns 13 and 14
    out = explainers.get("edge").explain(tiny_cnn, image_task, x)[0]
    # Sobel's horizontal kernel sums to 1 + 2 + 1 = 4 across a unit step; replicated borders
    # keep the image frame from looking like an edge.
    assert torch.equal(out[:, 13:15], torch.full((28, 2), 4.0))
    out[:, 13:15] = 0
    assert torch.equal(out, torch.zeros(28, 28))


def test_edge_ignores_the_model(tiny_cnn, logreg, images, image_task):
    a = explainers.get("edge").explain(tiny_cnn, image_task, images)
    b = explainers.get("edge").explain(logreg, image_task, images)
    assert torch.equal(a, b)


def test_random_is_uniform_and_ignores_model_and_input(tiny_cnn, logreg, images, image_task):
    """A sample's noise is a function of the seed and its id: another model, other pixels under
    the same ids, the same maps; other ids, other maps."""
    ids = torch.arange(len(images))
    a = explainers.get("random").explain(tiny_cnn, image_task, images, seed=3, sample_ids=ids)
    b = explainers.get("random").explain(logreg, image_task, images.flip(0), seed=3, sample_ids=ids)
    assert torch.equal(a, b)
    c = explainers.get("random").explain(tiny_cnn, image_task, images, seed=3, sample_ids=ids + 8)
    assert not torch.allclose(a, c)
    assert a.min() >= 0 and a.max() < 1
    assert abs(float(a.mean()) - 0.5) < 0.02
