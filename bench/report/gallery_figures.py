"""The report's gallery: per MNIST model and sample, every explainer's map side by side, in the
leaderboard's order, from the gallery parts the scores cells keep (bench/cells/gallery.py)."""

from __future__ import annotations

from pathlib import Path

def explainer_order(folder, task: str, model: str, keys: list[str]) -> list[tuple[str, str]]:
    """[(gallery key, leaderboard label)] in the leaderboard's order (mean faithfulness rank,
    controls last), then any others by name. Gallery keys are `name(params)`; a leaderboard
    labels an explainer by its name alone unless it runs with several settings."""
    from explainbench.bench.report.overview_figures import row_order

    board = folder.board(task, model)
    ranked = row_order(board) if board is not None else []
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


def figures(folder, samples: int = 3, columns: int = 8) -> list[Path]:
    """Per MNIST model and sample, one figure: the digit, then every explainer's map over it
    (red: for the explained class, blue: against; each map scaled by its own largest value)."""
    import numpy as np

    from explainbench.bench.present.figure import pyplot, save

    out = []
    for (task, model), items in folder.gallery.items():
        if task != "mnist":
            continue
        plt, _ = pyplot()
        order = explainer_order(folder, task, model, [k for k in items if items[k]["attributions"].ndim == 3])
        if not order:
            continue
        first = items[order[0][0]]
        facts = sample_facts(folder.scores, task, model)
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
            out += save(fig, folder.root / "plots", f"gallery-{task}-{model}-{sample_id}", dpi=90)
    return out
