"""Explainers: one file per family, registered by name, imported lazily.

    from explainbench import explainers
    ig = explainers.get("integrated_gradients", n_steps=32)
    attributions = ig.explain(model, task, inputs, targets, seed=0)   # (B, *feature_shape)

A user's explainer joins the registry with `@explainers.register("name")` on an `Explainer`
subclass (or through an entry point in the group `explainbench.explainers`); it is then planned,
cached, seeded, scored and ranked like the built-in ones.
"""

from __future__ import annotations

import inspect

from explainbench.core import plugins
from explainbench.core.errors import PluginError
from explainbench.core.registry import Registry
from explainbench.explainers.base import Explainer, params_hash

MODALITIES = frozenset({"image", "text"})


def _adopt(name: str, obj, plugin: str) -> None:
    """An entry point that names an Explainer subclass without decorating it."""
    _register_class(name, obj, plugin)


REGISTRY: Registry[type[Explainer]] = Registry("explainer", group="explainbench.explainers",
                                               adopt=_adopt)

# name -> "module:Class". Keep one line per explainer; the family file holds the method.
for _name, _target in {
    # gradients (Captum)
    "saliency": "explainbench.explainers.gradients:Saliency",
    "input_x_gradient": "explainbench.explainers.gradients:InputXGradient",
    "integrated_gradients": "explainbench.explainers.gradients:IntegratedGradients",
    "smoothgrad": "explainbench.explainers.gradients:SmoothGrad",
    "guided_backprop": "explainbench.explainers.gradients:GuidedBackprop",
    # reference-based gradients (Captum)
    "deeplift": "explainbench.explainers.reference_gradients:DeepLift",
    "deeplift_shap": "explainbench.explainers.reference_gradients:DeepLiftShap",
    "gradient_shap": "explainbench.explainers.reference_gradients:GradientShap",
    # perturbation (Captum)
    "occlusion": "explainbench.explainers.perturbation:Occlusion",
    "feature_ablation": "explainbench.explainers.perturbation:FeatureAblation",
    "kernel_shap": "explainbench.explainers.perturbation:KernelShap",
    # local surrogates batched across inputs (our own; the wrappers above and below are their
    # references)
    "lime_batched": "explainbench.explainers.lime_batched:LimeBatched",
    "kernel_shap_batched": "explainbench.explainers.kernel_shap_batched:KernelShapBatched",
    # class activation maps
    "grad_cam": "explainbench.explainers.cam:GradCam",
    "grad_cam_pp": "explainbench.explainers.cam:GradCamPlusPlus",
    # rules (Anchor's beam search, anchor-exp)
    "anchor": "explainbench.explainers.anchor:Anchor",
    # random masks
    "rise": "explainbench.explainers.rise:Rise",
    # the lime and shap packages
    "lime": "explainbench.explainers.lime_package:Lime",
    "shap_deep": "explainbench.explainers.shap_package:ShapDeep",
    "shap_gradient": "explainbench.explainers.shap_package:ShapGradient",
    "shap_kernel": "explainbench.explainers.shap_package:ShapKernel",
    "shap_partition": "explainbench.explainers.shap_package:ShapPartition",
    # attention (the transformer's; the BiLSTM's additive attention), rollout (transformer)
    "attention": "explainbench.explainers.attention:LastLayerAttention",
    "attention_rollout": "explainbench.explainers.attention:AttentionRollout",
    # Jain & Wallace 2019's importance measures for text
    "jw_gradient": "explainbench.explainers.jain_wallace:JainWallaceGradient",
    "leave_one_out": "explainbench.explainers.jain_wallace:LeaveOneOut",
    # controls
    "random": "explainbench.explainers.controls:RandomAttribution",
    "edge": "explainbench.explainers.controls:EdgeDetector",
    # explanation by example
    "nearest_examples": "explainbench.explainers.examples:NearestExamples",
}.items():
    REGISTRY.add(_name, _target)


def register(name: str):
    """Class decorator: add an `Explainer` subclass to the registry under `name` and set its
    `name`. The class declares what it is with the base class's class variables (modalities,
    stochastic, needs_gradients, defaults, reference) and implements
    `attribute(model, task, inputs, targets, *, seed) -> (B, *task.feature_shape)`."""

    def decorate(cls):
        _register_class(name, cls, plugins.label_for(cls))
        return cls

    return decorate


def _register_class(name: str, cls, plugin: str) -> None:
    if not (isinstance(cls, type) and issubclass(cls, Explainer)):
        raise PluginError(f"plugin {plugin}: {cls!r} is not a subclass of "
                          "explainbench.explainers.Explainer")
    if inspect.isabstract(cls):
        raise PluginError(f"plugin {plugin}: explainer class {cls.__name__} does not implement "
                          "attribute(model, task, inputs, targets, *, seed)")
    modalities = getattr(cls, "modalities", None)
    if not modalities or not set(modalities) <= MODALITIES:
        raise PluginError(f"plugin {plugin}: explainer {name!r} declares modalities "
                          f"{modalities!r}; valid: a non-empty subset of {sorted(MODALITIES)}")
    if cls.output != "attribution":
        raise PluginError(f"plugin {plugin}: explainer {name!r} has output {cls.output!r}; a "
                          "plugin returns attribution maps (output = 'attribution')")
    if not isinstance(cls.defaults, dict):
        raise PluginError(f"plugin {plugin}: explainer {name!r} `defaults` must be a dict of "
                          "parameter -> default value")
    REGISTRY.register(name, cls, plugin=plugin)
    cls.name = name


def names() -> list[str]:
    return REGISTRY.names()


def get_class(name: str) -> type[Explainer]:
    return REGISTRY.load(name)


def get(name: str, **params) -> Explainer:
    """An explainer instance; unknown names and parameters are one-line errors with the choices."""
    return get_class(name)(**params)


__all__ = ["Explainer", "REGISTRY", "get", "get_class", "names", "params_hash", "register"]
