"""Fixed, stratified, content-hashed slices of a dataset split.

A slice is defined by (dataset, split, size, seed). Each class's indices are shuffled with the seed
and the classes are interleaved round-robin, so every slice is balanced by class and a smaller slice
is a prefix of a larger one with the same seed (the smoke suite's 16 images are the first 16 of the
full suite's 1,000). The content hash covers ids, labels and the raw data, and goes into every
result row: two numbers with the same slice hash were computed on the same samples.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from functools import cached_property

import numpy as np

from explainbench.core import data
from explainbench.core.errors import BenchError, UnknownNameError

DATASETS = ("mnist", "imdb")
# Samples per split of the files the slices are drawn from (checked when the files are read).
SPLIT_SIZES = {("mnist", "train"): 60_000, ("mnist", "test"): 10_000,
               ("imdb", "train"): 25_000, ("imdb", "test"): 25_000}


@dataclass(frozen=True)
class SliceSpec:
    dataset: str
    split: str = "test"
    size: int = 100
    seed: int = 0

    def __post_init__(self):
        if self.dataset not in DATASETS:
            raise UnknownNameError("dataset", self.dataset, list(DATASETS))
        if self.split not in ("train", "test"):
            raise UnknownNameError("split", self.split, ["train", "test"])
        available = SPLIT_SIZES[(self.dataset, self.split)]
        if isinstance(self.size, bool) or not isinstance(self.size, int) or \
                not 1 <= self.size <= available:
            raise BenchError(f"slice size must be an integer from 1 to {available:,} (the "
                             f"{self.dataset} {self.split} split has {available:,} samples), "
                             f"got {self.size!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise BenchError(f"slice seed must be an integer >= 0, got {self.seed!r}")

    @property
    def label(self) -> str:
        return f"{self.dataset}-{self.split}-n{self.size}-s{self.seed}"


# The reference slices of the full benchmark; suites take a prefix with `size:`.
NAMED: dict[str, SliceSpec] = {
    "mnist-test": SliceSpec("mnist", "test", 1000, 0),
    "imdb-test": SliceSpec("imdb", "test", 500, 0),
}


def named(name: str, size: int | None = None, seed: int | None = None) -> SliceSpec:
    if name not in NAMED:
        raise UnknownNameError("slice", name, list(NAMED))
    spec = NAMED[name]
    if size is not None:
        spec = replace(spec, size=size)
    if seed is not None:
        spec = replace(spec, seed=seed)
    return spec


def stratified_ids(labels: np.ndarray, size: int, seed: int) -> np.ndarray:
    """Indices of a class-balanced, seeded selection; any prefix is itself balanced."""
    rng = np.random.default_rng(seed)
    classes = np.unique(labels)
    per_class = [rng.permutation(np.flatnonzero(labels == c)) for c in classes]
    depth = max(len(p) for p in per_class)
    # Round r takes the r-th shuffled index of every class that still has one.
    table = np.full((depth, len(classes)), -1, dtype=np.int64)
    for j, p in enumerate(per_class):
        table[: len(p), j] = p
    order = table.reshape(-1)
    order = order[order >= 0]
    if size > len(order):
        raise BenchError(f"slice size {size} exceeds the {len(order)} samples of the split")
    return order[:size]


@dataclass(frozen=True)
class Slice:
    """The raw samples of a slice: ids into the split, labels, and images or texts."""

    spec: SliceSpec
    ids: np.ndarray
    labels: np.ndarray
    images: np.ndarray | None = None  # uint8 (N, 28, 28) for MNIST
    texts: tuple[str, ...] | None = None  # raw review texts for IMDB

    def __len__(self) -> int:
        return len(self.ids)

    @cached_property
    def content_hash(self) -> str:
        h = hashlib.sha256()
        h.update(self.spec.label.encode())
        h.update(np.ascontiguousarray(self.ids, dtype="<i8").tobytes())
        h.update(np.ascontiguousarray(self.labels, dtype="<i8").tobytes())
        if self.images is not None:
            h.update(np.ascontiguousarray(self.images).tobytes())
        for t in self.texts or ():
            b = t.encode("utf-8")
            h.update(len(b).to_bytes(8, "little"))
            h.update(b)
        return h.hexdigest()[:16]

    def subset(self, positions: np.ndarray | list[int]) -> "Slice":
        """A chunk of this slice (positions into it), keeping the parent's spec for provenance."""
        pos = np.asarray(positions, dtype=np.int64)
        return Slice(
            self.spec,
            self.ids[pos],
            self.labels[pos],
            None if self.images is None else self.images[pos],
            None if self.texts is None else tuple(self.texts[i] for i in pos),
        )

    def positions_of(self, ids: list[int]) -> np.ndarray:
        """Positions in this slice of the given sample ids; an unknown id is a one-line error."""
        lookup = {int(i): p for p, i in enumerate(self.ids)}
        missing = [i for i in ids if int(i) not in lookup]
        if missing:
            raise BenchError(
                f"sample ids {missing} are not in slice {self.spec.label} "
                f"(its ids start {', '.join(map(str, self.ids[:8]))}, ...)"
            )
        return np.array([lookup[int(i)] for i in ids], dtype=np.int64)


def load(spec: SliceSpec) -> Slice:
    if spec.dataset == "mnist":
        images, labels = data.load_mnist(spec.split)
        ids = stratified_ids(labels, spec.size, spec.seed)
        return Slice(spec, ids, labels[ids], images=images[ids])
    texts, labels = data.load_imdb(spec.split)
    ids = stratified_ids(labels, spec.size, spec.seed)
    return Slice(spec, ids, labels[ids], texts=tuple(texts[i] for i in ids))
