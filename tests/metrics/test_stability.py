"""Stability across seeds on explanations that do move, with every value computed by hand.

Three "seeds" of one sample with four features:
    a1 = [ 4, 3, 2, 1]    a2 = [ 3, 4, 1, 2]    a3 = [-1, 2, 3, 4]
Spearman (no ties, rho = 1 - 6 sum d^2 / (n (n^2 - 1)), n (n^2 - 1) = 60):
    (a1, a2): d = [1, -1, 1, -1], 1 - 24/60 = 0.6;  (a1, a3): 1 - 120/60 = -1;
    (a2, a3): 1 - 96/60 = -0.6;  mean -1/3.
Top half by magnitude: {0, 1}, {0, 1}, {2, 3}: intersections 1, 0, 0, mean 1/3; the top quarter
(one feature): 0, 1, 3: all 0.
Signs: only a3's first feature differs: agreements 1, 3/4, 3/4, mean 5/6.
Coefficient of variation per feature, std with n - 1 over |mean|:
    f0 [4, 3, -1]: mean 2, std sqrt(7)        -> sqrt(7)/2
    f1 [3, 4, 2] : mean 3, std 1              -> 1/3
    f2 [2, 1, 3] : mean 2, std 1              -> 1/2
    f3 [1, 2, 4] : mean 7/3, std sqrt(7/3)    -> sqrt(7/3) / (7/3)
"""

from __future__ import annotations

import math

import pytest
import torch

from explainbench.metrics.stability import seed_stability

A = torch.tensor([[[4.0, 3, 2, 1]], [[3.0, 4, 1, 2]], [[-1.0, 2, 3, 4]]])  # (K=3, B=1, F=4)
CV = (math.sqrt(7) / 2 + 1 / 3 + 1 / 2 + math.sqrt(7 / 3) / (7 / 3)) / 4


def test_stability_measures_by_hand():
    half = seed_stability(A, k_fraction=0.5)
    assert half["stability_spearman"].item() == pytest.approx(-1 / 3)
    assert half["stability_topk"].item() == pytest.approx(1 / 3)
    assert half["stability_sign"].item() == pytest.approx(5 / 6)
    assert half["stability_cv"].item() == pytest.approx(CV)
    assert seed_stability(A, k_fraction=0.25)["stability_topk"].item() == 0.0


def test_samples_are_scored_separately_and_padding_is_left_out():
    """A second sample that does not move scores 1, 1, 1, 0; a feature outside `valid` (text
    padding) with wild values changes nothing."""
    steady = torch.tensor([1.0, -2, 3, 0.5]).expand(3, 1, 4)
    padded = torch.cat([A, torch.tensor([[[100.0]], [[-100.0]], [[7.0]]])], dim=2)  # 5th feature
    stack = torch.cat([padded, torch.cat([steady, torch.zeros(3, 1, 1)], dim=2)], dim=1)
    valid = torch.tensor([[True, True, True, True, False]] * 2)
    scores = seed_stability(stack, valid, k_fraction=0.5)
    assert scores["stability_spearman"].tolist() == pytest.approx([-1 / 3, 1.0])
    assert scores["stability_topk"].tolist() == pytest.approx([1 / 3, 1.0])
    assert scores["stability_sign"].tolist() == pytest.approx([5 / 6, 1.0])
    assert scores["stability_cv"].tolist() == pytest.approx([CV, 0.0])
