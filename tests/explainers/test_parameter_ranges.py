"""A declared range is a promise: every explainer runs at the lower bound of each of its integer
parameters and at every value of each of its choices (where its modality allows it), and refuses
a value just outside."""

from __future__ import annotations

import pytest

from explainbench import explainers
from explainbench.core.params import ParameterError
from tests.explainers.conftest import FAST

# values a choice can take that only make sense for one modality (the explainer says so itself)
MODALITY_ONLY = {("baseline", "mask"): "text", ("baseline", "zero"): None,
                 ("background", "kmeans"): "image", ("background", "blur"): "image"}


def settings():
    """(explainer, parameter, value) at every integer lower bound and every choice."""
    out = []
    for name in explainers.names():
        for pname, p in explainers.get_class(name).parameters.items():
            if p.kind == "int" and p.low is not None:
                out.append((name, pname, int(p.low)))
            if p.kind == "str":
                out += [(name, pname, c) for c in p.choices if c != p.default]
    return out


def _params(name: str, pname: str, value) -> dict:
    params = {**FAST.get(name, {}), pname: value}
    if pname == "background" and value in ("zeros", "blur"):
        params["background_size"] = 1  # a single reference
    if name == "integrated_gradients" and pname in ("background", "background_size"):
        params["baseline"] = "background"
    return params


@pytest.mark.parametrize("name,pname,value", settings())
def test_explainers_run_across_their_declared_ranges(name, pname, value, cases):
    explainer = explainers.get(name, **_params(name, pname, value))
    ran, refused = 0, []
    for case in ("cnn", "transformer", "lstm"):
        model, task, x = cases[case]
        needs = MODALITY_ONLY.get((pname, value), task.modality)
        if (needs and needs != task.modality) or task.modality not in explainer.modalities:
            continue
        reason = explainer.supports(model, task)
        if reason:
            refused.append(reason)
            continue
        result = explainer.explain(model, task, x[:2], seed=0)
        if explainer.output == "examples":
            assert result.ids.shape == (2, value if pname == "k" else explainer.params["k"])
        else:
            assert result.shape == (2, *task.feature_shape) and result.isfinite().all()
        ran += 1
    if not ran and refused:
        pytest.skip(f"no tiny model it explains with {pname}={value!r}: {refused[0]}")
    assert ran, f"{name} with {pname}={value!r} ran on no model"


@pytest.mark.parametrize("name", explainers.names())
def test_a_value_just_outside_a_range_is_refused(name):
    for pname, p in explainers.get_class(name).parameters.items():
        if p.kind == "int" and p.low is not None:
            with pytest.raises(ParameterError, match=f"parameter {pname} = {int(p.low) - 1} "):
                explainers.get(name, **{pname: int(p.low) - 1})
