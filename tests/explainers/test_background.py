"""Background selection strategies, and integrated gradients with a sampled baseline."""

from __future__ import annotations

import pytest
import torch

from explainbench import explainers
from explainbench.core.errors import BenchError
from explainbench.core.tasks import ImageTask, TextTask, gaussian_blur
from explainbench.explainers.background import select_background


@pytest.fixture
def image_train():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(200, 1, 28, 28, generator=g)
    y = torch.arange(200) % 10
    return ImageTask(train=(x, y))


def test_random_and_stratified_are_seeded_draws(image_train):
    a = select_background(image_train, 20, "random", seed=1)
    assert torch.equal(a, select_background(image_train, 20, "random", seed=1))
    assert not torch.equal(a, select_background(image_train, 20, "random", seed=2))
    strat = select_background(image_train, 20, "stratified", seed=1)
    x, y = image_train.train_split()
    rows = [int((x == s).flatten(1).all(1).nonzero()) for s in strat]
    assert torch.bincount(y[rows], minlength=10).tolist() == [2] * 10


def test_each_size_is_its_own_draw_not_a_prefix_of_the_largest(image_train):
    """A small random background that is the first rows of the reference converges to the
    reference by construction: each (seed, size) is an independent draw."""
    x, _ = image_train.train_split()

    def rows_of(background):
        return {int((x == b).flatten(1).all(1).nonzero()) for b in background}

    for strategy in ("random", "stratified"):
        small = rows_of(select_background(image_train, 10, strategy, seed=0))
        large = rows_of(select_background(image_train, 100, strategy, seed=0))
        assert len(small & large) < 10  # an independent draw of 10 of 200: about 5 shared
        again = rows_of(select_background(image_train, 10, strategy, seed=0))
        assert again == small  # still seeded


def test_kmeans_returns_centroids_of_the_data(image_train):
    centroids = select_background(image_train, 5, "kmeans", seed=0)
    assert centroids.shape == (5, 1, 28, 28)
    # shap rounds every centroid pixel to a value that pixel takes in the data
    x, _ = image_train.train_split()
    assert torch.isin(centroids[0, 0, 0, 0], x[:, 0, 0, 0])
    assert torch.equal(centroids, select_background(image_train, 5, "kmeans", seed=0))


def test_single_references(image_train, text_task, text_inputs):
    assert torch.equal(select_background(image_train, 1, "zeros"), torch.zeros(1, 1, 28, 28))
    inputs = torch.rand(3, 1, 28, 28)
    assert torch.allclose(select_background(image_train, 1, "blur", inputs=inputs),
                          gaussian_blur(inputs, 11, 5.0))
    task = TextTask(tokenizer=text_task.tokenizer, train=(text_inputs, torch.zeros(8).long()))
    masked = select_background(task, 1, "zeros")
    assert masked[0, 0] == task.tokenizer.cls_id and (masked[0, 1:] == task.tokenizer.mask_id).all()
    with pytest.raises(BenchError, match="single reference"):
        select_background(image_train, 5, "zeros")
    with pytest.raises(BenchError, match="images only"):
        select_background(task, 3, "kmeans")
    with pytest.raises(BenchError, match="background = 'median' is not allowed; background must "
                                         "be one of random, kmeans, stratified, zeros, blur"):
        explainers.get("gradient_shap", background="median")


def test_ig_with_a_sampled_baseline_is_exact_on_the_linear_model(logreg, images):
    """IG(x, r) = W[c] * (x - r) exactly on a linear model, so the average over the references
    is W[c] * (x - mean(references))."""
    g = torch.Generator().manual_seed(3)
    task = ImageTask(train=(torch.rand(50, 1, 28, 28, generator=g), torch.arange(50) % 10))
    targets = logreg(images).argmax(1)
    ig = explainers.get("integrated_gradients", baseline="background", background_size=7, n_steps=8)
    attributions = ig.explain(logreg, task, images, targets, seed=5)
    refs = select_background(task, 7, "random", seed=5)
    expected = logreg.weight[targets].view(8, 28, 28) * (images - refs.mean(0))[:, 0]
    assert torch.allclose(attributions, expected, atol=1e-5)
    blur = explainers.get("integrated_gradients", baseline="background", background="blur",
                          background_size=1, n_steps=8).explain(logreg, task, images, targets)
    blurred = gaussian_blur(images, 11, 5.0)
    assert torch.allclose(blur, logreg.weight[targets].view(8, 28, 28) * (images - blurred)[:, 0],
                          atol=1e-5)


def test_background_explainers_take_every_strategy(tiny_cnn, images):
    task = ImageTask(train=(torch.rand(60, 1, 28, 28), torch.arange(60) % 10))
    targets = tiny_cnn(images[:3]).argmax(1)
    for strategy, size in [("random", 4), ("kmeans", 3), ("stratified", 10), ("zeros", 1), ("blur", 1)]:
        for name, extra in (("gradient_shap", {}), ("deeplift_shap", {}), ("shap_deep", {}),
                            ("shap_gradient", {"n_samples": 20}), ("shap_kernel", {"n_samples": 60})):
            e = explainers.get(name, background=strategy, background_size=size, **extra)
            a = e.explain(tiny_cnn, task, images[:3], targets, seed=0)
            assert a.shape == (3, 28, 28) and torch.isfinite(a).all(), (name, strategy)


@pytest.mark.parametrize("name", ["deeplift_shap", "shap_deep"])
def test_a_blurred_reference_is_each_samples_own_on_the_runners_path(logreg, images, name):
    """`blur` explains each sample against its own blurred copy: on the linear model exactly
    W[c] * (x - blur(x)). Checked through explain_with_records, the method the runner calls."""
    from explainbench.core.tasks import ImageTask

    task = ImageTask(train=(images, torch.zeros(len(images)).long()))
    targets = torch.arange(8) % 10
    explainer = explainers.get(name, background="blur", background_size=1)
    out, _ = explainer.explain_with_records(logreg, task, images, targets, seed=0)
    w = logreg.weight.detach()[targets].view(-1, 28, 28)
    expected = w * (images[:, 0] - gaussian_blur(images, 11, 5.0)[:, 0])
    torch.testing.assert_close(out, expected, rtol=1e-4, atol=1e-6 * expected.abs().max().item())
