"""The gallery of report.html: what the numbers are about, every explainer's map of a few samples."""

from __future__ import annotations

import numpy as np

from explainbench.bench.present.finding import is_control
from explainbench.bench.present.html import cell, esc, figures, note, table

TEXT_SAMPLES = 2
TEXT_WORDS = 60
LEVELS = 5  # colour steps of |attribution| / the sample's largest


def gallery_section(folder) -> str:
    run_dir = folder.root
    entries = folder.gallery
    parts = []
    for (task, model), items in sorted(entries.items()):
        if task == "mnist":
            figs = figures(run_dir, f"gallery-{task}-{model}-")
            if figs:
                parts.append(f"<h3>{esc(model)}</h3>{figs}")
        elif task == "imdb":
            parts.append(_reviews(folder, task, model, items, open_=not any("<details" in p for p in parts)))
    if not parts:
        return note("No gallery: this run explained no samples.")
    return ("<p>A few test samples, every explainer's map side by side, best explainers first (by the "
            "leaderboard's mean faithfulness rank). Red: evidence for the explained class, blue: "
            "against; each map scaled by its own largest value.</p>" + "".join(parts))


def _reviews(folder, task: str, model: str, items: dict, open_: bool) -> str:
    from explainbench.bench.report.gallery_figures import explainer_order
    from explainbench.core.tokenizer import load_tokenizer

    tok = load_tokenizer()
    order = explainer_order(folder, task, model,
                                    [k for k in items if items[k]["attributions"].ndim == 2])
    if not order:
        return ""
    first = items[order[0][0]]
    blocks = []
    for r in range(min(TEXT_SAMPLES, len(first["sample_ids"]))):
        ids = first["inputs"][r]
        rows = [[cell(name, css="control" if is_control(name) else ""),
                 cell(_highlighted(tok, ids, items[key]["attributions"][r]), raw=True)]
                for key, name in order]
        target = int(first["targets"][r])
        blocks.append(f"<h4>review id {int(first['sample_ids'][r])}, explained class {target} "
                      f"(first {TEXT_WORDS} words)</h4>" + table(["explainer", "review"], rows, "review"))
    return (f"<details{' open' if open_ else ''}><summary><b>{esc(model)}</b>: {len(blocks)} reviews"
            f"</summary>{''.join(blocks)}</details>")


def _highlighted(tok, ids: np.ndarray, attributions: np.ndarray) -> str:
    words = tok.words(ids)
    pairs = [(w, a) for w, t, a in zip(words, ids, attributions) if int(t) != tok.pad_id][1:TEXT_WORDS + 1]
    bound = max((abs(float(a)) for _, a in pairs), default=0.0) or 1.0
    spans = []
    for word, a in pairs:
        level = int(np.ceil(LEVELS * min(1.0, abs(float(a)) / bound)))
        css = f"{'p' if a > 0 else 'n'}{level}" if level else ""
        spans.append(f'<span class="{css}">{esc(word)}</span>' if css else esc(word))
    return " ".join(spans)
