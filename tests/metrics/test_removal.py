"""The removal engine and the task's `remove`: ranks, counts, substrates, batching, determinism."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from explainbench.metrics.removal import (counts_for_fractions, feature_ranks, removal_curve,
                             resolve_substrate)


def test_ranks_put_the_winner_first_ties_in_a_random_order_and_non_features_last(text_task,
                                                                                  text_inputs):
    attributions = torch.zeros(text_inputs.shape)
    attributions[:, 3] = 1.0  # one clear winner, every other feature tied at 0
    ranks, n = feature_ranks(text_task, text_inputs, attributions)
    valid = text_task.feature_mask(text_inputs)
    assert torch.equal(n, valid.sum(1))
    for b in range(len(text_inputs)):
        positions = [p for p in valid[b].nonzero().flatten().tolist() if p != 3]
        # the winner first, then the tied features (in a random order: tests/metrics/test_ties.py),
        # then [CLS]/[PAD]
        assert ranks[b, 3] == 0
        assert sorted(ranks[b, positions].tolist()) == list(range(1, len(positions) + 1))
        assert (ranks[b, ~valid[b]] > len(positions)).all()
    lerf_ranks, _ = feature_ranks(text_task, text_inputs, attributions, descending=False)
    assert (lerf_ranks[:, 3] == n - 1).all()  # least relevant first: the winner goes last


def test_counts_round_half_up_per_sample():
    counts = counts_for_fractions(torch.tensor([784, 10, 3]), torch.tensor([0.0, 0.01, 0.25, 0.5, 1.0]))
    assert counts.tolist() == [[0, 8, 196, 392, 784], [0, 0, 3, 5, 10], [0, 0, 1, 2, 3]]


def test_paper_substrates_per_modality(image_task, text_task):
    assert resolve_substrate(image_task, None, "deletion") == "zero"
    assert resolve_substrate(image_task, None, "insertion") == "blur"
    assert resolve_substrate(text_task, None, "insertion") == "mask"
    assert resolve_substrate(text_task, None, "eraser") == "pad"
    assert resolve_substrate(image_task, "mean", "deletion") == "mean"
    from explainbench.core.errors import UnknownNameError

    with pytest.raises(UnknownNameError, match="Valid choices: mask, pad"):
        resolve_substrate(text_task, "blur", "deletion")


def test_blur_substrate_matches_scipy(images, image_task):
    """The RISE insertion canvas (11x11 Gaussian, sigma 5) against an independent implementation:
    scipy's Gaussian filter with the same radius and torch-style reflection ('mirror')."""
    from scipy.ndimage import gaussian_filter

    ours = image_task.substrate_image(images, "blur").numpy()
    ref = np.stack([gaussian_filter(img[0].astype(np.float64), sigma=5.0, mode="mirror",
                                    truncate=1.0)[None] for img in images.numpy()])
    np.testing.assert_allclose(ours, ref, rtol=1e-5, atol=1e-6)


def test_curve_endpoints_are_the_input_and_the_substrate(tiny_cnn, image_task, images):
    attributions = torch.rand(8, 28, 28, generator=torch.Generator().manual_seed(0))
    targets = torch.arange(8) % 10
    ranks, n = feature_ranks(image_task, images, attributions)
    counts = counts_for_fractions(n, torch.tensor([0.0, 1.0]))
    for substrate in ("zero", "blur"):
        curve = removal_curve(tiny_cnn, image_task, images, ranks, counts, targets, substrate=substrate)
        with torch.no_grad():
            p = torch.softmax(tiny_cnn(images), 1)[torch.arange(8), targets]
            canvas = image_task.substrate_image(images, substrate)
            q = torch.softmax(tiny_cnn(canvas), 1)[torch.arange(8), targets]
        torch.testing.assert_close(curve[:, 0], p)
        torch.testing.assert_close(curve[:, 1], q)
        inserted = removal_curve(tiny_cnn, image_task, images, ranks, counts, targets,
                                 substrate=substrate, insert=True)
        torch.testing.assert_close(inserted[:, 0], q)
        torch.testing.assert_close(inserted[:, 1], p)


def test_noise_substrate_is_drawn_once_per_sample_and_independent_of_batch_size(tiny_cnn, image_task, images):
    from explainbench import metrics

    attributions = torch.rand(8, 28, 28, generator=torch.Generator().manual_seed(1))
    targets = torch.zeros(8, dtype=torch.long)
    morf = metrics.get("mif", steps=10, substrate="noise")
    a = morf(tiny_cnn, image_task, images, attributions, targets, seed=3, batch_size=7)
    b = morf(tiny_cnn, image_task, images, attributions, targets, seed=3, batch_size=256)
    c = morf(tiny_cnn, image_task, images, attributions, targets, seed=4, batch_size=256)
    torch.testing.assert_close(a.curve, b.curve, rtol=1e-6, atol=1e-7)
    assert not torch.allclose(b.curve, c.curve)
    # removing everything leaves the sample's one noise image: the same in both orders
    lerf = metrics.get("lif", steps=10, substrate="noise")(tiny_cnn, image_task, images,
                                                             attributions, targets, seed=3)
    torch.testing.assert_close(lerf.curve[:, -1], b.curve[:, -1])


def test_text_removal_never_touches_cls_or_padding(tiny_lstm, text_task, text_inputs):
    """Counts are per sample; removing 100% of a review leaves [CLS], the padding and only masks."""
    tok = text_task.tokenizer
    attributions = torch.rand(text_inputs.shape, generator=torch.Generator().manual_seed(0))
    ranks, n = feature_ranks(text_task, text_inputs, attributions)
    keep = ~(ranks < n.view(-1, 1))
    removed = text_task.remove(text_inputs, keep, "mask")
    valid = text_task.feature_mask(text_inputs)
    assert (removed[valid] == tok.mask_id).all()
    assert torch.equal(removed[~valid], text_inputs[~valid])
    # half of each review's own words, rounded half up
    counts = counts_for_fractions(n, torch.tensor([0.5]))
    half = ranks < counts
    assert torch.equal(half.sum(1), torch.floor(n * 0.5 + 0.5).long())
    assert not half[~valid].any()
