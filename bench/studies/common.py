"""Option checking and explainer selection shared by the studies."""

from __future__ import annotations

from explainbench.core.errors import BenchError
from explainbench.core.params import Param, Seq, check_all
from explainbench.bench.cells.spec import Component


EXPLAINER_NAMES = Seq(None, Param(None, "str"), nullable=True,
                      doc="explainer names; null: the experiment's that fit the study")


def check_options(options: dict, parameters: dict, where: str) -> dict:
    """The study's settings: its declared defaults overridden by the suite's, each checked."""
    return check_all(parameters, options, where, kind="setting")


def resolve_explainers(names, exp, *, attribution_only: bool = True, where: str = "",
                       predicate=None) -> list[Component]:
    """The study's explainers: the named ones (taken with their parameters from the experiment
    when it lists them, else with defaults), or every explainer of the experiment that
    `predicate` accepts."""
    from explainbench import explainers

    by_name = {c.name: c for c in exp.explainers}
    if names is None:
        chosen = list(exp.explainers)
    else:
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise BenchError(f"{where}: 'explainers' must be a list of explainer names")
        chosen = []
        for name in names:
            try:
                explainers.REGISTRY.check(name)
            except BenchError as exc:
                raise BenchError(f"{where}: {exc}") from None
            chosen.append(by_name.get(name, Component(name)))
    out = []
    for comp in chosen:
        cls = explainers.get_class(comp.name)
        if attribution_only and cls.output != "attribution":
            continue
        if predicate is not None and not predicate(cls):
            continue
        out.append(comp)
    return out
