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
              modalities: frozenset[str] = frozenset({"image", "text"}), **parameters) -> None:
    REGISTRY.add(name, target, spec=MetricSpec(name, category, higher_is_better,
                                               declared(parameters), summary, modalities))


# ---- faithfulness: removal curves (metrics/faithfulness.py over metrics/removal.py)
_register("deletion", "explainbench.metrics.faithfulness:deletion", category="faithfulness",
          higher_is_better=False, steps=STEPS, substrate=SUBSTRATE,
          summary="area under the target probability as top features are removed (Petsiuk 2018; "
                  "default substrate zero | mask)")
_register("insertion", "explainbench.metrics.faithfulness:insertion", category="faithfulness",
          higher_is_better=True, steps=STEPS, substrate=SUBSTRATE,
          summary="area under the target probability as top features are inserted (Petsiuk 2018; "
                  "default substrate blur | mask)")
_register("morf", "explainbench.metrics.faithfulness:morf", category="faithfulness", higher_is_better=True,
          steps=STEPS, substrate=SUBSTRATE,
          summary="AOPC, most relevant removed first (Samek 2017; default substrate noise | mask)")
_register("lerf", "explainbench.metrics.faithfulness:lerf", category="faithfulness", higher_is_better=False,
          steps=STEPS, substrate=SUBSTRATE,
          summary="AOPC, least relevant removed first (Samek 2017; default substrate noise | mask)")
_register("srg", "explainbench.metrics.faithfulness:srg", category="faithfulness", higher_is_better=True,
          steps=STEPS, substrate=SUBSTRATE,
          summary="symmetric relevance gain: AOPC(MoRF) - AOPC(LeRF) (Bluecher 2022; default "
                  "substrate noise | mask)")
_register("comprehensiveness", "explainbench.metrics.faithfulness:comprehensiveness", category="faithfulness",
          higher_is_better=True, bins=PERCENT_BINS, substrate=SUBSTRATE,
          summary="probability drop without the top-k% features (ERASER, DeYoung 2020; "
                  "default substrate zero | pad)")
_register("sufficiency", "explainbench.metrics.faithfulness:sufficiency", category="faithfulness",
          higher_is_better=False, bins=PERCENT_BINS, substrate=SUBSTRATE,
          summary="probability drop keeping only the top-k% features (ERASER, DeYoung 2020; "
                  "default substrate zero | pad)")
_register("faithfulness_correlation", "explainbench.metrics.faithfulness:faithfulness_correlation",
          category="faithfulness", higher_is_better=True, nr_runs=Int(100, 2, 100_000),
          subset_fraction=Float(0.25, 0, 1, low_open=True), substrate=SUBSTRATE,
          summary="Pearson r of attribution sums and probability drops of random subsets "
                  "(Bhatt 2020; default substrate zero | mask)")
_register("road", "explainbench.metrics.road:road", category="faithfulness", higher_is_better=True,
          modalities=IMAGE_ONLY, percentages=Seq(None, Float(1, 0, 100, low_open=True, high_open=True), nullable=True),
          noise=Float(0.01, 0),
          summary="images only: LeRF minus MoRF probability with noisy linear imputation (ROAD, "
                  "Rong 2022; percentages None: 1, 3, ..., 99 as Quantus)")
# ---- faithfulness: random perturbations (Yeh et al. 2019)
_register("infidelity", "explainbench.metrics.infidelity:infidelity", category="faithfulness",
          higher_is_better=False, n_perturb_samples=N_PERTURB, noise_std=Float(0.003, 0, low_open=True),
          mask_prob=Float(0.1, 0, 1, low_open=True, high_open=True), normalize=Bool(False),
          output=Choice("logit", ("logit", "probability")),
          summary="mean squared error of attribution . perturbation vs output drop "
                  "(Yeh 2019, as captum.metrics.infidelity)")
# ---- robustness
_register("max_sensitivity", "explainbench.metrics.robustness:max_sensitivity", category="robustness",
          higher_is_better=False, modalities=IMAGE_ONLY, n_perturb_samples=N_PERTURB,
          perturb_radius=Float(0.02, 0, low_open=True), norm_ord=Choice("fro", ("fro",)),
          summary="images only: largest relative change of the explanation in a small input ball "
                  "(Yeh 2019, as captum.metrics.sensitivity_max; needs the explainer)")

# ---- complexity (metrics/complexity.py)
_register("sparseness", "explainbench.metrics.complexity:sparseness", category="complexity",
          higher_is_better=True, summary="Gini index of |attribution| (Chalasani 2020)")
_register("complexity", "explainbench.metrics.complexity:complexity", category="complexity",
          higher_is_better=False, summary="entropy of the |attribution| distribution (Bhatt 2020)")

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
          summary="similarity to the exact attributions W[c]*x of mnist_logreg")


def register(name: str, *, category: str, higher_is_better: bool, summary: str = "",
             modalities=("image", "text"), **defaults):
    """Function decorator: add a metric to the registry. The function takes
    `(model, task, inputs, attributions, targets, *, <its parameters>)` and returns a
    `MetricResult` (or a (B,) tensor of per-sample scores); it may also accept `generator` (a
    torch.Generator seeded from the cell's seed), `batch_size`, and `explainer` with `seed` (to
    re-explain). `defaults` are its parameters and their defaults, as a suite overrides them."""

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
                                          declared(defaults), summary, kinds))
        return fn

    return decorate


def names() -> list[str]:
    return REGISTRY.names()


def spec(name: str) -> MetricSpec:
    return REGISTRY.entry(name).meta["spec"]


def get(name: str, **params) -> Metric:
    """A metric with its parameters bound; unknown names and parameters are one-line errors."""
    entry = REGISTRY.entry(name)
    return Metric(entry.meta["spec"], entry.load(), params)


__all__ = ["Metric", "MetricResult", "MetricSpec", "REGISTRY", "get", "names", "register", "spec"]
