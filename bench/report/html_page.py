"""report.html: one self-contained page (figures embedded, a little inline script, no network)
that opens from disk in any browser and answers first, then shows the evidence.

Sections, always present (with a note when the run has nothing for them): the summary (the
generated findings, id="summary"), the overview heat maps, leaderboards, curves, each study's
section (declared by the study: bench/studies/), correct vs wrong, the gallery, failures, and the
manifest last. The report's own sections live in html_summary.py, html_sections.py,
html_gallery.py and html_run.py.
"""

from __future__ import annotations

from pathlib import Path

from explainbench.bench.present.html import esc
from explainbench.bench.store import atomic_write_bytes, describe_commits

_TOKENS = "".join(
    f".p{i}{{background:rgba(220,38,38,{i / 5:.1f})}}.n{i}{{background:rgba(37,99,235,{i / 5:.1f})}}"
    for i in range(1, 6))

CSS = """
*{box-sizing:border-box}
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;color:#1f2328;
 font-size:15px;line-height:1.45}
header{background:#0d1117;color:#f0f6fc;padding:.7rem 2rem}header h1{margin:0;font-size:1.35rem}
header div{color:#9da7b3;font-size:.85rem;max-width:80rem}
nav{position:sticky;top:0;z-index:2;background:#f6f8fa;border-bottom:1px solid #d0d7de;
 padding:.35rem 2rem;font-size:.85rem}
nav a{margin-right:.9rem;color:#0969da;text-decoration:none}
section{padding:.6rem 2rem 1rem;border-bottom:1px solid #eaeef2;max-width:100%}
section>p,.findings{max-width:82rem}
h2{font-size:1.2rem;margin:.4rem 0}h3{font-size:1rem;margin:1rem 0 .3rem}h4{font-size:.9rem}
.lede{font-size:1rem}
.wide{max-width:100%;overflow-x:auto}
table{border-collapse:collapse;font-size:.78rem;margin:.3rem 0 .8rem}
th,td{border:1px solid #d0d7de;padding:.2rem .35rem;text-align:right;vertical-align:top}
th{background:#f6f8fa;font-weight:600}td:first-child,th:first-child{text-align:left}
table.sortable th[data-col]{cursor:pointer}table.sortable th[data-col]:hover{background:#eaeef2}
tr.groups th{text-align:center;background:#eaeef2}tr.groups td{border:none}
table.board{font-size:.74rem}table.board th{max-width:5.2rem}table.board td{padding:.2rem .3rem}
table.board td:first-child,table.board th:first-child{position:sticky;left:0;z-index:1;background:#fff}
table.board th:first-child{background:#f6f8fa}table.board tr.groups td:first-child{background:#fff}
table.glance{font-size:.85rem}table.glance td,table.glance th{text-align:left}
table.review td:last-child{text-align:left;line-height:1.7;max-width:70rem}
td.best,span.best{font-weight:700;background:#aceebb}td.same,span.same{background:#e6f8ea}
td.apart{background:#e6f8ea}td.below,span.below{color:#8c959f}td.control{font-style:italic;color:#57606a}
sup{font-size:.7em;color:#57606a}
img{max-width:100%;margin:.3rem 0;border:1px solid #eaeef2}
.figs{display:flex;flex-wrap:wrap;gap:.6rem;align-items:flex-start}
.figs img{max-width:calc(50% - .6rem)}
.stack img{display:block}
.note{color:#57606a;font-size:.85rem}
.findings h3{margin:.9rem 0 .2rem;font-size:.98rem}
.findings ul{margin:.1rem 0;padding-left:1.2rem}.findings li{margin:.2rem 0}
.scope{color:#0550ae}.src{color:#8c959f;font-size:.75rem;margin-left:.3rem}
details summary{cursor:pointer;color:#0969da;font-size:.85rem}
pre{font-size:.72rem;white-space:pre-wrap}
""" + _TOKENS

SCRIPT = """
function sortBy(th) {
  var table = th.closest('table'), body = table.tBodies[0];
  var col = parseInt(th.getAttribute('data-col'), 10);
  var up = th.getAttribute('data-dir') !== 'up';
  Array.prototype.forEach.call(th.parentNode.children, function (h) { h.removeAttribute('data-dir'); });
  th.setAttribute('data-dir', up ? 'up' : 'down');
  function key(row) {
    var c = row.children[col];
    if (!c) return null;
    var v = c.getAttribute('data-v');
    return v === null ? c.textContent.trim().toLowerCase() : parseFloat(v);
  }
  var rows = Array.prototype.slice.call(body.rows);
  rows.sort(function (a, b) {
    var x = key(a), y = key(b);
    if (x === y) return 0;
    if (x === null || x === '' || (typeof x === 'number' && isNaN(x))) return 1;
    if (y === null || y === '' || (typeof y === 'number' && isNaN(y))) return -1;
    return (x < y ? -1 : 1) * (up ? 1 : -1);
  });
  rows.forEach(function (r) { body.appendChild(r); });
}
document.addEventListener('DOMContentLoaded', function () {
  document.querySelectorAll('table.sortable thead th[data-col]').forEach(function (th) {
    th.addEventListener('click', function () { sortBy(th); });
  });
  var sections = document.querySelectorAll('section');
  document.body.setAttribute('data-sections', String(sections.length));
  document.body.setAttribute('data-sortable', String(document.querySelectorAll('table.sortable').length));
  document.body.setAttribute('data-ready', '1');
});
"""


def _lede(manifest: dict) -> str:
    suite = manifest.get("suite", {})
    text = (suite.get("description") or "").strip()
    return f"Suite {suite.get('name')}: {text}" if text else f"Suite {suite.get('name')}."


def _parts(folder, found) -> list[tuple[int, str, str, object]]:
    """[(place, id, title, render)] of the report's own sections and each study's, in page order."""
    from explainbench.bench import studies
    from explainbench.bench.report import html_gallery, html_run, html_sections as s, html_summary

    own = [(0, "summary", "Summary: what this run found",
            lambda: html_summary.section(found, _lede(folder.manifest))),
           (10, "overview", "Overview", lambda: s.overview_section(folder)),
           (20, "leaderboards", "Leaderboards", lambda: s.leaderboard_section(folder)),
           (30, "curves", "Curves", lambda: s.curves_section(folder)),
           (80, "correct-vs-wrong", "Correct vs wrong predictions",
            lambda: s.correct_vs_wrong_section(folder)),
           (85, "gallery", "Gallery", lambda: html_gallery.gallery_section(folder)),
           (88, "failures", "Failures", lambda: html_run.failures_section(folder)),
           (90, "manifest", "Manifest", lambda: html_run.manifest_section(folder))]
    for _, contribution in studies.contributions():
        if contribution.section is not None:
            sec = contribution.section
            own.append((sec.place, sec.id, sec.title, lambda r=sec.render: r(folder)))
    return sorted(own, key=lambda part: part[0])


def section_ids() -> list[str]:
    """The page's section ids, in order (every page has all of them)."""
    return [name for _, name, _, _ in _parts(None, None)]


def sections(folder, found) -> list[tuple[str, str, str]]:
    """[(id, title, body)] in page order."""
    return [(name, title, render()) for _, name, title, render in _parts(folder, found)]


def write(folder, found=None) -> Path:
    from explainbench.bench.report import findings
    from explainbench.bench.report.reader import RunFolder

    folder = folder if isinstance(folder, RunFolder) else RunFolder(folder)
    manifest = folder.manifest
    found = findings.generate(folder) if found is None else found
    parts = sections(folder, found)
    suite = manifest.get("suite", {})
    title = f"explainbench — {suite.get('name', folder.root.name)}"
    nav = "".join(f'<a href="#{name}">{name.replace("-", " ")}</a>' for name, _, _ in parts)
    body = "".join(f'<section id="{name}"><h2>{esc(heading)}</h2>{html}</section>'
                   for name, heading, html in parts)
    facts = (f"run {manifest.get('start_utc', '')[:16]} UTC · commit {describe_commits(manifest, 10)}"
             f" · {esc(folder.root.name)}")
    page = (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{esc(title)}</title><style>{CSS}</style><script>{SCRIPT}</script></head><body>"
            f"<header><h1>{esc(title)}</h1><div>{esc(facts)}</div></header><nav>{nav}</nav>"
            f"{body}</body></html>")
    path = folder.root / "report.html"
    atomic_write_bytes(path, page.encode("utf-8"))
    return path
