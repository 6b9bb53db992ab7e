"""Attributions checked against what is known independently of the explainers' code.

- The logistic regression z = W x + b has closed forms: input x gradient, integrated gradients
  and DeepLift with a black baseline give W[c] * x; with a background set X_b, DeepLiftShap and
  shap.DeepExplainer give W[c] * (x - mean(X_b)) exactly, and GradientShap and
  shap.GradientExplainer give it in expectation. Their sampling error is known too: the gradient
  of a linear model is the same everywhere, so pixel p's error is W[c, p] times the error of the
  mean of n references drawn with replacement, whose standard deviation is sigma_p / sqrt(n).
- Completeness (Sundararajan et al. 2017; Shrikumar et al. 2017): integrated gradients and
  DeepLift sum to f(x) - f(baseline); checked on the ci-profile models and real samples.
"""

from __future__ import annotations

import pytest
import torch

from explainbench import explainers
from explainbench.explainers.background import select_background
from explainbench.explainers.gradients import default_baseline

SAMPLING_SIGMAS = 5.0  # tolerance of the sampled explainers, in standard errors of the mean


def _closed_form_x(model, inputs, targets):
    """W[c] * x for each sample, shaped (B, 28, 28)."""
    w = model.weight.detach()[targets].view(-1, 28, 28)
    return w * inputs[:, 0]


def _closed_form_background(model, inputs, targets, background):
    w = model.weight.detach()[targets].view(-1, 28, 28)
    return w * (inputs[:, 0] - background[:, 0].double().mean(0).float())


def _max_relative_error(actual, expected):
    return float((actual - expected).abs().max() / expected.abs().max())


# ------------------------------------------------------------------ logistic regression, closed form


@pytest.mark.parametrize("name, params", [
    ("input_x_gradient", {}),
    ("integrated_gradients", {}),  # default 50 steps; exact for a linear model at any step count
    ("integrated_gradients", {"n_steps": 7, "method": "riemann_middle"}),
    ("deeplift", {}),
])
def test_black_baseline_methods_give_w_times_x(logreg, images, synthetic_image_task, name, params):
    targets = torch.arange(8) % 10
    out = explainers.get(name, **params).explain(logreg, synthetic_image_task, images, targets)
    expected = _closed_form_x(logreg, images, targets)
    assert _max_relative_error(out, expected) < 1e-5


def test_integration_rule_that_breaks_completeness_is_refused():
    """Captum's riemann_trapezoid weights sum to (n - 1) / n: 1/n of W[c] * x would be lost."""
    from captum.attr._utils.approximation_methods import approximation_parameters

    from explainbench.core.errors import BenchError

    step_sizes, _ = approximation_parameters("riemann_trapezoid")
    assert sum(step_sizes(7)) == pytest.approx(6 / 7)
    with pytest.raises(BenchError, match="riemann_middle"):
        explainers.get("integrated_gradients", method="riemann_trapezoid")


@pytest.mark.parametrize("name", ["deeplift_shap", "shap_deep"])
def test_exact_background_methods_give_w_times_x_minus_mean(logreg, images, synthetic_image_task,
                                                             name):
    targets = torch.arange(8) % 10
    out = explainers.get(name, background_size=16).explain(
        logreg, synthetic_image_task, images, targets, seed=3)
    background = select_background(synthetic_image_task, 16, "random", seed=3)
    expected = _closed_form_background(logreg, images, targets, background)
    assert _max_relative_error(out, expected) < 1e-5


@pytest.mark.parametrize("name", ["gradient_shap", "shap_gradient"])
def test_sampled_background_methods_converge_to_w_times_x_minus_mean(logreg, images,
                                                                     synthetic_image_task, name):
    n, size = 2000, 16
    targets = torch.arange(8) % 10
    out = explainers.get(name, n_samples=n, background_size=size).explain(
        logreg, synthetic_image_task, images, targets, seed=5)
    background = select_background(synthetic_image_task, size, "random", seed=5)
    expected = _closed_form_background(logreg, images, targets, background)
    w = logreg.weight.detach()[targets].view(-1, 28, 28).abs()
    sigma = background[:, 0].std(dim=0, unbiased=False)  # spread of the references per pixel
    bound = SAMPLING_SIGMAS * w * sigma / n**0.5 + 1e-6
    assert ((out - expected).abs() <= bound).all()
    # and the bound is tight enough to mean something: far below the attributions themselves
    assert float(bound.max()) < 0.1 * float(expected.abs().max())


def test_real_logistic_regression_closed_forms(ci_model):
    """The same closed forms on the trained ci-profile logistic regression and real digits."""
    from explainbench.core import slices, tasks

    model = ci_model("mnist_logreg")
    task = tasks.get("mnist")
    x = task.inputs(slices.load(slices.named("mnist-test", size=8)))
    targets = task.probabilities(model, x).argmax(1)
    expected = _closed_form_x(model, x, targets)
    for name in ("input_x_gradient", "integrated_gradients", "deeplift"):
        out = explainers.get(name).explain(model, task, x, targets)
        assert _max_relative_error(out, expected) < 1e-5, name
    out = explainers.get("deeplift_shap", background_size=50).explain(model, task, x, targets, seed=0)
    background = select_background(task, 50, "random", seed=0)
    assert _max_relative_error(out, _closed_form_background(model, x, targets, background)) < 1e-5


# ------------------------------------------------------------------ completeness on trained models


def _target_logit(model, task, inputs, targets):
    with torch.no_grad():
        return task.forward(model, inputs).gather(1, targets.view(-1, 1))[:, 0]


def _baseline_logit(model, task, inputs, targets):
    baseline = default_baseline(model, task, inputs, "default")
    with torch.no_grad():
        if task.modality == "image":
            logits = model(baseline)
        else:
            logits = model.forward_embeds(baseline, model.attention_mask(inputs))
    return logits.gather(1, targets.view(-1, 1))[:, 0]


@pytest.mark.parametrize("model_name, n, name", [
    ("mnist_cnn", 16, "integrated_gradients"),
    ("mnist_cnn", 16, "deeplift"),
    ("imdb_transformer", 4, "integrated_gradients"),
    ("imdb_lstm", 8, "integrated_gradients"),  # 3 of these 8 need more than 50 steps
])
def test_completeness_on_trained_models(ci_model, model_name, n, name):
    """Attributions sum to f(x) - f(baseline) within 1% of |f(x)| at the default settings."""
    from explainbench import models
    from explainbench.core import slices

    model = ci_model(model_name)
    task = models.task_of(model_name)
    dataset = "mnist-test" if task.modality == "image" else "imdb-test"
    x = task.inputs(slices.load(slices.named(dataset, size=n)))
    targets = task.probabilities(model, x).argmax(1)
    out = explainers.get(name).explain(model, task, x, targets)
    f_x = _target_logit(model, task, x, targets)
    gap = out.flatten(1).sum(1) - (f_x - _baseline_logit(model, task, x, targets))
    assert (gap.abs() <= 0.01 * f_x.abs()).all(), (gap, f_x)


@pytest.mark.parametrize("model_name", ["imdb_transformer", "imdb_lstm"])
def test_deeplift_is_refused_where_captum_cannot_keep_summation(ci_model, model_name):
    """Why `deeplift` refuses the text models: Captum's DeepLift, run anyway at the embeddings,
    misses f(x) - f(reference) by more than 10% of it on real reviews."""
    from captum.attr import DeepLift

    from explainbench import models
    from explainbench.core import slices
    from explainbench.explainers.gradients import EmbeddingModel, continuous_input

    model = ci_model(model_name)
    task = models.task_of(model_name)
    assert explainers.get("deeplift").supports(model, task) is not None
    x = task.inputs(slices.load(slices.named("imdb-test", size=4)))
    targets = task.probabilities(model, x).argmax(1)
    ci = continuous_input(model, task, x)
    with pytest.warns(UserWarning):
        attr = DeepLift(EmbeddingModel(model)).attribute(
            ci.x, baselines=default_baseline(model, task, x, "default"), target=targets,
            additional_forward_args=ci.extra_args)
    delta = _target_logit(model, task, x, targets) - _baseline_logit(model, task, x, targets)
    gap = (attr.sum(dim=(1, 2)) - delta).abs()
    assert (gap > 0.1 * delta.abs()).any()


def test_deeplift_explains_a_text_model_built_from_supported_modules(tiny_tokenizer, text_inputs,
                                                                    synthetic_text_task):
    """Where the architecture allows it (embeddings, masked mean, Linear, ReLU modules), DeepLift
    runs on text at the embeddings and keeps summation to f(x) - f([MASK] reference)."""
    from torch import nn

    from explainbench.models.architectures import TextClassifier

    class BagOfEmbeddings(TextClassifier):
        def __init__(self):
            super().__init__()
            torch.manual_seed(0)
            self.pad_id = tiny_tokenizer.pad_id
            self.embedding = nn.Embedding(tiny_tokenizer.vocab_size, 8)
            self.head = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 2))

        @property
        def embedding_layer(self):
            return self.embedding

        def forward_embeds(self, embeds, attention_mask):
            mask = attention_mask.unsqueeze(-1).float()
            return self.head((embeds * mask).sum(1) / mask.sum(1))

    model = BagOfEmbeddings().eval()
    deeplift = explainers.get("deeplift")
    assert deeplift.supports(model, synthetic_text_task) is None
    targets = torch.tensor([0, 1] * 4)
    out = deeplift.explain(model, synthetic_text_task, text_inputs, targets)
    delta = _target_logit(model, synthetic_text_task, text_inputs, targets) - \
        _baseline_logit(model, synthetic_text_task, text_inputs, targets)
    assert torch.allclose(out.sum(1), delta, atol=1e-5)


def test_integrated_gradients_refines_only_the_samples_that_miss_completeness(
        tiny_lstm, text_inputs, synthetic_text_task):
    """With an unreachable tolerance every sample is doubled up to max_steps: the result is IG at
    max_steps; with a loose one nothing is refined: IG at n_steps."""
    ig = explainers.get
    targets = torch.tensor([0, 1] * 4)
    strict = ig("integrated_gradients", n_steps=8, tolerance=1e-12, max_steps=32).explain(
        tiny_lstm, synthetic_text_task, text_inputs, targets)
    fixed32 = ig("integrated_gradients", n_steps=32, tolerance=None).explain(
        tiny_lstm, synthetic_text_task, text_inputs, targets)
    loose = ig("integrated_gradients", n_steps=8, tolerance=1e6).explain(
        tiny_lstm, synthetic_text_task, text_inputs, targets)
    fixed8 = ig("integrated_gradients", n_steps=8, tolerance=None).explain(
        tiny_lstm, synthetic_text_task, text_inputs, targets)
    assert torch.allclose(strict, fixed32, atol=1e-7)
    assert torch.allclose(loose, fixed8, atol=1e-7)
    assert not torch.allclose(fixed8, fixed32, atol=1e-7)
