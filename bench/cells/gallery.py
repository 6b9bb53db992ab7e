"""A few explained samples per (model, explainer), kept in the run folder for the report's gallery:
the part file's format, written by the scores cells and read by the report.

Attributions live in the content-addressed cache outside the run folder; the report must work from
the run folder alone, so the first cell of each (model, explainer) also writes the first
`GALLERY_SIZE` samples' inputs and attributions as safetensors next to its scores part.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

GALLERY_SIZE = 6


def encode(task_name: str, model: str, explainer_label: str, inputs, attributions, sample_ids,
           targets) -> bytes:
    from safetensors.torch import save

    n = min(GALLERY_SIZE, len(inputs))
    tensors = {
        "inputs": inputs[:n].detach().cpu().contiguous(),
        "attributions": attributions[:n].detach().float().cpu().contiguous(),
        "sample_ids": torch.as_tensor(sample_ids[:n]).long(),
        "targets": targets[:n].detach().long().cpu(),
    }
    meta = {"task": task_name, "model": model, "explainer": explainer_label}
    return save(tensors, metadata={"meta": json.dumps(meta)})


def load(run_dir: Path) -> dict[tuple[str, str], dict[str, dict]]:
    """{(task, model): {explainer label: {inputs, attributions, sample_ids, targets} as numpy}}."""
    from safetensors import safe_open

    out: dict[tuple[str, str], dict[str, dict]] = {}
    for path in sorted((Path(run_dir) / "parts").glob("*.gallery.safetensors")):
        with safe_open(str(path), framework="np") as f:
            meta = json.loads(f.metadata()["meta"])
            item = {k: f.get_tensor(k) for k in f.keys()}
        out.setdefault((meta["task"], meta["model"]), {})[meta["explainer"]] = item
    return out
