"""A few explained samples per (model, explainer), kept in the run folder for the report's gallery.

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


def explainer_order(run_dir: Path, task: str, model: str, keys: list[str]) -> list[tuple[str, str]]:
    """[(gallery key, leaderboard label)] in the leaderboard's order (mean faithfulness rank,
    controls last), then any others by name. Gallery keys are `name(params)`; a leaderboard
    labels an explainer by its name alone unless it runs with several settings."""
    import pandas as pd

    from explainbench.bench.plots_overview import row_order

    path = Path(run_dir) / "leaderboard" / f"{task}-{model}.csv"
    ranked = row_order(pd.read_csv(path, comment="#")) if path.is_file() else []
    bases = {}
    for label in ranked:
        bases.setdefault(label.split("[")[0], []).append(label)
    named = {}
    for key in keys:
        base = key.split("(")[0]
        named[key] = bases[base][0] if len(bases.get(base, [])) == 1 else key
    place = {label: i for i, label in enumerate(ranked)}
    return sorted(named.items(), key=lambda kv: (place.get(kv[1], len(place)), kv[1]))


def sample_facts(scores, task: str, model: str) -> dict[int, tuple]:
    """{sample id: (label, prediction)} from the run's scores."""
    rows = scores[(scores["task"] == task) & (scores["model"] == model)]
    rows = rows.drop_duplicates("sample_id")
    return {int(r.sample_id): (int(r.label), int(r.pred)) for r in rows.itertuples()}


def figures(run_dir: Path, scores, samples: int = 3, columns: int = 8) -> list[Path]:
    """Per MNIST model and sample, one figure: the digit, then every explainer's map over it
    (red: for the explained class, blue: against; each map scaled by its own largest value)."""
    import numpy as np

    from explainbench.bench.figures import _plt, _save

    out = []
    for (task, model), items in load(run_dir).items():
        if task != "mnist":
            continue
        plt, _ = _plt()
        order = explainer_order(run_dir, task, model, [k for k in items if items[k]["attributions"].ndim == 3])
        if not order:
            continue
        first = items[order[0][0]]
        facts = sample_facts(scores, task, model)
        rows = -(-(len(order) + 1) // columns)
        for r in range(min(samples, len(first["sample_ids"]))):
            sample_id = int(first["sample_ids"][r])
            image = first["inputs"][r, 0]
            fig, axes = plt.subplots(rows, columns, figsize=(1.0 * columns, 1.3 * rows + 0.3), squeeze=False)
            label, pred = facts.get(sample_id, ("?", "?"))
            axes[0, 0].imshow(image, cmap="gray", vmin=0, vmax=1)
            axes[0, 0].set_title(f"input: {label}\npredicted {pred}", fontsize=6.5)
            for i, (key, name) in enumerate(order, start=1):
                ax = axes.flat[i]
                a = items[key]["attributions"][r]
                bound = float(np.abs(a).max()) or 1.0
                ax.imshow(image, cmap="gray", vmin=0, vmax=1, alpha=0.35)
                ax.imshow(a, cmap="RdBu_r", vmin=-bound, vmax=bound, alpha=0.85)
                ax.set_title(name, fontsize=6.5)
            for ax in axes.flat:
                ax.set_xticks([])
                ax.set_yticks([])
                ax.grid(False)
            for ax in axes.flat[len(order) + 1:]:
                ax.set_visible(False)
            fig.suptitle(f"{model}, test image id {sample_id}", fontsize=8)
            # the gap between rows keeps each title with the map under it
            fig.subplots_adjust(left=0.01, right=0.99, bottom=0.01, top=1 - 0.5 / (1.3 * rows + 0.3),
                                wspace=0.08, hspace=0.42)
            out += _save(fig, Path(run_dir) / "plots", f"gallery-{task}-{model}-{sample_id}", dpi=90)
    return out
