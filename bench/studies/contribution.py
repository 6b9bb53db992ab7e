"""What a study adds to the report, declared by the study itself (its module's `REPORT`) and
collected by the report through the study registry, so no report module names a study.

Every callable receives the report's reader of the run folder (`folder`: `.root`, `.scores`,
`.table(name)`, `.leaderboards`, `.figures(prefix)`): a study reads the same files the page shows,
so its tables, sentences and pictures agree. Places order a study's pieces among the report's
own (the summary's findings, the at-a-glance columns, the page's sections).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable


@dataclass(frozen=True)
class Section:
    place: int  # among the page's sections (the report's: overview 10 ... manifest 90)
    id: str  # the anchor, e.g. "sanity"
    title: str
    render: Callable  # folder -> HTML


@dataclass(frozen=True)
class Contribution:
    # (scores, costs) -> {file name under the run folder: table}; an empty table removes the file
    tables: Callable | None = None
    # (place in the summary, folder -> [Finding]); the report's own: evidence 10, controls 20,
    # best 30, linear model 60
    findings: tuple[tuple[int, Callable], ...] = ()
    # finding key -> (column place, title) in the summary's at-a-glance table
    glance: dict[str, tuple[int, str]] = field(default_factory=dict)
    figures: Callable | None = None  # folder -> [written paths] under plots/
    section: Section | None = None
