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

from explainbench.core import paths


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


def _digest(k: str, tensors: dict[str, torch.Tensor]) -> str:
    """SHA-256 over the entry's key and every tensor (name, dtype, shape, bytes): an entry moved
    to another key, edited, or truncated no longer matches."""
    h = hashlib.sha256(k.encode())
    for name in sorted(tensors):
        t = tensors[name].detach().cpu().contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.numpy().tobytes())
    return h.hexdigest()


def _damaged(k: str, why: str) -> None:
    """One line on stderr; the entry is moved aside (never deleted) and computed again."""
    import sys

    path = _path(k)
    try:
        os.replace(path, path.with_name(path.name + ".damaged"))
    except OSError:
        pass
    print(f"damaged attribution cache entry {path.name}: {why}; computing it again", file=sys.stderr)


def load(k: str, device, shape: tuple[int, ...] | None = None
         ) -> tuple[torch.Tensor, dict, dict[str, torch.Tensor]] | None:
    """(attributions, cost, records) of a cached explanation, or None. An entry is used only when
    its digest (key and contents), its shape (`shape`, when given) and its values (finite) check
    out; otherwise it is moved aside with one line on stderr and None is returned."""
    if not enabled():
        return None
    path = _path(k)
    if not path.is_file():
        return None
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            tensors = {name: f.get_tensor(name) for name in f.keys()}
        cost = json.loads(meta.get("cost", "{}"))
    except Exception as exc:  # unreadable: truncated, not safetensors, bad metadata
        _damaged(k, f"unreadable ({type(exc).__name__})")
        return None
    if meta.get("sha256") != _digest(k, tensors):
        _damaged(k, "its contents do not match its digest (edited, corrupted or another entry's)")
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
    from safetensors.torch import save_file

    path = _path(k)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tensors = {"attributions": attributions.detach().cpu().contiguous()}
    tensors |= {RECORD + name: t.detach().cpu().contiguous() for name, t in (records or {}).items()}
    save_file(tensors, str(tmp), metadata={"cost": json.dumps(cost), "sha256": _digest(k, tensors)})
    os.replace(tmp, path)


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
