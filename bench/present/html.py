"""The pieces report.html is made of: embedded figures, sortable tables, notes and links.

Tables are sortable by a click on a column head (the page's inline script, no network): a cell
sorts by its `data-v` value when it has one (numbers), else by its text.
"""

from __future__ import annotations

import base64
import html
from pathlib import Path

import numpy as np
import pandas as pd


def esc(text) -> str:
    return html.escape(str(text))


def breakable(text: str, longest: int = 13) -> str:
    """An identifier that may wrap after its underscores and brackets, and inside words longer
    than `longest` (soft hyphens: the browser's hyphenation dictionaries are not there offline)."""
    import re

    def soften(word: str) -> str:
        if len(word) <= longest:
            return word
        cut = len(word) // 2
        return word[:cut] + "\u00ad" + word[cut:]

    out = re.sub(r"[A-Za-z]+", lambda m: soften(m.group(0)), str(text))
    out = esc(out)
    for ch in ("_", "[", ","):
        out = out.replace(ch, ch + "<wbr>")
    return out


def figure(path: Path, alt: str = "", width: int | None = None) -> str:
    """The smaller of the figure's PNG and SVG, embedded as a data URI."""
    candidates = [p for p in (path.with_suffix(".png"), path.with_suffix(".svg")) if p.is_file()]
    if not candidates:
        return ""
    chosen = min(candidates, key=lambda p: p.stat().st_size)
    mime = "image/svg+xml" if chosen.suffix == ".svg" else "image/png"
    data = base64.b64encode(chosen.read_bytes()).decode()
    style = f' style="max-width:min(100%,{width}px)"' if width else ""
    return (f'<img alt="{esc(alt or path.stem)}" title="plots/{esc(chosen.name)}"{style} '
            f'src="data:{mime};base64,{data}">')


def figures(run_dir: Path, prefix: str, width: int | None = None, css: str = "figs") -> str:
    stems = sorted({p.with_suffix("") for p in (run_dir / "plots").glob(f"{prefix}*.*")
                    if p.suffix in (".png", ".svg")}) if (run_dir / "plots").is_dir() else []
    if not stems:
        return ""
    return f'<div class="{css}">' + "".join(figure(s, width=width) for s in stems) + "</div>"


def note(text: str) -> str:
    return f'<p class="note">{esc(text)}</p>'


def link(run_dir: Path, relpath: str, text: str | None = None) -> str:
    """A link to a file of the run folder (relative: the page lives in the run folder)."""
    if not (run_dir / relpath).exists():
        return esc(text or relpath)
    return f'<a href="{esc(relpath)}">{esc(text or relpath)}</a>'


def short(x: float) -> str:
    """A table's number: three significant digits, two in exponent form."""
    if x is None or not np.isfinite(x):
        return ""
    if 1e3 <= abs(x) < 1e7:
        return f"{x:,.0f}"
    return f"{x:.3g}" if x == 0 or 1e-3 <= abs(x) < 1e3 else f"{x:.2g}"


def fmt(value) -> str:
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else ""
    if isinstance(value, (float, np.floating)):
        return "" if np.isnan(value) else f"{value:.3g}"
    return str(value)


def cell(text: str, sort_value=None, css: str = "", title: str = "", raw: bool = False) -> str:
    attrs = ""
    if css:
        attrs += f' class="{css}"'
    if title:
        attrs += f' title="{esc(title)}"'
    if sort_value is not None and not (isinstance(sort_value, float) and np.isnan(sort_value)):
        attrs += f' data-v="{float(sort_value):.6g}"'
    return f"<td{attrs}>{text if raw else esc(text)}</td>"


def interval_cell(r) -> str:
    """A mean with its 95% interval in small print (a table row with mean, ci_low, ci_high)."""
    return cell(f"{r['mean']:.3g} <small>[{r['ci_low']:.3g}, {r['ci_high']:.3g}]</small>", r["mean"], raw=True)


def table(head: list[str], rows: list[list[str]], css: str = "sortable",
          groups: list[tuple[str, int]] | None = None) -> str:
    """head: column titles (HTML allowed); rows: lists of <td> strings from `cell`; groups: an
    optional row above the titles, (label, number of columns) left to right. Every title knows
    its column (data-col), so sorting works under a grouped head too."""
    th = "".join(f'<th data-col="{i}">{h}</th>' for i, h in enumerate(head))
    top = ""
    if groups:
        top = "<tr class=\"groups\">" + "".join(
            f'<th colspan="{n}">{esc(label)}</th>' if label else f'<td colspan="{n}"></td>'
            for label, n in groups) + "</tr>"
    body = "".join(f"<tr>{''.join(r)}</tr>" for r in rows)
    return (f'<div class="wide"><table class="{css}"><thead>{top}<tr>{th}</tr></thead>'
            f"<tbody>{body}</tbody></table></div>")


def frame_table(frame: pd.DataFrame, css: str = "sortable") -> str:
    """A DataFrame as a sortable table: numbers sort as numbers."""
    rows = []
    for record in frame.itertuples(index=False):
        cells = []
        for value in record:
            number = (isinstance(value, (int, float, np.integer, np.floating))
                      and not isinstance(value, (bool, np.bool_)))
            cells.append(cell(fmt(value), float(value) if number else None))
        rows.append(cells)
    return table([breakable(c) for c in frame.columns], rows, css)
