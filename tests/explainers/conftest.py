"""Fixtures for the explainer tests: tasks whose training split is synthetic (backgrounds and
nearest examples draw from it), cheap parameters, and every (model, task, inputs) case."""

from __future__ import annotations

import pytest
import torch

# Cheap settings for the tests that check the contract rather than a default's accuracy.
FAST = {
    "integrated_gradients": {"n_steps": 8, "tolerance": None},  # completeness: test_ground_truth
    "feature_ablation": {"patch": 2},
    "smoothgrad": {"n_samples": 4},
    "gradient_shap": {"n_samples": 4, "background_size": 8},
    "deeplift_shap": {"background_size": 4},
    "kernel_shap": {"n_samples": 40},
    "rise": {"n_masks": 64},
    "lime": {"n_samples": 40},
    "lime_batched": {"n_samples": 40},
    "kernel_shap_batched": {"n_samples": 40},
    "shap_deep": {"background_size": 4},
    "shap_gradient": {"n_samples": 8, "background_size": 8},
    "shap_kernel": {"n_samples": 40, "background_size": 2},
    "shap_partition": {"max_evals": 40},
    "nearest_examples": {"k": 3},
    # the tiny random models' predictions are fragile: a loose tolerance keeps the search short
    "anchor": {"max_anchor_size": 2, "coverage_samples": 200, "tau": 0.5},
}


def fast(name: str, **overrides):
    from explainbench import explainers

    return explainers.get(name, **{**FAST.get(name, {}), **overrides})


@pytest.fixture
def synthetic_image_task(images):
    """An ImageTask whose training split is 32 synthetic digits (no real data needed)."""
    from explainbench.core.tasks import ImageTask

    g = torch.Generator().manual_seed(1)
    train = torch.cat([images, images.flip(-1), images.flip(-2), images.transpose(-1, -2)])
    train = (train + 0.05 * torch.rand(train.shape, generator=g)).clamp(0, 1)
    return ImageTask(train=(train, torch.arange(len(train)) % 10))


@pytest.fixture
def synthetic_text_task(tiny_tokenizer, text_inputs):
    """A TextTask on the tiny tokenizer whose training split is the test sentences and the same
    sentences with their words in reverse order."""
    from explainbench.core.tasks import TextTask

    reversed_ids = text_inputs.clone()
    for row in reversed_ids:
        n = int((row != tiny_tokenizer.pad_id).sum()) - 1
        row[1 : 1 + n] = row[1 : 1 + n].flip(0)
    train = torch.cat([text_inputs, reversed_ids])
    return TextTask(tokenizer=tiny_tokenizer, train=(train, torch.arange(len(train)) % 2))


@pytest.fixture
def cases(tiny_cnn, logreg, tiny_transformer, tiny_lstm, images, text_inputs,
          synthetic_image_task, synthetic_text_task):
    """name -> (model, task, inputs) for every tiny model."""
    return {
        "cnn": (tiny_cnn, synthetic_image_task, images),
        "logreg": (logreg, synthetic_image_task, images),
        "transformer": (tiny_transformer, synthetic_text_task, text_inputs),
        "lstm": (tiny_lstm, synthetic_text_task, text_inputs),
    }
