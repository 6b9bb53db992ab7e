"""Batched similarity functions against scipy and skimage, sample by sample."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.stats import pearsonr, rankdata, spearmanr
from skimage.metrics import structural_similarity

from explainbench.metrics import similarity


@pytest.fixture
def maps():
    g = torch.Generator().manual_seed(0)
    a = torch.randn(6, 28, 28, generator=g)
    b = a + 0.7 * torch.randn(6, 28, 28, generator=g)
    # ties, as LIME's superpixel attributions have
    a[0] = torch.round(a[0] * 2) / 2
    b[1] = torch.round(b[1])
    return a, b


def test_average_ranks_match_scipy_rankdata_with_ties(maps):
    a, _ = maps
    ranks = similarity.average_ranks(a)
    for row in range(6):
        assert np.allclose(ranks[row].numpy(), rankdata(a[row].flatten().numpy()))


def test_spearman_and_pearson_match_scipy(maps):
    a, b = maps
    rho = similarity.spearman(a, b)
    r = similarity.pearson(a, b)
    for row in range(6):
        x, y = a[row].flatten().double().numpy(), b[row].flatten().double().numpy()
        assert rho[row].item() == pytest.approx(spearmanr(x, y).statistic, abs=1e-12)
        assert r[row].item() == pytest.approx(pearsonr(x, y).statistic, abs=1e-12)


def test_spearman_uses_only_valid_features():
    g = torch.Generator().manual_seed(1)
    a, b = torch.randn(3, 20, generator=g), torch.randn(3, 20, generator=g)
    valid = torch.zeros(3, 20, dtype=torch.bool)
    valid[0, :5], valid[1, :12], valid[2, 3:20] = True, True, True
    b_noisy_padding = torch.where(valid, b, torch.randn(3, 20, generator=g) * 100)
    rho = similarity.spearman(a, b_noisy_padding, valid)
    for row in range(3):
        keep = valid[row].numpy()
        expected = spearmanr(a[row].numpy()[keep], b[row].numpy()[keep]).statistic
        assert rho[row].item() == pytest.approx(expected, abs=1e-12)


def test_identical_maps_score_exactly_one_and_constants_zero():
    a = torch.randn(4, 30)
    assert (similarity.spearman(a, a.clone()) == 1.0).all()
    assert (similarity.top_k_intersection(a, a.clone()) == 1.0).all()
    assert (similarity.sign_agreement(a, a.clone()) == 1.0).all()
    const = torch.zeros(4, 30)
    assert (similarity.spearman(const, a) == 0.0).all()
    assert (similarity.spearman(const, const) == 1.0).all()


def test_top_k_intersection_counts_shared_top_features():
    a = torch.tensor([[10.0, -9, 1, 0, 0, 0, 0, 0, 0, 0]])
    b = torch.tensor([[-10.0, 0, 9, 0, 0, 0, 0, 0, 0, 0]])
    assert similarity.top_k_intersection(a, b, k_fraction=0.2).item() == 0.5  # k = 2: {0,1} vs {0,2}
    assert similarity.top_k_intersection(a, b, k_fraction=0.1).item() == 1.0


def test_ssim_matches_skimage_as_quantus_calls_it(maps):
    a, b = maps
    ours = similarity.ssim(a, b)
    for row in range(6):
        x, y = a[row].numpy().astype(np.float64), b[row].numpy().astype(np.float64)
        data_range = float(np.abs(max(x.max(), y.max()) - min(x.min(), y.min())))
        expected = structural_similarity(x, y, data_range=data_range)
        assert ours[row].item() == pytest.approx(expected, rel=1e-9, abs=1e-12)


def test_pairwise_mean_averages_all_pairs():
    g = torch.Generator().manual_seed(2)
    stack = torch.randn(4, 3, 25, generator=g)
    out = similarity.pairwise_mean(stack, similarity.spearman)
    expected = np.mean([[spearmanr(stack[i, s], stack[j, s]).statistic for s in range(3)]
                        for i in range(4) for j in range(i + 1, 4)], axis=0)
    assert np.allclose(out.numpy(), expected)


def test_spearman_untied_is_spearman_in_expectation_over_random_tie_orders():
    """Checked by brute force: the mean of scipy's Spearman over many random tie orders (each map
    broken independently) is the closed form; without ties it is plain Spearman."""
    from scipy.stats import spearmanr

    from explainbench.metrics.similarity import spearman, spearman_untied

    rng = np.random.default_rng(0)
    zeros = rng.random(40) < 0.6  # both maps 0 on the same 60 %, unrelated elsewhere
    a, b = np.where(zeros, 0.0, rng.random(40)), np.where(zeros, 0.0, rng.random(40))
    draws = []
    for _ in range(4000):
        ja, jb = rng.random(40) * 1e-9, rng.random(40) * 1e-9  # a random order within each tie
        draws.append(spearmanr(a + ja * (a == 0), b + jb * (b == 0)).statistic)
    ours = spearman_untied(torch.tensor([a]), torch.tensor([b])).item()
    assert ours == pytest.approx(np.mean(draws), abs=0.01)
    # the shared zeros still say where both maps are 0 (real agreement: in x * gradient maps it is
    # the input's, which a randomised model keeps); what no longer counts is their tied order
    assert ours < spearman(torch.tensor([a]), torch.tensor([b])).item() - 0.02
    c, d = rng.random(30), rng.random(30)
    assert spearman_untied(torch.tensor([c]), torch.tensor([d])).item() == pytest.approx(
        spearmanr(c, d).statistic, rel=1e-9)
