"""The report's first screen: the findings (findings.py and the studies') as an at-a-glance table
per model and, below it, every question with its generated answers."""

from __future__ import annotations

from explainbench.bench.present.finding import Finding
from explainbench.bench.present.html import esc
from explainbench.bench.report.findings import grouped

# the report's own findings shown as columns of the at-a-glance table: key -> (place, title); the
# studies add theirs (their REPORT's `glance`)
GLANCE = {"best": (1, "most faithful (mean rank)"), "controls": (2, "beat the controls (faithfulness)"),
          "linear": (5, "closest to the exact W·x"), "evidence": (7, "evidence (n, smallest Holm p)")}


def columns() -> dict[str, str]:
    """{finding key: column title} of the at-a-glance table, in column order."""
    from explainbench.bench import studies

    every = dict(GLANCE)
    for _, contribution in studies.contributions():
        every.update(contribution.glance)
    return {k: title for k, (_, title) in sorted(every.items(), key=lambda kv: kv[1][0])}


def glance(found: list[Finding]) -> str:
    titles = columns()
    scoped = [f for f in found if f.scope and f.key in titles]
    scopes = list(dict.fromkeys(f.scope for f in scoped))
    keys = [k for k in titles if any(f.key == k for f in scoped)]
    if not scopes:
        return ""
    cells = {(f.scope, f.key): f.short for f in scoped}
    head = "".join(f"<th>{esc(titles[k])}</th>" for k in keys)
    rows = "".join(
        f"<tr><th>{esc(s)}</th>" + "".join(f"<td>{esc(cells.get((s, k), '–'))}</td>" for k in keys) + "</tr>"
        for s in scopes)
    return (f'<div class="wide"><table class="glance"><thead><tr><th>model</th>{head}</tr></thead>'
            f"<tbody>{rows}</tbody></table></div>")


def answers(found: list[Finding]) -> str:
    parts = []
    for question, items in grouped(found):
        lis = []
        for f in items:
            scope = (f'<b class="scope">{esc(f.scope)}{" · " + esc(f.subject) if f.subject else ""}</b> '
                     if f.scope else "")
            details = ""
            if f.details:
                details = ("<details><summary>details</summary><ul>"
                           + "".join(f"<li>{esc(d)}</li>" for d in f.details) + "</ul></details>")
            lis.append(f'<li>{scope}{esc(f.answer)} <span class="src">{esc(f.source)}</span>{details}</li>')
        parts.append(f'<div class="finding"><h3>{esc(question)}</h3><ul>{"".join(lis)}</ul></div>')
    return f'<div class="findings">{"".join(parts)}</div>'


def section(found: list[Finding], lede: str) -> str:
    return (f'<p class="lede">{esc(lede)}</p>{glance(found)}'
            '<p class="note">The same sentences are in FINDINGS.md; each names the table of this run '
            "folder it is computed from. Intervals: 95% bootstrap over samples.</p>" + answers(found))
