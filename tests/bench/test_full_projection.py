"""benchmarks.explainers_speed.project_full: the projected cost of a full suite from a quick run,
checked on two small suites and synthetic quick timings whose prices can be worked out by hand."""

import pandas as pd
import pytest

from explainbench.bench import suite as suites
from explainbench.bench.runner import plan

EXPERIMENT = {"models": ["mnist_cnn"], "target": "predicted",
              "metrics": [{"name": "deletion", "params": {"steps": 4, "substrate": "zero"}}]}


def tiny_suite(name: str, size: int, explainers: list, background: dict) -> suites.Suite:
    return suites.parse({
        "name": name, "version": 1, "seeds": [0], "chunk_size": 4, "target": "predicted",
        "experiments": [
            {"name": "m", "slice": {"name": "mnist-test", "size": size}, "explainers": explainers,
             **{k: v for k, v in EXPERIMENT.items() if k != "target"}},
            {"name": "bg", "slice": {"name": "mnist-test", "size": size}, "floor": False,
             "explainers": [background["explainer"]],
             "metrics": EXPERIMENT["metrics"], "models": EXPERIMENT["models"],
             "studies": {"background": {"sizes": background["sizes"], "seeds": [0]}}},
        ]})


QUICK = tiny_suite("quick", 4, [{"name": "gradient_shap", "params": {"n_samples": 10}},
                                {"name": "shap_kernel", "params": {"n_samples": 100, "background_size": 5}}],
                   {"explainer": {"name": "gradient_shap", "params": {"n_samples": 10}}, "sizes": [5]})
FULL = tiny_suite("full", 8, [{"name": "shap_kernel", "params": {"n_samples": 400, "background_size": 5}}],
                  {"explainer": {"name": "shap_kernel", "params": {"n_samples": 100}}, "sizes": [10]})

PER_SAMPLE = 2.0  # every quick cell: seconds per sample
EXPLAINING = {"gradient_shap": 0.1, "shap_kernel": 1.0, "random": 0.0}  # of which explaining


@pytest.fixture
def quick_run(tmp_path, monkeypatch):
    """A quick run folder with the timings.csv and costs.csv the runner writes, for QUICK."""
    monkeypatch.setattr(suites, "load", {"quick": QUICK, "full": FULL}.__getitem__)
    timings, costs = [], []
    for cell in plan(QUICK):
        if cell.explainer is None:
            continue
        samples = cell.stop - cell.start
        timings.append({"cell_id": cell.id, "kind": cell.kind, "model": cell.model,
                        "explainer": cell.explainer.label, "samples": samples,
                        "seconds": PER_SAMPLE * samples})
        costs.append({"cell_id": cell.id, "model": cell.model, "explainer": cell.explainer.name,
                      "samples": samples, "seconds_per_explanation": EXPLAINING[cell.explainer.name]})
    pd.DataFrame(timings).to_csv(tmp_path / "timings.csv", index=False)
    pd.DataFrame(costs).to_csv(tmp_path / "costs.csv", index=False)
    return tmp_path


def evaluations(cell) -> int:
    """shap_kernel's forward passes per explanation in a cell: n_samples x background_size."""
    from explainbench import explainers

    params = {**explainers.REGISTRY.load("shap_kernel").defaults, **cell.explainer.params}
    return params["n_samples"] * params["background_size"]


def test_projection_prices_matched_and_unmatched_cells(quick_run):
    from benchmarks.explainers_speed import SCORING_SCALE, project_full

    total, n_cells, unmatched = project_full(quick_run)
    full_cells = plan(FULL)
    assert n_cells == len(full_cells)
    scores = [c for c in full_cells if c.kind == "scores"]
    background = [c for c in full_cells if c.kind == "background"]
    # scores: shap_kernel ran in quick's scores with 100 x 5 evaluations; a full cell's explaining
    # costs quick's times the ratio of its evaluations (400 x 5 in "m": 4x; 100 x the default
    # background in "bg"), the rest of a sample's time is scaled by SCORING_SCALE; the random
    # floor (in both suites) costs only its scoring
    explain, rest = EXPLAINING["shap_kernel"], PER_SAMPLE - EXPLAINING["shap_kernel"]
    assert {c.explainer.name for c in scores} == {"shap_kernel", "random"}
    expected = sum((c.stop - c.start) * (explain * evaluations(c) / 500 + rest * SCORING_SCALE
                                         if c.explainer.name == "shap_kernel" else PER_SAMPLE * SCORING_SCALE)
                   for c in scores)
    assert total["scores"] == pytest.approx(expected)
    # background: quick never ran shap_kernel there (it swept gradient_shap), so each cell is
    # priced from shap_kernel's own cost in quick's scores, scaled by budget (n_samples 100 x
    # the cell's background size against quick's 100 x 5), plus the non-explaining seconds per
    # sample of quick's background cells (2.0 - 0.1 for gradient_shap's)
    assert unmatched == len(background) > 0
    expected = sum((c.stop - c.start) * (explain * evaluations(c) / 500
                                         + PER_SAMPLE - EXPLAINING["gradient_shap"])
                   for c in background)
    assert total["background"] == pytest.approx(expected)
