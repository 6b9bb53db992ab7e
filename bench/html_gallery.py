"""The gallery (what the numbers are about), the failures and the manifest of report.html."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from explainbench.bench.findings import is_control
from explainbench.bench.html_parts import cell, esc, figures, frame_table, note, table
from explainbench.bench.provenance import describe_commits

TEXT_SAMPLES = 2
TEXT_WORDS = 60
LEVELS = 5  # colour steps of |attribution| / the sample's largest


def gallery_section(run_dir: Path, scores: pd.DataFrame | None = None) -> str:
    from explainbench.bench import gallery

    entries = gallery.load(run_dir)
    parts = []
    for (task, model), items in sorted(entries.items()):
        if task == "mnist":
            figs = figures(run_dir, f"gallery-{task}-{model}-")
            if figs:
                parts.append(f"<h3>{esc(model)}</h3>{figs}")
        elif task == "imdb":
            parts.append(_reviews(run_dir, task, model, items, open_=not any("<details" in p for p in parts)))
    if not parts:
        return note("No gallery: this run explained no samples.")
    return ("<p>A few test samples, every explainer's map side by side, best explainers first (by the "
            "leaderboard's mean faithfulness rank). Red: evidence for the explained class, blue: "
            "against; each map scaled by its own largest value.</p>" + "".join(parts))


def _reviews(run_dir: Path, task: str, model: str, items: dict, open_: bool) -> str:
    from explainbench.bench import gallery
    from explainbench.core.tokenizer import load_tokenizer

    tok = load_tokenizer()
    order = gallery.explainer_order(run_dir, task, model,
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


def failures_section(run_dir: Path) -> str:
    path = run_dir / "failures.csv"
    failures = pd.read_csv(path) if path.is_file() and path.stat().st_size > 1 else pd.DataFrame()
    if failures.empty:
        return note("No cell failed.")
    keep = [c for c in ("kind", "experiment", "model", "explainer", "seed", "chunk", "error_type",
                        "error") if c in failures.columns]
    return frame_table(failures[keep])


def manifest_section(run_dir: Path) -> str:
    manifest = json.loads((run_dir / "manifest.json").read_text())
    suite = manifest.get("suite", {})
    facts = [
        ("suite", f"{suite.get('name')} v{suite.get('version')} (hash {suite.get('hash')})"),
        ("git commit", describe_commits(manifest)),
        ("device", json.dumps(manifest.get("device"))),
        ("start / end (UTC)", f"{manifest.get('start_utc')} / {manifest.get('end_utc')}"),
        ("seeds", ", ".join(map(str, manifest.get("seeds", [])))),
        ("cells", json.dumps(manifest.get("cells"))),
    ] + [(f"model {k}", f"{v.get('checkpoint_sha256', '')[:16]}… accuracy {v.get('test_accuracy')}")
         for k, v in manifest.get("models", {}).items()] \
      + [(f"slice {k}", v) for k, v in manifest.get("slices", {}).items()] \
      + [(f"package {k}", v) for k, v in manifest.get("packages", {}).items()]
    rows = [[cell(k), cell(str(v))] for k, v in facts]
    raw = esc(json.dumps(manifest, indent=2, sort_keys=True))
    return (table(["", "value"], rows, "facts")
            + f"<details><summary>manifest.json</summary><pre>{raw}</pre></details>")
