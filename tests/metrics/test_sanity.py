"""Model-parameter randomisation agrees with quantus.MPRT on the same settings."""

from __future__ import annotations

import numpy as np
import quantus
import torch

from explainbench import explainers
from explainbench.metrics.sanity import (cascading_randomisation, explanation_similarity, random_other_class,
                            randomisable_layers)


def test_cascade_randomises_from_the_output_layer_down(tiny_cnn):
    names = [n for n, _ in randomisable_layers(tiny_cnn)]
    assert names == ["conv1", "conv2", "fc1", "fc2"]
    seen = []
    for depth, layer, randomised in cascading_randomisation(tiny_cnn, seed=42):
        seen.append(layer)
        changed = {n for n, p in randomised.named_parameters()
                   if not torch.equal(p, tiny_cnn.get_parameter(n))}
        assert {n.split(".")[0] for n in changed} == set(seen)
    assert seen == ["fc2", "fc1", "conv2", "conv1"]


def test_block_granularity_groups_transformer_layers(tiny_transformer):
    steps = [layer for _, layer, _ in cascading_randomisation(tiny_transformer, granularity="block")]
    assert steps == ["bert.classifier", "bert.bert.pooler", "bert.bert.encoder.layer.0",
                     "bert.bert.embeddings"]


def test_mprt_matches_quantus(tiny_cnn, image_task, images):
    saliency = explainers.get("saliency")
    targets = tiny_cnn(images).argmax(1)

    def explain(model, inputs, targets, **kwargs):
        return saliency.explain(model, image_task, torch.as_tensor(inputs),
                                torch.as_tensor(targets)).unsqueeze(1).numpy()

    original = saliency.explain(tiny_cnn, image_task, images, targets)
    ref = quantus.MPRT(layer_order="top_down", seed=42, abs=True, normalise=True,
                       return_average_correlation=False, return_last_correlation=False,
                       disable_warnings=True, display_progressbar=False)(
        model=tiny_cnn, x_batch=images.numpy(), y_batch=targets.numpy(),
        a_batch=original.unsqueeze(1).numpy(), explain_func=explain, device="cpu")
    valid = image_task.feature_mask(images)
    for depth, layer, randomised in cascading_randomisation(tiny_cnn, seed=42, granularity="layer"):
        other = saliency.explain(randomised, image_task, images, targets)
        ours = explanation_similarity(original, other, valid, "image", "mprt")["mprt_spearman"]
        assert np.allclose(ours.numpy(), ref[layer], rtol=1e-5, atol=1e-7), layer


def test_random_other_class_never_picks_the_target():
    targets = torch.arange(10).repeat(50)
    others = random_other_class(targets, 10, torch.Generator().manual_seed(0))
    assert (others != targets).all() and set(others.tolist()) == set(range(10))
