"""Metrics: pure batched tensor functions, grouped by category, each with its direction declared.

    from explainbench import metrics
    deletion = metrics.get("deletion", steps=20, substrate="zero")
    result = deletion(model, task, inputs, attributions, targets)   # result.scores: (B,)

`substrate: None` means the substrate of the metric's paper for the task's modality
(`metrics.removal.PAPER_SUBSTRATES`); the suites name it explicitly.
"""

from __future__ import annotations

import inspect

from explainbench.core import plugins
from explainbench.core.errors import PluginError
from explainbench.core.params import Bool, Choice, Float, Int, Seq, declared
from explainbench.core.registry import Registry
from explainbench.metrics.base import CATEGORIES, Metric, MetricResult, MetricSpec

REGISTRY: Registry = Registry("metric", group="explainbench.metrics")

IMAGE_ONLY = frozenset({"image"})


SUBSTRATE = Choice(None, ("zero", "mean", "blur", "noise", "mask", "pad"), nullable=True,
                   doc="what removed features become; null: the paper's, per modality")
STEPS = Int(20, 1, 1000, doc="equal removal increments from 0 to all features")
PERCENT_BINS = Seq((1, 5, 10, 20, 50), Float(1, 0, 100, low_open=True))
N_PERTURB = Int(10, 1, 10_000)


def _register(name: str, target: str, *, category: str, higher_is_better: bool, summary: str,
              modalities: frozenset[str] = frozenset({"image", "text"}), family: str = "",
              outputs: dict[str, bool] | None = None, **parameters) -> None:
    REGISTRY.add(name, target, spec=MetricSpec(name, category, higher_is_better,
                                               declared(parameters), summary, modalities,
                                               family or name, outputs,
                                               VERSIONS.get(name, 1)))


# Definition versions and why each was bumped (a version says which definition produced a
# stored score; `bench compare` refuses to pair different ones).
VERSIONS = {
    # 2: features that tie are removed in a random order from the metric's seed and the sample
    # (metrics/ordering.py), not in raster order
    **dict.fromkeys(("deletion", "insertion", "mif", "lif", "srg", "aopc", "comprehensiveness",
                     "sufficiency", "road", "rule_precision", "rule_coverage"), 2),
}


# Each summary says what the number is, its direction, and the paper it can be compared with.
FAITHFULNESS = "explainbench.metrics.faithfulness"
# ---- removal curves (metrics/faithfulness.py over metrics/removal.py)
_register("deletion", f"{FAITHFULNESS}:deletion", category="faithfulness", higher_is_better=False,
          steps=STEPS, substrate=SUBSTRATE,
          summary="Petsiuk et al. 2018 (RISE): area under the target probability as the top "
                  "features are removed, 0..100%; lower is better; default substrate zero | mask")
_register("insertion", f"{FAITHFULNESS}:insertion", category="faithfulness",
          higher_is_better=True, steps=STEPS, substrate=SUBSTRATE,
          summary="Petsiuk et al. 2018 (RISE): area under the target probability as the top "
                  "features are inserted into the substrate; higher is better; default blur | mask")
_register("mif", f"{FAITHFULNESS}:mif", category="faithfulness", higher_is_better=False,
          family="pixel_flipping", steps=STEPS, substrate=SUBSTRATE,
          summary="Bluecher et al. 2022: most influential first, area under the target "
                  "probability to full removal (pixel flipping's MoRF); lower is better; "
                  "default noise | mask")
_register("lif", f"{FAITHFULNESS}:lif", category="faithfulness", higher_is_better=True,
          family="pixel_flipping", steps=STEPS, substrate=SUBSTRATE,
          summary="Bluecher et al. 2022: least influential first, area to full removal; higher "
                  "is better; default noise | mask")
_register("srg", f"{FAITHFULNESS}:srg", category="faithfulness", higher_is_better=True,
          family="pixel_flipping", steps=STEPS, substrate=SUBSTRATE,
          summary="Bluecher et al. 2022: symmetric relevance gain, LIF area - MIF area; higher "
                  "is better; default noise | mask")
_register("aopc", f"{FAITHFULNESS}:aopc", category="faithfulness", higher_is_better=True,
          modalities=IMAGE_ONLY, region=Int(1, 1, 28, doc="side of a square region, pixels"),
          steps=Int(100, 1, 784, doc="regions perturbed, most relevant first"),
          substrate=SUBSTRATE,
          summary="Samek et al. 2017: mean probability drop as the L most relevant regions are "
                  "perturbed (L=100 1x1 regions: the paper's 9x9 on 224x224 scaled); higher is "
                  "better; default noise; images only")
_register("comprehensiveness", f"{FAITHFULNESS}:comprehensiveness", category="faithfulness",
          higher_is_better=True, family="eraser", bins=PERCENT_BINS, substrate=SUBSTRATE,
          summary="DeYoung et al. 2020 (ERASER): probability drop without the top k% features, "
                  "mean over k in bins; higher is better; default substrate zero | pad")
_register("sufficiency", f"{FAITHFULNESS}:sufficiency", category="faithfulness",
          higher_is_better=False, family="eraser", bins=PERCENT_BINS, substrate=SUBSTRATE,
          summary="DeYoung et al. 2020 (ERASER): probability drop keeping only the top k% "
                  "features, mean over k; lower is better; default substrate zero | pad")
_register("faithfulness_correlation", f"{FAITHFULNESS}:faithfulness_correlation",
          category="faithfulness", higher_is_better=True, nr_runs=Int(100, 2, 100_000),
          subset_fraction=Float(0.25, 0, 1, low_open=True), substrate=SUBSTRATE,
          summary="Bhatt et al. 2020 (as Quantus): Pearson r of attribution sums and probability "
                  "drops of random subsets; higher is better; undefined (excluded) where the "
                  "drops do not vary; default substrate zero | mask")
ROAD_OUTPUTS = {"road_morf_accuracy": False, "road_lerf_accuracy": True,  # -> higher is better
                "road_morf": False, "road_lerf": True, "road_gap": True}
_register("road", "explainbench.metrics.road:road", category="faithfulness",
          higher_is_better=True, modalities=IMAGE_ONLY, outputs=ROAD_OUTPUTS,
          percentages=Seq(None, Float(1, 0, 100, low_open=True, high_open=True), nullable=True),
          noise=Float(0.01, 0),
          summary="Rong et al. 2022 (as Quantus): accuracy (road_*_accuracy) and target "
                  "probability after MoRF / LeRF removal with noisy linear imputation, mean over "
                  "1, 3, ..., 99%; MoRF lower, LeRF higher is better; road_gap = LeRF - MoRF "
                  "probability (ours); images only")
# ---- random perturbations (Yeh et al. 2019)
_register("infidelity", "explainbench.metrics.infidelity:infidelity", category="faithfulness",
          higher_is_better=False, n_perturb_samples=N_PERTURB,
          noise_std=Float(0.003, 0, low_open=True),
          mask_prob=Float(0.1, 0, 1, low_open=True, high_open=True), normalize=Bool(True),
          output=Choice("logit", ("logit", "probability")),
          summary="Yeh et al. 2019: mean squared error between attribution . perturbation and "
                  "the output drop, the attributions optimally rescaled first (the paper's; "
                  "normalize=false: the raw, scale-dependent one, as captum by default); lower "
                  "is better")
# ---- robustness
_register("max_sensitivity", "explainbench.metrics.robustness:max_sensitivity",
          category="robustness", higher_is_better=False, modalities=IMAGE_ONLY,
          n_perturb_samples=N_PERTURB, perturb_radius=Float(0.02, 0, low_open=True),
          norm_ord=Choice("fro", ("fro",)),
          summary="Yeh et al. 2019 (as captum.metrics.sensitivity_max): largest relative change "
                  "of the explanation in a small input ball; lower is better; re-explains; "
                  "images only")

# ---- complexity (metrics/complexity.py)
_register("sparseness", "explainbench.metrics.complexity:sparseness", category="complexity",
          higher_is_better=True,
          summary="Chalasani et al. 2020 (as Quantus): Gini index of |attribution|; higher is "
                  "sparser")
_register("complexity", "explainbench.metrics.complexity:complexity", category="complexity",
          higher_is_better=False,
          summary="Bhatt et al. 2020 (as Quantus): entropy of |attribution| / sum |attribution|; "
                  "lower is simpler")

# ---- rules: any explanation read as "these features hold the prediction" (metrics/rules.py)
RULE_K = Int(10, 1, 100_000, doc="features of the rule: the top-k marked (nonzero) ones")
RULE_SAMPLES = Int(1000, 1, 100_000, doc="perturbations per sample")
_register("rule_precision", "explainbench.metrics.rules:rule_precision", category="rules",
          higher_is_better=True, k=RULE_K, n_samples=RULE_SAMPLES,
          segmentation=Choice("slic", ("slic", "grid"), doc="superpixels of an image"),
          summary="share of perturbations keeping the prediction while the explanation's top-k "
                  "features stay (Anchor's precision, Ribeiro 2018; others off w.p. 1/2)")
_register("rule_coverage", "explainbench.metrics.rules:rule_coverage", category="rules",
          higher_is_better=True, k=RULE_K, n_samples=RULE_SAMPLES,
          segmentation=Choice("slic", ("slic", "grid"), doc="superpixels of an image"),
          summary="share of perturbations in which the explanation's top-k features are all "
                  "present (Anchor's coverage, Ribeiro 2018; expectation 2^-size)")

# ---- ground truth on the linear model (metrics/ground_truth.py)
_register("linear_ground_truth", "explainbench.metrics.ground_truth:linear_ground_truth",
          category="ground_truth", higher_is_better=True, modalities=IMAGE_ONLY,
          similarity_measure=Choice("spearman", ("spearman", "cosine")),
          summary="similarity (Spearman or cosine) to the exact attributions W[c] * x of "
                  "mnist_logreg; higher is better; linear models only")


def register(name: str, *, category: str, higher_is_better: bool, summary: str = "",
             modalities=("image", "text"), version: int = 1, **defaults):
    """Function decorator: add a metric to the registry. The function takes
    `(model, task, inputs, attributions, targets, *, <its parameters>)` and returns a
    `MetricResult` (or a (B,) tensor of per-sample scores); it may also accept `generator` (a
    torch.Generator seeded from the cell's seed), `batch_size`, and `explainer` with `seed` (to
    re-explain). `defaults` are its parameters and their defaults, as a suite overrides them;
    `version` is its definition's version (bump it when its numbers would change)."""

    def decorate(fn):
        plugin = plugins.label_for(fn)
        if not callable(fn):
            raise PluginError(f"plugin {plugin}: metric {name!r} is not a function")
        if category not in CATEGORIES:
            raise PluginError(f"plugin {plugin}: metric {name!r} has category {category!r}; valid "
                              f"categories: {', '.join(CATEGORIES)}")
        accepted = inspect.signature(fn).parameters
        missing = [k for k in defaults if k not in accepted]
        if missing:
            raise PluginError(f"plugin {plugin}: metric {name!r} declares parameters "
                              f"{', '.join(missing)} that its function does not take")
        kinds = frozenset(modalities)
        REGISTRY.register(name, fn, plugin=plugin,
                          spec=MetricSpec(name, category, bool(higher_is_better),
                                          declared(defaults), summary, kinds, version=int(version)))
        return fn

    return decorate


def version_of(output: str) -> int:
    """The definition version behind a score row's metric name: a registered metric's, the metric
    whose outputs include it (road_gap: road), else 1 (a study's own measure)."""
    if output in REGISTRY.names():
        return spec(output).version
    for name in REGISTRY.names():
        outputs = spec(name).outputs
        if outputs and output in outputs:
            return spec(name).version
    return 1


def names() -> list[str]:
    return REGISTRY.names()


def spec(name: str) -> MetricSpec:
    return REGISTRY.entry(name).meta["spec"]


def get(name: str, **params) -> Metric:
    """A metric with its parameters bound; unknown names and parameters are one-line errors."""
    entry = REGISTRY.entry(name)
    return Metric(entry.meta["spec"], entry.load(), params)


__all__ = ["Metric", "MetricResult", "MetricSpec", "REGISTRY", "get", "names", "register", "spec"]
