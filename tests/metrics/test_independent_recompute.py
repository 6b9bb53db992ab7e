"""An independent recomputation: deletion, insertion and faithfulness correlation recomputed with
Quantus on samples, models, substrates and settings that no other test uses (MNIST test images
200-211, the ci mnist_logreg with integrated-gradients maps, the training-mean substrate, 49 steps,
an inserted-from-black curve, 0.1 subsets with 60 runs, seed 2024). Mappings as stated in
test_quantus_agreement.py."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from explainbench import explainers
from explainbench import metrics
from explainbench.core.tasks import ImageTask
from tests.metrics.conftest import predicted, tie_free
from tests.metrics.test_quantus_agreement import (COMMON, RTOL, numpy_trapz, put_back,  # noqa: F401
                                                  quantus_faithfulness_correlation, run_quantus)


@pytest.mark.filterwarnings("ignore:The settings for perturbing input")  # Quantus: a step that
# replaces black border pixels by the (black) training mean changes nothing, which is expected
def test_recomputed_with_quantus(ci_model, mnist_test_images, monkeypatch):
    import quantus

    model = ci_model("mnist_logreg")
    x, _ = mnist_test_images(200, 12)
    task = ImageTask()
    y = predicted(model, x)
    a = explainers.get("integrated_gradients", n_steps=16).explain(model, task, x, y)
    a = a + 1e-7 * tie_free(a.shape, 2024)  # black pixels tie at exactly 0
    flat = x.reshape(12, -1).numpy()
    steps = 49

    # deletion into the training mean: PixelFlipping with a perturbation copying the mean image
    mean = task.train_mean.reshape(1, -1).expand(12, -1).numpy()
    ours = metrics.get("deletion", steps=steps, substrate="mean")(model, task, x, a, y)
    flipping = quantus.PixelFlipping(features_in_step=784 // steps, perturb_func=put_back(mean),
                                     return_auc_per_sample=True, **COMMON)
    auc = np.array(run_quantus(flipping, model, x, y, a))
    c = ours.curve.numpy()
    np.testing.assert_allclose(ours.scores.numpy(), (auc + (c[:, 0] + c[:, 1]) / 2) / steps, rtol=RTOL)

    # insertion from black: PixelFlipping from a black canvas putting the pixels back
    ours = metrics.get("insertion", steps=steps, substrate="zero")(model, task, x, a, y)
    flipping = quantus.PixelFlipping(features_in_step=784 // steps, perturb_func=put_back(flat), **COMMON)
    curve = np.array(run_quantus(flipping, model, torch.zeros_like(x), y, a))
    np.testing.assert_allclose(ours.curve[:, 1:].numpy(), curve, rtol=RTOL)

    # faithfulness correlation, mean substrate is not in Quantus: black, 0.1 subsets, 60 runs
    runs, seed = 60, 2024
    corr = metrics.get("faithfulness_correlation", nr_runs=runs, subset_fraction=0.1,
                       substrate="zero")(model, task, x, a, y, seed=seed)
    ref = quantus_faithfulness_correlation(monkeypatch, model, task, x, y, a, runs=runs, seed=seed,
                                           subset_size=78)
    np.testing.assert_allclose(corr.scores.numpy(), ref, rtol=RTOL, atol=1e-7)
