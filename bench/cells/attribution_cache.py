"""Content-addressed cache of attributions (safetensors), shared by every metric and every run.

The key covers everything an explanation depends on: the checkpoint digest, the explainer, its
parameters and the digest of its package's source files, the seed, the split and sample ids of the
chunk (so a chunk shared by two slices, e.g. the nested prefixes of `mnist-test`, is explained
once), the explained classes and the device type (the same seed draws the same numbers on any
device, but kernels differ in their last bits between CPU and GPU).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import inspect
import json
import os
from pathlib import Path

import numpy as np
import torch

from explainbench.core import paths, sealed


@functools.lru_cache(maxsize=None)
def _package_digest(folder: str) -> str:
    h = hashlib.sha256()
    for path in sorted(Path(folder).glob("*.py")):
        h.update(path.name.encode())
        h.update(path.read_bytes())
    return h.hexdigest()[:16]


def _code_digest(explainer) -> str:
    """Digest of every file of the explainer's package (its family file and the helpers it
    shares: backgrounds, seeding) and of explainbench's core (tasks' removal, superpixels, the
    surrogate machinery), so that changing the code never serves attributions computed by the
    old code."""
    from explainbench.core import tasks

    path = inspect.getsourcefile(type(explainer))
    own = _package_digest(str(Path(path).parent)) if path else ""
    return own + _package_digest(str(Path(tasks.__file__).parent))


def key(model_sha256: str, explainer, seed: int, split: str, sample_ids: np.ndarray,
        targets: torch.Tensor, device: torch.device) -> str:
    blob = json.dumps({
        "model": model_sha256,
        "explainer": explainer.name,
        "params": explainer.params_hash,
        "code": _code_digest(explainer),
        "seed": int(seed),
        "split": split,  # the samples are identified by split and id, whatever slice holds them
        "ids": [int(i) for i in sample_ids],
        "targets": [int(t) for t in targets.tolist()],
        "device": torch.device(device).type,
        "format": 2,  # 2: entries carry a digest of key and contents
    }, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()


def enabled() -> bool:
    return os.environ.get("BENCH_ATTRIBUTION_CACHE", "1") != "0"


def _path(k: str) -> Path:
    return paths.cache_dir() / "attributions" / k[:2] / f"{k}.safetensors"


RECORD = "record."  # prefix of the tensors an explainer keeps beside its map (its records)


def _damaged(k: str, why: str) -> None:
    sealed.set_aside(_path(k), "attribution cache entry", why)


def load(k: str, device, shape: tuple[int, ...] | None = None
         ) -> tuple[torch.Tensor, dict, dict[str, torch.Tensor]] | None:
    """(attributions, cost, records) of a cached explanation, or None. An entry is used only when
    its digest (key and contents: core/sealed.py), its shape (`shape`, when given) and its values
    (finite) check out; otherwise it is moved aside with one line on stderr and None is
    returned."""
    if not enabled():
        return None
    path = _path(k)
    if not path.is_file():
        return None
    try:
        tensors, meta = sealed.load(path, k)
        cost = sealed.metadata_json(meta, "cost")
    except sealed.DamagedEntry as exc:
        _damaged(k, str(exc))
        return None
    attributions = tensors.get("attributions")
    if attributions is None or (shape is not None and tuple(attributions.shape) != tuple(shape)):
        got = None if attributions is None else tuple(attributions.shape)
        _damaged(k, f"attributions of shape {got}, expected {tuple(shape)}")
        return None
    if not torch.isfinite(attributions).all():
        _damaged(k, "non-finite attributions")
        return None
    records = {name[len(RECORD):]: t.to(device) for name, t in tensors.items() if name.startswith(RECORD)}
    return attributions.to(device), cost, records


def save(k: str, attributions: torch.Tensor, cost: dict,
         records: dict[str, torch.Tensor] | None = None) -> None:
    """One file per explanation: the attributions and each record as `record.<name>`, with the
    digest of key and contents in its metadata."""
    if not enabled():
        return
    tensors = {"attributions": attributions}
    tensors |= {RECORD + name: t for name, t in (records or {}).items()}
    sealed.save(_path(k), k, tensors, {"cost": json.dumps(cost)})


class _Counter:
    rows = 0


@contextlib.contextmanager
def count_forward_passes(model: torch.nn.Module):
    """Counts model evaluations (rows through the output layer), whatever path the explainer
    takes through the model (ids, embeddings, Captum, shap)."""
    counter = _Counter()
    layer = model.get_submodule(getattr(model, "output_layer", ""))

    def hook(_module, inputs, _output):
        counter.rows += int(inputs[0].shape[0])

    handle = layer.register_forward_hook(hook)
    try:
        yield counter
    finally:
        handle.remove()
