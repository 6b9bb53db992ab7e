"""Backgrounds, seeding of global generators, superpixels."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from explainbench.core.errors import BenchError, UnknownNameError
from explainbench.explainers.background import select_background
from explainbench.explainers.seeding import global_rng
from explainbench.core.superpixels import segment, segment_batch


def test_background_is_a_seeded_sample_of_the_training_split(synthetic_image_task):
    train, _ = synthetic_image_task.train_split()
    a = select_background(synthetic_image_task, 10, "random", seed=1)
    assert torch.equal(a, select_background(synthetic_image_task, 10, "random", seed=1))
    assert not torch.equal(a, select_background(synthetic_image_task, 10, "random", seed=2))
    rows = {tuple(r.flatten().tolist()) for r in train}
    assert all(tuple(r.flatten().tolist()) in rows for r in a)
    assert len({tuple(r.flatten().tolist()) for r in a}) == 10  # without replacement


def test_background_errors(synthetic_image_task):
    with pytest.raises(UnknownNameError, match="Valid choices: blur, kmeans, random, stratified, zeros"):
        select_background(synthetic_image_task, 10, "kmean", seed=0)
    with pytest.raises(BenchError, match="1..32"):
        select_background(synthetic_image_task, 33, "random", seed=0)


def test_unknown_background_strategy_is_a_one_line_error(images, tiny_cnn, synthetic_image_task):
    from explainbench import explainers

    with pytest.raises(BenchError, match="explainer 'deeplift_shap': parameter background = "
                                         "'kmean' is not allowed"):
        explainers.get("deeplift_shap", background="kmean")


def test_global_rng_is_seeded_and_restored():
    torch.manual_seed(123), np.random.seed(123), random.seed(123)
    before = (torch.rand(1), np.random.rand(), random.random())
    torch.manual_seed(123), np.random.seed(123), random.seed(123)
    with global_rng(7):
        inside = (torch.rand(1), np.random.rand(), random.random())
    after = (torch.rand(1), np.random.rand(), random.random())
    assert torch.equal(before[0], after[0]) and before[1:] == after[1:]
    with global_rng(7):
        again = (torch.rand(1), np.random.rand(), random.random())
    assert torch.equal(inside[0], again[0]) and inside[1:] == again[1:]


def test_grid_segments_are_4x4_patches():
    labels = segment(np.zeros((28, 28)), "grid")
    assert labels.max() == 48
    assert (np.bincount(labels.ravel()) == 16).all()
    assert labels[0, 0] == labels[3, 3] != labels[0, 4]


def test_slic_segments_follow_the_stroke(images):
    labels = segment_batch(images, "slic")
    assert labels.shape == (8, 28, 28)
    for lab, img in zip(labels, images[:, 0]):
        n = int(lab.max()) + 1
        assert 20 <= n <= 60
        assert set(lab.unique().tolist()) == set(range(n))  # contiguous labels
        stroke = img > 0.5
        # most segments are pure stroke or pure background
        mixed = sum(bool(stroke[lab == s].any() and (~stroke[lab == s]).any()) for s in range(n))
        assert mixed / n < 0.35


def test_slic_is_computed_once_per_image_and_served_as_skimage_computes_it(images, monkeypatch):
    from skimage.segmentation import slic

    from explainbench.core import superpixels

    superpixels._slic_cache.clear()
    calls = []
    real = superpixels._slic
    monkeypatch.setattr(superpixels, "_slic", lambda image: calls.append(1) or real(image))
    first = segment_batch(images, "slic")
    # lime's (H, W, 3) float64 copy of the same image is the same entry
    rgb = np.repeat(images[0, 0].numpy().astype(np.float64)[..., None], 3, axis=2)
    again, from_lime = segment_batch(images, "slic"), segment(rgb, "slic")
    assert len(calls) == len(images)
    assert torch.equal(first, again) and np.array_equal(from_lime, first[0].numpy())
    from_lime[0, 0] = 99  # a caller's copy: the cached labels stay as they were
    assert np.array_equal(segment(rgb, "slic"), first[0].numpy())
    for image, labels in zip(images[:, 0].numpy().astype(np.float64), first.numpy()):
        raw = slic(image, n_segments=49, compactness=0.1, channel_axis=None, start_label=0)
        # the same partition as skimage's, numbered 0..S-1 in skimage's label order
        assert np.array_equal(np.unique(raw, return_inverse=True)[1].reshape(raw.shape), labels)


def test_slic_cache_is_bounded(monkeypatch):
    from explainbench.core import superpixels

    superpixels._slic_cache.clear()
    monkeypatch.setattr(superpixels, "SLIC_CACHE_SIZE", 3)
    images = [np.full((28, 28), v / 10) for v in range(5)]
    for image in images:
        segment(image, "slic")
    assert len(superpixels._slic_cache) == 3
