"""Fixed slices: stratified, deterministic, nested, content-hashed."""

from __future__ import annotations

import numpy as np
import pytest

from explainbench.core import slices
from explainbench.core.errors import BenchError, UnknownNameError


def test_stratified_ids_are_balanced_and_nested():
    labels = np.repeat(np.arange(4), [50, 30, 40, 20])
    big = slices.stratified_ids(labels, 60, seed=3)
    small = slices.stratified_ids(labels, 20, seed=3)
    assert (big[:20] == small).all()
    assert np.bincount(labels[small], minlength=4).tolist() == [5, 5, 5, 5]
    assert len(set(big.tolist())) == 60
    # once a class runs out, the others fill in
    everything = slices.stratified_ids(labels, 140, seed=3)
    assert sorted(everything.tolist()) == list(range(140))


def test_stratified_ids_depend_on_the_seed_only():
    labels = np.repeat(np.arange(3), 30)
    a = slices.stratified_ids(labels, 12, seed=0)
    assert (a == slices.stratified_ids(labels, 12, seed=0)).all()
    assert not (a == slices.stratified_ids(labels, 12, seed=1)).all()


def test_slice_too_large_or_unknown_is_a_clear_error():
    with pytest.raises(BenchError, match="exceeds"):
        slices.stratified_ids(np.zeros(5, dtype=int), 6, seed=0)
    with pytest.raises(UnknownNameError, match="mnist-test"):
        slices.named("mnist-tset")
    with pytest.raises(UnknownNameError, match="imdb"):
        slices.SliceSpec("cifar")


def test_real_slices_hash_ids_labels_and_data(real_data):
    spec = slices.named("mnist-test", size=20)
    a, b = slices.load(spec), slices.load(spec)
    assert a.content_hash == b.content_hash
    assert np.bincount(a.labels, minlength=10).tolist() == [2] * 10
    bigger = slices.load(slices.named("mnist-test", size=40))
    assert (bigger.ids[:20] == a.ids).all() and bigger.content_hash != a.content_hash
    tampered = slices.Slice(a.spec, a.ids, a.labels, a.images.copy())
    tampered.images[0, 0, 0] ^= 1
    assert tampered.content_hash != a.content_hash

    text = slices.load(slices.named("imdb-test", size=6))
    assert len(text.texts) == 6 and np.bincount(text.labels).tolist() == [3, 3]
    assert text.subset([1, 2]).texts == text.texts[1:3]
    with pytest.raises(BenchError, match="not in slice"):
        text.positions_of([-5])
