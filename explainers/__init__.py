"""Explainers: one file per family, registered by name, imported lazily.

    import explainers
    ig = explainers.get("integrated_gradients", n_steps=32)
    attributions = ig.explain(model, task, inputs, targets, seed=0)   # (B, *feature_shape)
"""

from __future__ import annotations

from bench.registry import Registry
from explainers.base import Explainer, params_hash

REGISTRY: Registry[type[Explainer]] = Registry("explainer")

# name -> "module:Class". Keep one line per explainer; the family file holds the method.
for _name, _target in {
    # gradients (Captum)
    "saliency": "explainers.gradients:Saliency",
    "input_x_gradient": "explainers.gradients:InputXGradient",
    "integrated_gradients": "explainers.gradients:IntegratedGradients",
    "smoothgrad": "explainers.gradients:SmoothGrad",
    "guided_backprop": "explainers.gradients:GuidedBackprop",
    # reference-based gradients (Captum)
    "deeplift": "explainers.reference_gradients:DeepLift",
    "deeplift_shap": "explainers.reference_gradients:DeepLiftShap",
    "gradient_shap": "explainers.reference_gradients:GradientShap",
    # perturbation (Captum)
    "occlusion": "explainers.perturbation:Occlusion",
    "feature_ablation": "explainers.perturbation:FeatureAblation",
    "kernel_shap": "explainers.perturbation:KernelShap",
    # local surrogates batched across inputs (our own; the wrappers above and below are their
    # references)
    "lime_batched": "explainers.lime_batched:LimeBatched",
    "kernel_shap_batched": "explainers.kernel_shap_batched:KernelShapBatched",
    # class activation maps
    "grad_cam": "explainers.cam:GradCam",
    "grad_cam_pp": "explainers.cam:GradCamPlusPlus",
    # random masks
    "rise": "explainers.rise:Rise",
    # the lime and shap packages
    "lime": "explainers.lime_package:Lime",
    "shap_deep": "explainers.shap_package:ShapDeep",
    "shap_gradient": "explainers.shap_package:ShapGradient",
    "shap_kernel": "explainers.shap_package:ShapKernel",
    "shap_partition": "explainers.shap_package:ShapPartition",
    # attention (transformer only)
    "attention": "explainers.attention:LastLayerAttention",
    "attention_rollout": "explainers.attention:AttentionRollout",
    # controls
    "random": "explainers.controls:RandomAttribution",
    "edge": "explainers.controls:EdgeDetector",
    # explanation by example
    "nearest_examples": "explainers.examples:NearestExamples",
}.items():
    REGISTRY.add(_name, _target)


def names() -> list[str]:
    return REGISTRY.names()


def get_class(name: str) -> type[Explainer]:
    return REGISTRY.load(name)


def get(name: str, **params) -> Explainer:
    """An explainer instance; unknown names and parameters are one-line errors with the choices."""
    return get_class(name)(**params)


__all__ = ["Explainer", "REGISTRY", "get", "get_class", "names", "params_hash"]
