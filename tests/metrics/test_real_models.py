"""On the ci-profile mnist_cnn with real test images and real saliency maps: the same agreement
with Quantus (PixelFlipping, FaithfulnessCorrelation, ROAD) and captum.metrics.infidelity as on the
synthetic models. Settings and mappings as in test_quantus_agreement.py; saliency maps can tie
(exact zeros), so a tiny tie-free jitter is added and both sides score the same jittered map."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from explainbench import explainers
from explainbench import metrics
from tests.metrics.conftest import predicted, tie_free
from tests.metrics.test_quantus_agreement import (COMMON, RTOL, numpy_trapz,  # noqa: F401 (autouse)
                                                  quantus_faithfulness_correlation, run_quantus)


@pytest.fixture(scope="module")
def cnn_saliency(ci_model, mnist_test_images):
    model = ci_model("mnist_cnn")
    x, _ = mnist_test_images(16, 6)
    from explainbench.core.tasks import ImageTask

    task = ImageTask()
    y = predicted(model, x)
    a = explainers.get("saliency").explain(model, task, x, y)
    return model, task, x, y, a + 1e-7 * tie_free(a.shape, 99)


def test_mnist_cnn_deletion_correlation_and_infidelity_agree(cnn_saliency, monkeypatch):
    import quantus
    from captum.metrics import infidelity

    model, task, x, y, a = cnn_saliency
    steps = 28
    ours = metrics.get("deletion", steps=steps, substrate="zero")(model, task, x, a, y)
    curve = np.array(run_quantus(quantus.PixelFlipping(features_in_step=784 // steps,
                                                       perturb_baseline=0.0, **COMMON), model, x, y, a))
    np.testing.assert_allclose(ours.curve[:, 1:].numpy(), curve, rtol=RTOL, atol=1e-8)

    runs, seed = 40, 21
    corr = metrics.get("faithfulness_correlation", nr_runs=runs, substrate="zero")(
        model, task, x, a, y, seed=seed)
    ref = quantus_faithfulness_correlation(monkeypatch, model, task, x, y, a, runs=runs, seed=seed,
                                           subset_size=196)
    np.testing.assert_allclose(corr.scores.numpy(), ref, rtol=RTOL, atol=1e-7)

    n = 10
    infid = metrics.get("infidelity", n_perturb_samples=n, normalize=False)(model, task, x, a, y,
                                                                            seed=seed)
    noise = torch.randn((6, n, 1, 28, 28), generator=torch.Generator().manual_seed(seed)) * 0.003
    flat = noise.flatten(0, 1)
    ref = infidelity(model, lambda inp: (flat, inp - flat), x, a.unsqueeze(1), target=y,
                     n_perturb_samples=n)
    np.testing.assert_allclose(infid.scores.numpy(), ref.double().numpy(), rtol=RTOL)


def test_mnist_cnn_road_agrees_with_quantus(cnn_saliency, monkeypatch):
    import quantus

    from explainbench.metrics.road import road_noise

    model, task, x, y, a = cnn_saliency
    percentages, seed = [10, 30, 50, 75, 99], 2
    ours = metrics.get("road", percentages=percentages)(model, task, x, a, y, seed=seed)
    counts = torch.tensor([int(784 * p / 100) for p in percentages])
    unit = road_noise(counts, 6, 2, torch.Generator().manual_seed(seed), 1.0)
    calls = iter([(p, b) for p in range(len(counts)) for b in range(6)])

    def randn(*shape):
        p, b = next(calls)
        return unit[b, 0, p, :counts[p]].double().numpy().reshape(shape)

    monkeypatch.setattr(np.random, "randn", randn)
    accuracy = run_quantus(quantus.ROAD(percentages=percentages, noise=0.01, **COMMON), model, x, y, a)
    np.testing.assert_array_equal(ours.extras["morf_correct"].double().mean(0).numpy(),
                                  np.array([accuracy[p] for p in percentages]))
