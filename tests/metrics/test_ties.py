"""Where features tie, no position decides: a map of one constant value scores like the random
control on every metric that orders features, the tie order depends on the seed and the sample
(never its place in a batch), and the top-k similarities take the expectation over tie orders."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from explainbench import metrics
from explainbench.metrics.ordering import tied_share
from explainbench.metrics.removal import feature_ranks
from explainbench.metrics.similarity import top_k_intersection

N = 96


class TopRows(nn.Module):
    """A model that looks only at the top four pixel rows: there a raster scan of a constant map
    would find everything that matters first, and score far better than a random order."""

    output_layer = "linear"

    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(784, 2)
        weight = torch.zeros(2, 784)
        weight[1, :112] = 12.0 / 112
        self.linear.weight.data.copy_(weight)
        self.linear.bias.data.copy_(torch.tensor([0.0, -6.0]))

    def forward(self, x):
        return self.linear(x.flatten(1))


@pytest.fixture(scope="module")
def setup():
    from explainbench.core.tasks import ImageTask

    g = torch.Generator().manual_seed(0)
    x = 0.2 * torch.rand(N, 1, 28, 28, generator=g)
    x[:, :, :4] = 0.6 + 2 * x[:, :, :4]  # the rows that matter are bright, the rest dark
    targets = torch.ones(N, dtype=torch.long)
    constant = torch.full((N, 28, 28), 0.25)
    noise = torch.rand((N, 28, 28), generator=g)  # the random control's kind of map
    raster = -torch.arange(784.0).view(1, 28, 28).expand(N, -1, -1)  # a raster scan, top first
    return TopRows().eval(), ImageTask(), x, targets, constant, noise, raster


ORDERING = [("deletion", {"steps": 14, "substrate": "zero"}),
            ("insertion", {"steps": 14, "substrate": "zero"}),
            ("mif", {"steps": 14, "substrate": "zero"}), ("lif", {"steps": 14, "substrate": "zero"}),
            ("srg", {"steps": 14, "substrate": "zero"}),
            ("aopc", {"steps": 100, "substrate": "zero"}),
            ("comprehensiveness", {"substrate": "zero"}), ("sufficiency", {"substrate": "zero"}),
            ("road", {"percentages": [5, 20, 50, 80]})]


@pytest.mark.parametrize("name,params", ORDERING, ids=[n for n, _ in ORDERING])
def test_a_constant_map_scores_like_the_random_control(setup, name, params):
    model, task, x, targets, constant, noise, raster = setup
    metric = metrics.get(name, **params)

    def mean(maps):
        out = metric(model, task, x, maps, targets, seed=3).outputs(metric.spec)
        return np.array([v.double().mean().item() for _, _, v, _ in out])

    by_constant, by_noise, by_raster = mean(constant), mean(noise), mean(raster)
    # the raster scan is far from random here (it finds the top rows first) ...
    assert np.max(np.abs(by_raster - by_noise)) > 0.05, (by_raster, by_noise)
    # ... and a constant map, every pixel tied, is not a raster scan: it is a random order
    assert np.max(np.abs(by_constant - by_noise)) < 0.25 * np.max(np.abs(by_raster - by_noise)), \
        (by_constant, by_noise, by_raster)


def test_the_tie_order_depends_on_the_seed_and_the_sample_not_its_place(image_task):
    g = torch.Generator().manual_seed(1)
    x = torch.rand(6, 1, 28, 28, generator=g)
    maps = torch.zeros(6, 28, 28)
    maps[:, 10:12, 10:12] = 1.0  # four untied pixels, the rest tied at zero
    ranks, _ = feature_ranks(image_task, x, maps, seed=0)
    reversed_, _ = feature_ranks(image_task, x.flip(0), maps.flip(0), seed=0)
    alone, _ = feature_ranks(image_task, x[2:3], maps[2:3], seed=0)
    assert torch.equal(reversed_.flip(0), ranks) and torch.equal(alone[0], ranks[2])
    assert set(ranks[0].view(28, 28)[10:12, 10:12].flatten().tolist()) == {0, 1, 2, 3}
    other_seed, _ = feature_ranks(image_task, x, maps, seed=1)
    assert not torch.equal(other_seed, ranks)
    assert not torch.equal(ranks[0], ranks[1])  # each sample its own order
    # the tied pixels come in no particular order: uncorrelated with their position
    tied = ranks[0].view(-1)[maps[0].view(-1) == 0].double()
    position = torch.arange(784.0)[maps[0].view(-1) == 0]
    assert abs(np.corrcoef(tied.numpy(), position.numpy())[0, 1]) < 0.15


def test_top_k_intersection_is_the_expectation_over_tie_orders():
    """k = 5 of 10; each map has two large values and eight tied zeros, on different features.
    A tied zero makes the top 5 with probability 3/8, independently in the two maps:
    E|A & B| = 2 (1 * 3/8) + 2 (3/8 * 1) + 6 (3/8)^2 = 2.34375, over k = 5: 0.46875.
    (Ties broken by index made it 1: both maps took features 0-4.)"""
    a = torch.tensor([[1.0, 1.0, 0, 0, 0, 0, 0, 0, 0, 0]])
    b = torch.tensor([[0, 0, 1.0, 1.0, 0, 0, 0, 0, 0, 0]])
    assert top_k_intersection(a, b, k_fraction=0.5).item() == pytest.approx(0.46875)
    assert top_k_intersection(a, a, k_fraction=0.5).item() == 1.0  # identical maps agree


def test_tied_share_is_the_largest_group_of_equal_values():
    maps = torch.tensor([[0.0, 0.0, 0.0, 1.0, 2.0, 2.0], [1.0, 2.0, 3.0, 4.0, 5.0, 6.0],
                         [7.0, 7.0, 7.0, 7.0, 7.0, 7.0]])
    assert tied_share(maps).tolist() == pytest.approx([3 / 6, 1 / 6, 1.0])
    valid = torch.tensor([[True] * 6, [True, True, True, True, False, False]])
    assert tied_share(torch.tensor([[1.0, 1, 2, 3, 4, 5], [1.0, 2, 3, 4, 4, 4]]),
                      valid).tolist() == pytest.approx([2 / 6, 1 / 4])
