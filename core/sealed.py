"""Sealed cache files: safetensors whose metadata carries a SHA-256 over the entry's key and every
tensor, so that an entry that was truncated, edited, or copied from another key is caught on load
instead of being scored. The attribution cache and explanation by example's activations cache
both keep their entries this way; neither trusts a file it did not seal.

A damaged entry is moved aside (`<name>.damaged`, never deleted) with one line on stderr, and
the caller computes it again."""

from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path

import torch


class DamagedEntry(Exception):
    """A cache entry that must not be used; the message says why."""


def digest(key: str, tensors: dict[str, torch.Tensor]) -> str:
    """SHA-256 over the key and each tensor's name, dtype, shape and bytes, in name order."""
    h = hashlib.sha256(key.encode())
    for name in sorted(tensors):
        t = tensors[name].detach().cpu().contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.numpy().tobytes())
    return h.hexdigest()


def save(path: Path, key: str, tensors: dict[str, torch.Tensor],
         metadata: dict[str, str] | None = None) -> None:
    """Write atomically (temporary file, rename) with the seal in the metadata."""
    from safetensors.torch import save_file

    tensors = {name: t.detach().cpu().contiguous() for name, t in tensors.items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    save_file(tensors, str(tmp), metadata={**(metadata or {}), "sha256": digest(key, tensors)})
    os.replace(tmp, path)


def load(path: Path, key: str) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """(tensors on the CPU, metadata) of an entry whose seal matches `key` and its contents;
    DamagedEntry otherwise."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            tensors = {name: f.get_tensor(name) for name in f.keys()}
    except Exception as exc:  # truncated, not safetensors, bad header: the library's own kinds
        raise DamagedEntry(f"unreadable ({type(exc).__name__})") from None
    if meta.get("sha256") != digest(key, tensors):
        raise DamagedEntry("its contents do not match its digest (edited, corrupted or another "
                           "entry's)")
    return tensors, meta


def set_aside(path: Path, what: str, why: str) -> None:
    """Move a damaged entry to `<name>.damaged` and say so in one line on stderr."""
    try:
        os.replace(path, path.with_name(path.name + ".damaged"))
    except OSError:
        pass
    print(f"damaged {what} {path.name}: {why}; computing it again", file=sys.stderr)


def metadata_json(meta: dict[str, str], name: str) -> dict:
    """A JSON field of the metadata; DamagedEntry when it does not parse (the seal covers the
    tensors, not the metadata)."""
    try:
        value = json.loads(meta.get(name, "{}"))
    except json.JSONDecodeError:
        raise DamagedEntry(f"its {name} metadata is not JSON") from None
    if not isinstance(value, dict):
        raise DamagedEntry(f"its {name} metadata is not a JSON object")
    return value
