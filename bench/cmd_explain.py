"""`bench explain`: explain a few samples of the fixed test slice with one explainer, write them to
an .npz file and, with --plot, draw them.

The .npz holds model, explainer, params (JSON), seed, sample_ids, labels, targets,
probabilities, inputs, tokens (text only) and either attributions (B, *feature_shape) or, for
explanation by example, example_ids and similarities (B, k); then the explainer's records under
their own names (Anchor: anchor_features (B, S) padded with -1, anchor_precision,
anchor_coverage, anchor_size). Strings are stored as numpy unicode arrays, so the file loads
with `np.load(path)` (no pickle).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from explainbench.bench.cli_options import DataDir, Plugins, setup
from explainbench.core.errors import BenchError

TARGETS = ("predicted", "label")
SLICES = {"image": "mnist-test", "text": "imdb-test"}
DEFAULT_N = 4


def parse_params(items: list[str] | None) -> dict:
    """`k=v` pairs; values are read as YAML scalars (50 -> int, 0.1 -> float, true -> bool)."""
    import yaml

    params = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise BenchError(f"--param expects key=value, got {item!r}")
        try:
            params[key.strip()] = yaml.safe_load(value)
        except yaml.YAMLError:
            params[key.strip()] = value
    return params


def parse_ids(text: str) -> list[int]:
    try:
        ids = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise BenchError(f"--ids expects comma-separated integers, got {text!r}") from None
    if not ids:
        raise BenchError("--ids is empty")
    return ids


def explain(
    model: str = typer.Option(..., "--model", "-m", help="Model name (see `bench list models`)."),
    explainer: str = typer.Option(..., "--explainer", "-e", help="Explainer name (see `bench list explainers`)."),
    out: Path = typer.Option(..., "--out", "-o", help="Output .npz file."),
    seed: int = typer.Option(0, "--seed", min=0, help="Seed of stochastic explainers."),
    n: Optional[int] = typer.Option(None, "--n", min=1, help=f"Explain the first N samples of the test slice (default {DEFAULT_N})."),
    ids: Optional[str] = typer.Option(None, "--ids", help="Explain these sample ids of the test slice, e.g. 3,17."),
    target: str = typer.Option("predicted", "--target", help="Class to explain: predicted or label."),
    param: Optional[list[str]] = typer.Option(None, "--param", "-p", help="Explainer parameter key=value (repeatable)."),
    plot: Optional[Path] = typer.Option(None, "--plot", help="Also draw the explanations to this PNG."),
    data_dir: Optional[Path] = DataDir,
    plugin: Optional[list[str]] = Plugins,
    device: str = typer.Option("auto", "--device", help="auto, cpu or cuda."),
    batch_size: int = typer.Option(256, "--batch-size", min=1, help="Model evaluations per forward batch."),
) -> None:
    """Explain samples of the fixed test slice; write an .npz and optionally a PNG."""
    from explainbench import explainers, models
    from explainbench.core import slices
    from explainbench.core.errors import UnknownNameError

    setup(data_dir, plugin)
    # Every argument is checked before anything is loaded.
    models.spec(model)
    explainer_cls = explainers.get_class(explainer)
    if target not in TARGETS:
        raise UnknownNameError("target", target, list(TARGETS))
    if n is not None and ids is not None:
        raise BenchError("give either --n or --ids, not both")
    if n is not None and n < 1:
        raise BenchError(f"--n must be at least 1, got {n}")
    wanted_ids = parse_ids(ids) if ids is not None else None
    method = explainers.get(explainer, batch_size=batch_size, **parse_params(param))
    task = models.task_of(model)
    if task.modality not in explainer_cls.modalities:
        raise BenchError(method.supports(None, task))
    if out.suffix != ".npz":
        raise BenchError(f"--out must be an .npz file, got {out}")

    full = slices.load(slices.named(SLICES[task.modality]))
    if wanted_ids is not None:
        positions = full.positions_of(wanted_ids)
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
    import torch

    device_ = next(net.parameters()).device
    inputs = task.inputs(chunk).to(device_)
    labels = torch.as_tensor(chunk.labels, device=device_).long()
    probabilities = task.probabilities(net, inputs, batch_size)
    targets = probabilities.argmax(1) if target == "predicted" else labels
    result, records = method.explain_with_records(net, task, inputs, targets, seed=seed,
                                                  sample_ids=chunk.ids)

    arrays = _arrays(model, method, seed, chunk, labels, targets, probabilities, inputs, task, result)
    arrays |= {name: value.cpu().numpy() for name, value in records.items()}
    out.parent.mkdir(parents=True, exist_ok=True)
    import numpy as np

    np.savez_compressed(out, **arrays)
    if plot is not None:
        draw(plot, arrays, task)
    _report(arrays, out, plot)


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


def _titles(arrays) -> list[str]:
    titles = []
    for i, sid in enumerate(arrays["sample_ids"]):
        t = int(arrays["targets"][i])
        p = float(arrays["probabilities"][i, t])
        titles.append(f"id {sid} · label {arrays['labels'][i]} · target {t} (p={p:.2f})")
    return titles


def draw(path: Path, arrays: dict, task) -> Path:
    """The picture for an .npz written by `bench explain` (the arrays as loaded)."""
    import numpy as np
    import torch

    from explainbench.bench import visualize

    titles = _titles(arrays)
    name = f"{arrays['model']} · {arrays['explainer']} · seed {int(arrays['seed'])}"
    if "example_ids" in arrays:
        train, _ = task.train_split()
        neighbour_ids = arrays["example_ids"]
        if task.modality == "image":
            neighbours = train[torch.as_tensor(neighbour_ids)][:, :, 0].numpy()
            return visualize.image_examples(path, arrays["inputs"][:, 0], neighbours,
                                            arrays["similarities"], neighbour_ids, titles, name)
        words = [_words(torch.as_tensor(row), task) for row in arrays["inputs"]]
        neighbours = [[_words(train[int(j)], task) for j in row] for row in neighbour_ids]
        return visualize.text_examples(path, words, neighbours, arrays["similarities"],
                                       neighbour_ids, [f"{name} · {t}" for t in titles])
    if task.modality == "image":
        return visualize.image_attributions(path, arrays["inputs"][:, 0], arrays["attributions"],
                                            titles, name)
    words, values = [], []
    for row, tokens, attribution in zip(arrays["inputs"], arrays["tokens"], arrays["attributions"]):
        keep = task.feature_mask(torch.as_tensor(row)[None])[0].numpy()
        words.append([str(t) for t in np.asarray(tokens)[keep]])
        values.append(np.asarray(attribution)[keep])
    return visualize.text_attributions(path, words, values, [f"{name} · {t}" for t in titles])


def _words(ids, task) -> list[str]:
    """The words of one id row ([CLS] and [PAD] left out)."""
    return task.tokens(ids[task.feature_mask(ids[None])[0]])


def _report(arrays, out: Path, plot: Optional[Path]) -> None:
    from rich.console import Console

    console = Console()
    kind = "example sets" if "example_ids" in arrays else "attributions"
    console.print(f"[green]wrote[/] {len(arrays['sample_ids'])} {kind} of {arrays['explainer']} on "
                  f"{arrays['model']} -> {out}" + (f" and {plot}" if plot else ""))
