"""report.html: one self-contained page (images embedded) that opens from disk in any browser.

Sections, always present (with a note when the run has nothing for them): manifest, leaderboards,
curves, stability, background, sanity, agreement, correct-vs-wrong, gallery, failures.
"""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path

import numpy as np
import pandas as pd

from explainbench.bench.store import atomic_write_bytes

SECTIONS = ("manifest", "leaderboards", "curves", "stability", "background", "sanity",
            "agreement", "correct-vs-wrong", "gallery", "failures")

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;color:#1f2328}
header{background:#0d1117;color:#f0f6fc;padding:1.2rem 2rem}header h1{margin:0 0 .3rem}
nav{position:sticky;top:0;background:#f6f8fa;border-bottom:1px solid #d0d7de;padding:.5rem 2rem}
nav a{margin-right:1rem;color:#0969da;text-decoration:none}
section{padding:1rem 2rem;border-bottom:1px solid #eaeef2}
table{border-collapse:collapse;font-size:.8rem;margin:.5rem 0 1rem}
th,td{border:1px solid #d0d7de;padding:.25rem .45rem;text-align:right}
th{background:#f6f8fa}td:first-child,th:first-child{text-align:left}
td.best{font-weight:700;background:#dafbe1}td.floor{color:#6e7781;font-style:italic}
img{max-width:100%;margin:.4rem 0;border:1px solid #eaeef2}
.figs{display:flex;flex-wrap:wrap;gap:.6rem}.figs img{max-width:48%}
.note{color:#6e7781}.tok{padding:0 .12rem;border-radius:.2rem}
.review{line-height:1.9;font-size:.85rem;margin:.4rem 0 1rem;max-width:70rem}
code,pre{font-size:.75rem}
"""

SCRIPT = """
document.addEventListener('DOMContentLoaded', function () {
  var sections = document.querySelectorAll('section');
  document.body.setAttribute('data-sections', String(sections.length));
  document.body.setAttribute('data-ready', '1');
});
"""


def _img(path: Path) -> str:
    data = base64.b64encode(path.read_bytes()).decode()
    return f'<img alt="{html.escape(path.stem)}" src="data:image/png;base64,{data}">'


def _figures(run_dir: Path, prefix: str) -> str:
    pngs = sorted((run_dir / "plots").glob(f"{prefix}-*.png"))
    return f'<div class="figs">{"".join(_img(p) for p in pngs)}</div>' if pngs else ""


def _table(frame: pd.DataFrame, classes: pd.DataFrame | None = None) -> str:
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in frame.columns)
    body = []
    for i, row in enumerate(frame.itertuples(index=False)):
        cells = []
        for j, value in enumerate(row):
            cls = "" if classes is None else classes.iat[i, j]
            text = f"{value:.4g}" if isinstance(value, (float, np.floating)) else str(value)
            cells.append(f'<td class="{cls}">{html.escape(text)}</td>')
        body.append(f"<tr>{''.join(cells)}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _note(text: str) -> str:
    return f'<p class="note">{html.escape(text)}</p>'


def manifest_section(run_dir: Path) -> str:
    manifest = json.loads((run_dir / "manifest.json").read_text())
    suite = manifest.get("suite", {})
    facts = pd.DataFrame([
        ("suite", f"{suite.get('name')} v{suite.get('version')} (hash {suite.get('hash')})"),
        ("git commit", manifest.get("git_commit")),
        ("device", json.dumps(manifest.get("device"))),
        ("start / end (UTC)", f"{manifest.get('start_utc')} / {manifest.get('end_utc')}"),
        ("seeds", ", ".join(map(str, manifest.get("seeds", [])))),
        ("cells", json.dumps(manifest.get("cells"))),
    ] + [(f"model {k}", f"{v.get('checkpoint_sha256', '')[:16]}… accuracy {v.get('test_accuracy')}")
         for k, v in manifest.get("models", {}).items()]
      + [(f"slice {k}", v) for k, v in manifest.get("slices", {}).items()]
      + [(f"package {k}", v) for k, v in manifest.get("packages", {}).items()],
        columns=["", "value"])
    raw = html.escape(json.dumps(manifest, indent=2, sort_keys=True))
    return _table(facts) + f"<details><summary>manifest.json</summary><pre>{raw}</pre></details>"


def leaderboard_section(run_dir: Path) -> str:
    files = sorted((run_dir / "leaderboard").glob("*.csv"))
    if not files:
        return _note("No leaderboard: this run scored no faithfulness metrics.")
    parts = []
    for path in files:
        board = pd.read_csv(path)
        parts.append(f"<h3>{html.escape(path.stem)}</h3>")
        parts.append(_pivot(board))
        parts.append(f'<p class="note">Mean over samples [95% bootstrap CI] (rank). Bold: best; '
                     f'*: significantly different from the best (paired Wilcoxon, Holm, α=0.05); '
                     f'italic: the random floor. Full table: leaderboard/{html.escape(path.name)}</p>')
    return "".join(parts)


def _pivot(board: pd.DataFrame) -> str:
    metrics = sorted(board["metric"].unique())
    explainers = (board.groupby("explainer")["mean_faithfulness_rank"].first()
                  .sort_values(na_position="last").index.tolist())
    rows, classes = [], []
    for name in explainers:
        row, cls = [name], ["floor" if name.startswith("random") else ""]
        for metric in metrics:
            hit = board[(board["explainer"] == name) & (board["metric"] == metric)]
            if hit.empty:
                row.append("")
                cls.append("")
                continue
            r = hit.iloc[0]
            star = "*" if r["different_from_best"] else ""
            row.append(f"{r['mean']:.3f} [{r['ci_low']:.3f}, {r['ci_high']:.3f}] ({int(r['rank'])}){star}")
            cls.append("best" if r["best"] else cls[0])
        r = board[board["explainer"] == name].iloc[0]
        rank = r.get("mean_faithfulness_rank")
        row.append("" if pd.isna(rank) else f"{rank:.2f}")
        cls.append("")
        for col in ("seconds_per_explanation", "forward_passes_per_explanation"):
            value = r.get(col)
            row.append("" if value is None or pd.isna(value) else f"{value:.3g}")
            cls.append("")
        rows.append(row)
        classes.append(cls)
    header = (["explainer"] + [f"{m} ({'↑' if board[board.metric == m].higher_is_better.iloc[0] else '↓'})"
                               for m in metrics]
              + ["mean faithfulness rank", "s / explanation", "forward passes / explanation"])
    return _table(pd.DataFrame(rows, columns=header), pd.DataFrame(classes))


def study_section(run_dir: Path, name: str, blurb: str) -> str:
    path = run_dir / f"{name}.csv"
    figures = _figures(run_dir, name) + (_figures(run_dir, "budget") if name == "stability" else "")
    if not path.is_file() and not figures:
        return _note(f"This run has no {name} study.")
    table = _table(pd.read_csv(path)) if path.is_file() else ""
    return f"<p>{html.escape(blurb)}</p>{table}{figures}"


def agreement_section(run_dir: Path) -> str:
    files = sorted((run_dir / "agreement").glob("*.csv")) if (run_dir / "agreement").is_dir() else []
    figures = _figures(run_dir, "agreement")
    if not files and not figures:
        return _note("This run has no agreement study.")
    tables = "".join(f"<h3>{html.escape(p.stem)}</h3>{_table(pd.read_csv(p))}" for p in files)
    return figures + tables


def correct_vs_wrong_section(run_dir: Path) -> str:
    path = run_dir / "correct_vs_wrong.csv"
    table = pd.read_csv(path) if path.is_file() else pd.DataFrame()
    table = table[table["n_wrong"] > 0] if not table.empty else table
    if table.empty:
        return _note("Every explained prediction in this run was correct: nothing to split.")
    return ("<p>Are explanations as faithful when the model is wrong? Each score's mean over "
            "correctly and wrongly predicted samples, their difference and a two-sided "
            "Mann-Whitney U test.</p>" + _table(table))


def gallery_section(run_dir: Path) -> str:
    from explainbench.bench import gallery

    parts = [_figures(run_dir, "gallery")]
    for (task, model), items in gallery.load(run_dir).items():
        if task != "imdb":
            continue
        parts.append(f"<h3>{html.escape(model)}</h3>")
        for name in sorted(items):
            item = items[name]
            parts.append(f"<h4>{html.escape(name)}</h4>")
            for r in range(min(3, len(item["sample_ids"]))):
                parts.append(_highlighted_review(item["inputs"][r], item["attributions"][r],
                                                 int(item["sample_ids"][r])))
    if not any(parts):
        return _note("No gallery: this run explained no samples.")
    return "".join(parts)


def _highlighted_review(ids: np.ndarray, attributions: np.ndarray, sample_id: int,
                        max_tokens: int = 80) -> str:
    from explainbench.core.tokenizer import load_tokenizer

    tok = load_tokenizer()
    words = tok.words(ids)
    bound = float(np.abs(attributions).max()) or 1.0
    spans = []
    for word, token_id, a in list(zip(words, ids, attributions))[1:max_tokens + 1]:
        if int(token_id) == tok.pad_id:
            break
        strength = min(1.0, abs(float(a)) / bound)
        colour = f"rgba(220,38,38,{strength:.2f})" if a > 0 else f"rgba(37,99,235,{strength:.2f})"
        spans.append(f'<span class="tok" style="background:{colour}" title="{a:.3g}">'
                     f"{html.escape(word)}</span>")
    return f'<div class="review"><b>id {sample_id}:</b> {" ".join(spans)} …</div>'


def failures_section(run_dir: Path) -> str:
    path = run_dir / "failures.csv"
    failures = pd.read_csv(path) if path.is_file() and path.stat().st_size > 1 else pd.DataFrame()
    if failures.empty:
        return _note("No cell failed.")
    keep = [c for c in ("kind", "experiment", "model", "explainer", "seed", "chunk", "error_type",
                        "error") if c in failures.columns]
    return _table(failures[keep])


def write(run_dir: str | Path) -> Path:
    run_dir = Path(run_dir)
    manifest = json.loads((run_dir / "manifest.json").read_text())
    title = f"explainbench — {manifest.get('suite', {}).get('name', run_dir.name)}"
    bodies = {
        "manifest": manifest_section(run_dir),
        "leaderboards": leaderboard_section(run_dir),
        "curves": _figures(run_dir, "curves") or _note("No deletion/insertion curves in this run."),
        "stability": study_section(run_dir, "stability", "How much do explanations move when only "
                                   "the seed changes? Per sample: mean pairwise Spearman, top-k "
                                   "intersection, sign agreement, per-feature coefficient of variation."),
        "background": study_section(run_dir, "background", "How large must the background set be, "
                                    "and how should it be chosen? Convergence to the largest random "
                                    "background, change in deletion/insertion, cost."),
        "sanity": study_section(run_dir, "sanity", "Does the explanation depend on the model's "
                                "weights? Similarity to the explanation of progressively randomised "
                                "models (Adebayo et al. 2018)."),
        "agreement": agreement_section(run_dir),
        "correct-vs-wrong": correct_vs_wrong_section(run_dir),
        "gallery": gallery_section(run_dir),
        "failures": failures_section(run_dir),
    }
    nav = "".join(f'<a href="#{s}">{s}</a>' for s in SECTIONS)
    sections = "".join(f'<section id="{s}"><h2>{s.capitalize().replace("-", " ")}</h2>{bodies[s]}'
                       "</section>" for s in SECTIONS)
    suite = manifest.get("suite", {})
    page = (f"<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{html.escape(title)}</title><style>{CSS}</style>"
            f"<script>{SCRIPT}</script></head><body>"
            f"<header><h1>{html.escape(title)}</h1><div>{html.escape(suite.get('description') or '')}"
            f"</div></header><nav>{nav}</nav>{sections}</body></html>")
    path = run_dir / "report.html"
    atomic_write_bytes(path, page.encode("utf-8"))
    return path
