"""Every metric runs at the lower bound of each integer parameter and at every choice its
modality allows, on a tiny model; a value just outside is refused in one line."""

from __future__ import annotations

import pytest
import torch

from explainbench import explainers, metrics
from explainbench.core.params import ParameterError

IMAGE_SUBSTRATES, TEXT_SUBSTRATES = ("zero", "mean", "blur", "noise"), ("mask", "pad")


def settings():
    out = []
    for name in metrics.names():
        for pname, p in metrics.spec(name).parameters.items():
            if p.kind == "int" and p.low is not None:
                out.append((name, pname, int(p.low)))
            if p.kind == "str":
                out += [(name, pname, c) for c in p.choices if c != p.default]
    return out


@pytest.mark.parametrize("name,pname,value", settings())
def test_metrics_run_across_their_declared_ranges(name, pname, value, tiny_cnn, logreg, images,
                                                  image_task, tiny_transformer, text_inputs,
                                                  text_task):
    metric = metrics.get(name, **{pname: value})
    ran = 0
    for model, task, x in ((tiny_cnn, image_task, images[:3]),
                           (tiny_transformer, text_task, text_inputs[:3])):
        if metric.supports(task) or (pname == "substrate" and value not in task.substrates):
            continue
        if name == "linear_ground_truth":
            model = logreg
        targets = torch.zeros(len(x), dtype=torch.long)
        attributions = torch.rand((len(x), *task.feature_shape),
                                  generator=torch.Generator().manual_seed(0))
        explainer = explainers.get("saliency") if metric.needs_explainer else None
        result = metric(model, task, x, attributions, targets, seed=0, explainer=explainer)
        assert result.scores.shape == (len(x),)
        ran += 1
    if not ran and pname == "substrate":
        pytest.skip(f"{name} is defined for no task whose substrate {value!r} is")
    assert ran, f"{name} with {pname}={value!r} ran on no task"


@pytest.mark.parametrize("name", metrics.names())
def test_a_value_just_outside_a_range_is_refused(name):
    for pname, p in metrics.spec(name).parameters.items():
        if p.kind == "int" and p.low is not None:
            with pytest.raises(ParameterError, match=f"parameter {pname} = {int(p.low) - 1} "):
                metrics.get(name, **{pname: int(p.low) - 1})
