"""Run provenance: the manifest.json a run starts, and what it records of the machine and code."""

from __future__ import annotations

import platform
import socket
import subprocess
import sys
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

PACKAGES = ("explainbench-xai", "torch", "captum", "shap", "lime", "quantus", "numpy", "pandas",
            "scipy", "transformers", "tokenizers", "safetensors", "pyarrow")


def package_versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return out


def git_commit() -> str:
    root = Path(__file__).resolve().parent.parent
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True,
                                text=True, timeout=5).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return (commit + ("-dirty" if dirty else "")) if commit else "unknown"


def device_info(device) -> dict:
    import torch  # here, not at the top: the CLI imports this module and must start fast

    info = {"type": device.type, "torch_threads": torch.get_num_threads(),
            "cpu": platform.processor() or platform.machine()}
    if device.type == "cuda":
        info["name"] = torch.cuda.get_device_name(device)
        info["memory_gib"] = round(torch.cuda.get_device_properties(device).total_memory / 2**30, 1)
    return info


def start_manifest(previous: dict | None, suite, ctx, n_cells: int) -> dict:
    """A new manifest, or the previous one of a resumed run with this session appended."""
    now = datetime.now(timezone.utc).isoformat(timespec="seconds")
    from explainbench.core import plugins

    session = {"start_utc": now, "command": " ".join(sys.argv), "host": socket.gethostname(),
               "git_commit": git_commit(), "device": device_info(ctx.device),
               "plugins": [spec for spec, _ in plugins.loaded()],
               # forward rows per batch: --batch-size, else measured per model, else the default
               "forward_batches": ({"all models": ctx.batch_size} if ctx.batch_size
                                   else dict(sorted(ctx.tuned.items())))}
    if previous:
        previous.setdefault("sessions", []).append(session)
        return previous
    return {
        "suite": {"name": suite.name, "version": suite.version, "hash": suite.content_hash,
                  "source": suite.source, "description": suite.description},
        "git_commit": session["git_commit"],
        "packages": package_versions(),
        "device": session["device"],
        "seeds": sorted({s for e in suite.experiments for s in e.seeds}),
        "start_utc": now,
        "end_utc": None,
        "sessions": [session],
        "models": {},
        "slices": {},
        "cells": {"total": n_cells},
    }
