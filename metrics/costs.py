"""How many model evaluations each metric spends per sample, for `bench plan`'s forecast.

`evaluations(name, params, modality, features, explainer_cost)` gives (forward, backward, shared)
per sample: `shared` names the removal curves the metric evaluates, which the metrics of one
explanation share (metrics/faithfulness.py `_shared_curve`): a curve two metrics ask for is paid
once. A metric without an entry here (a plugin's) is None: not forecast.
"""

from __future__ import annotations

from typing import Callable

from explainbench.metrics.removal import PAPER_SUBSTRATES

Cost = tuple[float, float, dict]  # forward, backward, {shared curve key: its forward rows}


def _substrate(params: dict, paper: str, modality: str) -> str:
    return params.get("substrate") or PAPER_SUBSTRATES[paper][modality]


def _curve(name: str, paper: str, descending: bool):
    def cost(params, modality, features, explainer) -> Cost:
        steps = int(params["steps"])
        key = ("removal_curve", steps, _substrate(params, paper, modality), descending)
        return 0.0, 0.0, {key: steps + 1.0}
    return cost


def _srg(params, modality, features, explainer) -> Cost:
    steps, substrate = int(params["steps"]), _substrate(params, "pixel_flipping", modality)
    return 0.0, 0.0, {("removal_curve", steps, substrate, d): steps + 1.0 for d in (True, False)}


def _max_sensitivity(params, modality, features, explainer) -> Cost:
    if explainer is None:
        return float("nan"), float("nan"), {}
    n = int(params["n_perturb_samples"])
    return n * explainer[0], n * explainer[1], {}


def _road(params, modality, features, explainer) -> Cost:
    percentages = params.get("percentages")
    return 2.0 * (50 if percentages is None else len(percentages)), 0.0, {}


COSTS: dict[str, Callable[..., Cost]] = {
    "deletion": _curve("deletion", "deletion", True),
    "mif": _curve("mif", "pixel_flipping", True),
    "lif": _curve("lif", "pixel_flipping", False),
    "srg": _srg,
    "insertion": lambda p, m, f, e: (int(p["steps"]) + 1.0, 0.0, {}),
    "aopc": lambda p, m, f, e: (min(int(p["steps"]), (-(-28 // int(p["region"]))) ** 2) + 1.0,
                                0.0, {}),
    "comprehensiveness": lambda p, m, f, e: (len(p["bins"]) + 1.0, 0.0, {}),
    "sufficiency": lambda p, m, f, e: (len(p["bins"]) + 1.0, 0.0, {}),
    "faithfulness_correlation": lambda p, m, f, e: (int(p["nr_runs"]) + 1.0, 0.0, {}),
    "road": _road,
    "infidelity": lambda p, m, f, e: (int(p["n_perturb_samples"]) + 1.0, 0.0, {}),
    "max_sensitivity": _max_sensitivity,
    "sparseness": lambda p, m, f, e: (0.0, 0.0, {}),
    "complexity": lambda p, m, f, e: (0.0, 0.0, {}),
    "linear_ground_truth": lambda p, m, f, e: (0.0, 0.0, {}),
    "rule_precision": lambda p, m, f, e: (float(p["n_samples"]), 0.0, {}),
    "rule_coverage": lambda p, m, f, e: (0.0, 0.0, {}),  # counts features, evaluates no model
}


def evaluations(name: str, params: dict, modality: str, features: float,
                explainer_cost: tuple[float, float] | None = None) -> Cost | None:
    """(forward, backward, shared curves) per sample of metric `name`; None if not known."""
    cost = COSTS.get(name)
    return None if cost is None else cost(params, modality, features, explainer_cost)
