"""The metric speed benchmark's pairing of ours and its floor (benchmarks/metrics_speed.py), on
scripted timings: no clock is read."""

import torch

from benchmarks import metrics_speed


def scripted(monkeypatch, times):
    """Make metrics_speed.timed return `times` in turn, whatever it is asked to time."""
    queue = iter(times)
    monkeypatch.setattr(metrics_speed, "timed", lambda fn, device: (next(queue), None))


def test_paired_keeps_the_median_ratio_round_and_the_shortest_ours(monkeypatch):
    # rounds (ours, floor): ratios 2.0, 1.1, 1.5, 0.9, 1.2 -> median 1.2, round (6.0, 5.0)
    scripted(monkeypatch, [4.0, 2.0, 5.5, 5.0, 3.0, 2.0, 4.5, 5.0, 6.0, 5.0])
    (ours, floor), ratios, best_ours = metrics_speed.paired(None, None, torch.device("cpu"))
    assert (ours, floor) == (6.0, 5.0)
    assert ratios == [0.9, 1.1, 1.2, 1.5, 2.0]
    assert best_ours == 3.0


def test_paired_stops_when_a_round_runs_past_the_budget(monkeypatch):
    # the second round takes 30 + 15 s > 40 s: two rounds, ratios 1.5 and 2.0, median the first
    scripted(monkeypatch, [3.0, 2.0, 30.0, 15.0, 1.0, 1.0])
    (ours, floor), ratios, best_ours = metrics_speed.paired(None, None, torch.device("cpu"),
                                                            budget=40.0)
    assert (ours, floor) == (3.0, 2.0)
    assert ratios == [1.5, 2.0]
    assert best_ours == 3.0


def test_the_reference_ratio_uses_ours_shortest_round():
    row = metrics_speed.Row("road", "", 10, floor_s=4.0, ours_s=5.0, reference="Quantus",
                            reference_s=60.0, ours_best_s=4.8)
    assert row.over_floor == 1.25
    assert row.speedup == 12.5
