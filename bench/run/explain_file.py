"""Explaining a few samples of the fixed test slice with one explainer into an .npz file: the
library side of `bench explain` (its picture: bench/report/pictures.py).

The .npz holds model, explainer, params (JSON), seed, sample_ids, labels, targets,
probabilities, inputs, tokens (text only) and either attributions (B, *feature_shape) or, for
explanation by example, example_ids and similarities (B, k); then the explainer's records under
their own names (Anchor: anchor_features (B, S) padded with -1, anchor_precision,
anchor_coverage, anchor_size). Strings are stored as numpy unicode arrays, so the file loads
with `np.load(path)` (no pickle).
"""

from __future__ import annotations

import io
import json
from pathlib import Path

from explainbench.bench.cells.spec import TARGETS
from explainbench.core.errors import BenchError

SLICES = {"image": "mnist-test", "text": "imdb-test"}
DEFAULT_N = 4


def explain_samples(model: str, explainer: str, out: Path, *, seed: int = 0, n: int | None = None,
                    ids: list[int] | None = None, target: str = "predicted",
                    params: dict | None = None, device: str = "auto",
                    batch_size: int = 256) -> dict:
    """Explain the first `n` samples (or the sample `ids`) of the model's test slice and write
    them to `out` (.npz, no pickles); returns the arrays written. Every argument is checked
    before anything is loaded."""
    from explainbench import explainers, models
    from explainbench.bench.cells.context import explained_classes
    from explainbench.core import slices
    from explainbench.bench.store import atomic_write_bytes, check_output_file
    from explainbench.core.errors import UnknownNameError

    models.spec(model)
    explainer_cls = explainers.get_class(explainer)
    if target not in TARGETS:
        raise UnknownNameError("target", target, list(TARGETS))
    if n is not None and ids is not None:
        raise BenchError("give either --n or --ids, not both")
    if n is not None and n < 1:
        raise BenchError(f"--n must be at least 1, got {n}")
    method = explainers.get(explainer, batch_size=batch_size, **(params or {}))
    task = models.task_of(model)
    if task.modality not in explainer_cls.modalities:
        raise BenchError(method.supports(None, task))
    check_output_file(out, "--out", (".npz",))

    full = slices.load(slices.named(SLICES[task.modality]))
    if ids is not None:
        positions = full.positions_of(ids)
    else:
        count = DEFAULT_N if n is None else n
        if count > len(full):
            raise BenchError(f"--n {count} is more than the {len(full)} samples of {full.spec.label}")
        positions = list(range(count))
    chunk = full.subset(positions)

    net = models.load(model, device=device)
    reason = method.supports(net, task)
    if reason:
        raise BenchError(reason)
    import numpy as np
    import torch

    device_ = next(net.parameters()).device
    inputs = task.inputs(chunk).to(device_)
    labels = torch.as_tensor(chunk.labels, device=device_).long()
    probabilities = task.probabilities(net, inputs, batch_size)
    targets = explained_classes(target, probabilities.argmax(1), labels)
    result, records = method.explain_with_records(net, task, inputs, targets, seed=seed,
                                                  sample_ids=chunk.ids)

    arrays = _arrays(model, method, seed, chunk, labels, targets, probabilities, inputs, task, result)
    arrays |= {name: value.cpu().numpy() for name, value in records.items()}
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    atomic_write_bytes(out, buffer.getvalue())  # a refused write: exit 5, nothing half-written
    return arrays


def _arrays(model, method, seed, chunk, labels, targets, probabilities, inputs, task, result) -> dict:
    import numpy as np

    arrays = {
        "model": np.array(model),
        "explainer": np.array(method.name),
        "params": np.array(json.dumps(method.params, sort_keys=True, default=str)),
        "seed": np.array(int(seed), dtype=np.int64),
        "sample_ids": np.asarray(chunk.ids, dtype=np.int64),
        "labels": labels.cpu().numpy().astype(np.int64),
        "targets": targets.cpu().numpy().astype(np.int64),
        "probabilities": probabilities.cpu().numpy().astype(np.float32),
        "inputs": inputs.cpu().numpy().astype(np.float32 if task.modality == "image" else np.int64),
    }
    if task.modality == "text":
        arrays["tokens"] = np.array([task.tokens(row) for row in inputs.cpu()], dtype=str)
    if method.output == "examples":
        arrays["example_ids"] = result.ids.cpu().numpy().astype(np.int64)
        arrays["similarities"] = result.similarity.cpu().numpy().astype(np.float32)
    else:
        arrays["attributions"] = result.cpu().numpy().astype(np.float32)
    return arrays
