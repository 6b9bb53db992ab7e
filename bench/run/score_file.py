"""Scoring attributions made elsewhere (by `bench explain` or by a user's own code) with one
metric: the library side of `bench score`.

The file is the `.npz` that `bench explain` writes; only `inputs`, `sample_ids`, `targets` and
`attributions` are required (`explainer` and `params` are read when a metric re-explains).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from explainbench.core.errors import BenchError

REQUIRED = ("inputs", "sample_ids", "targets", "attributions")


@dataclass
class ScoredFile:
    rows: object  # pandas.DataFrame in store.SCORE_FILE_COLUMNS, one row per (output, sample)
    outputs: list[tuple[str, bool]]  # (output name, higher is better) in the metric's order
    metric: object  # the bound metric
    out: Path  # where the rows were written


def score_file(model: str, attributions: Path, metric: str, *, params: dict | None = None,
               steps: int | None = None, substrate: str | None = None,
               explainer: str | None = None, seed: int = 0, out: Path | None = None,
               device: str = "auto", batch_size: int = 256, name: str | None = None) -> ScoredFile:
    """Score the attributions in `attributions` on `model` with `metric`; write one row per
    sample (and output) to `out` (default <attributions>.<metric>.csv), with the method's name
    (`name`, else the file's `explainer`, else the file's stem) and the definition versions that
    `bench compare` pairs on. Every argument is checked before the model is loaded."""
    import numpy as np
    import pandas as pd
    import torch

    from explainbench import metrics, models
    from explainbench.bench.store import SCORE_FILE_COLUMNS, check_output_file, encode_params

    params = dict(params or {})
    spec = metrics.spec(metric)
    for flag, key, value in (("--steps", "steps", steps), ("--substrate", "substrate", substrate)):
        if value is not None:
            if key not in spec.defaults:
                raise BenchError(f"metric {metric!r} takes no {flag}; its parameters: "
                                 f"{', '.join(sorted(spec.defaults)) or 'none'}")
            params[key] = value
    bound = metrics.get(metric, **params)
    models.spec(model)
    task = models.task_of(model)
    reason = bound.supports(task)
    if reason:
        raise BenchError(reason)
    if bound.params.get("substrate") is not None:
        task.check_substrate(bound.params["substrate"])
    out = check_output_file(out or attributions.with_suffix(f".{metric}.csv"), "-o", (".csv",))
    arrays = read_attributions(attributions)
    if "model" in arrays and str(arrays["model"]) != model:
        raise BenchError(f"{attributions} explains model {str(arrays['model'])!r}, not {model!r}")
    check_shapes(arrays, task, attributions)
    chosen = metric_explainer(bound, arrays, explainer)
    method, method_params, method_version = method_of(arrays, attributions, name)

    net = models.load(model, device=device)
    dev = next(net.parameters()).device
    inputs = torch.as_tensor(arrays["inputs"]).to(dev)
    inputs = inputs.float() if task.modality == "image" else inputs.long()
    result = bound(net, task, inputs, torch.as_tensor(arrays["attributions"]).float().to(dev),
                   torch.as_tensor(arrays["targets"]).long().to(dev), seed=seed, explainer=chosen,
                   batch_size=batch_size)
    outputs = result.outputs(bound.spec)  # one (name, higher is better, scores, curve) per row set
    rows = pd.concat([pd.DataFrame({
        "sample_id": arrays["sample_ids"].astype(np.int64), "target": arrays["targets"].astype(np.int64),
        "metric": output, "value": values.detach().double().cpu().numpy(), "higher_is_better": higher,
        "task": task.name, "model": model, "model_sha256": net.card["checkpoint_sha256"],
        "metric_params": encode_params(bound.params), "metric_version": metrics.version_of(output),
        "seed": seed, "explainer": method, "params": method_params, "explainer_version": method_version,
    }) for output, higher, values, _ in outputs], ignore_index=True)[SCORE_FILE_COLUMNS]
    from explainbench.bench.store import atomic_write_bytes

    atomic_write_bytes(out, rows.to_csv(index=False).encode())  # a refused write: exit 5
    return ScoredFile(rows, [(output, higher) for output, higher, _, _ in outputs], bound, out)


def method_of(arrays: dict, path: Path, name: str | None) -> tuple[str, str, int]:
    """(name, parameters as JSON, definition version) of the method that made the file: a
    built-in explainer's own (the file `bench explain` wrote), else `name` or the file's stem
    at version 1, as a plugin's."""
    from explainbench import explainers
    from explainbench.bench.store import decode_params, encode_params

    recorded = str(arrays["explainer"]) if "explainer" in arrays else None
    chosen = name or recorded or path.stem
    if not chosen.strip() or any(c in chosen for c in "[]\n"):
        raise BenchError(f"--name {chosen!r}: give the method a name without brackets or line breaks")
    params = decode_params(str(arrays["params"])) if chosen == recorded and "params" in arrays else {}
    builtin = chosen == recorded and chosen in explainers.names()
    version = int(explainers.get_class(chosen).version) if builtin else 1
    return chosen, encode_params(params), version


def read_attributions(path: Path) -> dict:
    """The arrays of an attribution file, without pickles; one-line errors for what is missing."""
    import numpy as np

    if not path.is_file():
        raise BenchError(f"attribution file {path} not found")
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    except Exception as exc:  # truncated, empty, not a zip, pickled objects: all unreadable
        message = " ".join(str(exc).split())[:120] or type(exc).__name__
        raise BenchError(f"{path} is not a readable .npz attribution file ({message})") from None
    missing = [k for k in REQUIRED if k not in arrays]
    if missing:
        raise BenchError(f"{path} lacks {', '.join(missing)}; an attribution file holds "
                         f"{', '.join(REQUIRED)} (as `bench explain` writes)")
    return arrays


INTEGER = ("sample_ids", "targets")  # and text inputs: token ids


def check_values(arrays: dict, task, path: Path) -> None:
    """Types and values a score can be trusted on: numbers (ids and classes integers), finite
    attributions and inputs, token ids in the vocabulary; one line naming the array otherwise."""
    import numpy as np

    for key in REQUIRED:
        a = arrays[key]
        if a.dtype.kind not in "biuf":
            raise BenchError(f"{path}: {key} holds {a.dtype} values; expected numbers")
        if a.ndim == 0:
            raise BenchError(f"{path}: {key} is a single value; expected one entry per sample")
    integer = INTEGER + (("inputs",) if task.modality == "text" else ())
    for key in integer:
        if arrays[key].dtype.kind not in "iu":
            raise BenchError(f"{path}: {key} holds {arrays[key].dtype} values; expected integers "
                             f"({'token ids' if key == 'inputs' else 'sample ids and classes'})")
    for key in ("attributions", "inputs"):
        if arrays[key].dtype.kind == "f" and not np.isfinite(arrays[key]).all():
            raise BenchError(f"{path}: {key} holds NaN or infinite values")
    if task.modality == "text" and arrays["inputs"].size:
        vocab = task.tokenizer.vocab_size
        low, high = int(arrays["inputs"].min()), int(arrays["inputs"].max())
        if low < 0 or high >= vocab:
            raise BenchError(f"{path}: inputs hold token ids from {low} to {high}; the vocabulary "
                             f"of {task.name} has ids 0..{vocab - 1}")


def check_shapes(arrays: dict, task, path: Path) -> None:
    check_values(arrays, task, path)
    n = len(arrays["inputs"])
    inputs_shape = (n, 1, 28, 28) if task.modality == "image" else (n, *task.feature_shape)
    expected = {"inputs": inputs_shape, "sample_ids": (n,), "targets": (n,),
                "attributions": (n, *task.feature_shape)}
    for key, shape in expected.items():
        if tuple(arrays[key].shape) != shape:
            raise BenchError(f"{path}: {key} has shape {tuple(arrays[key].shape)}, expected {shape} "
                             f"for task {task.name}")
    targets = arrays["targets"]
    if targets.size and (targets.min() < 0 or targets.max() >= task.num_classes):
        raise BenchError(f"{path}: targets must be classes 0..{task.num_classes - 1} of {task.name}")


def metric_explainer(metric, arrays: dict, name: Optional[str]):
    """The explainer a re-explaining metric needs: --explainer, else the file's `explainer`."""
    if not metric.needs_explainer:
        return None
    from explainbench import explainers
    from explainbench.bench.store import decode_params

    recorded = str(arrays["explainer"]) if "explainer" in arrays else None
    name = name or recorded
    if name is None:
        raise BenchError(f"metric {metric.name!r} re-explains perturbed inputs and needs the "
                         f"explainer that made the attributions: pass --explainer NAME "
                         f"(one of {', '.join(explainers.names())})")
    params = {}
    if name == recorded and "params" in arrays:
        params = decode_params(str(arrays["params"]))
    return explainers.get(name, **params)
