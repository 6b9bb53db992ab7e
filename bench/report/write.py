"""`bench report RUN_DIR`: every table, plot and the HTML page of a run, derived from its files.

    RUN_DIR/leaderboard.csv                  every (task, model, study, explainer, metric): mean, std, n
    RUN_DIR/leaderboard/<task>-<model>.csv   the leaderboard proper (CI, rank, significance, cost)
    RUN_DIR/correct_vs_wrong.csv             every leaderboard score split by prediction correctness
    RUN_DIR/versus_controls.csv              every explainer against the random and edge controls
    RUN_DIR/metric_agreement.csv             how far the faithfulness families agree (Kendall's W,
                                             pairwise, the leaders with one family left out)
    RUN_DIR/<the studies' tables>            stability.csv, stability_budget.csv,
                                             stability_budget_steps.csv, explanation_styles.csv,
                                             background.csv, sanity.csv, agreement_pairs.csv,
                                             agreement/<task>-<model>.csv (each study's REPORT)
    RUN_DIR/FINDINGS.md                      the answers, generated from those tables
    RUN_DIR/plots/*.png|svg                  seaborn figures
    RUN_DIR/report.html                      one self-contained page, the same findings first

Tables are computed from the verified parts (consolidated into scores.parquet); everything after
them (findings, figures, the page) reads the written tables through one reader (reader.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import pandas as pd

from explainbench.bench import studies
from explainbench.bench.report import tables
from explainbench.bench.report.reader import RunFolder
from explainbench.bench.store import ResultStore, atomic_write_bytes, read_manifest_file
from explainbench.core.errors import BenchError


def _csv(path: Path, frame: pd.DataFrame) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, frame.to_csv(index=False, float_format="%.6g").encode())
    return path


def write_tables(run_dir: Path, scores: pd.DataFrame, costs: pd.DataFrame) -> list[Path]:
    written = [_csv(run_dir / "leaderboard.csv", tables.summary(scores))]
    boards = tables.leaderboards(scores, costs)
    for (task, model), board in boards.items():
        written.append(_csv(run_dir / "leaderboard" / f"{task}-{model}.csv", board))
    derived = {"correct_vs_wrong.csv": tables.correct_vs_wrong(scores),
               "versus_controls.csv": tables.versus_controls(scores),
               "metric_agreement.csv": tables.metric_agreement(boards)}
    for _, contribution in studies.contributions():
        if contribution.tables is not None:
            derived.update(contribution.tables(scores, costs))
    for name, table in derived.items():
        path = run_dir / name
        if not table.empty:
            written.append(_csv(path, table))
        elif path.is_file():  # derived: none may outlive the data it came from
            path.unlink()
    # Nor may a per-model table of a model (or metric) the run no longer has, in the folders
    # that hold one table each.
    keep = set(written)
    for folder in {run_dir / "leaderboard"} | {p.parent for p in written if p.parent != run_dir}:
        for old in folder.glob("*.csv") if folder.is_dir() else []:
            if old not in keep:
                old.unlink()
    return written


def write_figures(folder: RunFolder) -> list[Path]:
    from explainbench.bench.report import curve_figures, gallery_figures, overview_figures

    # Figures are derived files: drop the previous report's, so none outlives its data.
    plots = folder.root / "plots"
    for old in plots.glob("*.*") if plots.is_dir() else []:
        if old.suffix in (".png", ".svg"):
            old.unlink()
    out = overview_figures.figures(folder) + curve_figures.figures(folder)
    for _, contribution in studies.contributions():
        if contribution.figures is not None:
            out += contribution.figures(folder)
    return out + gallery_figures.figures(folder)


def write_all(run_dir: str | Path, *, plots: bool = True,
              step: Callable[[str], None] | None = None) -> list[Path]:
    """Write every table (and, with `plots`, the figures and report.html) of a run folder.
    `step(name)` is called as each stage starts (for the CLI's progress lines)."""
    run_dir = check_run_folder(run_dir)
    store = ResultStore(run_dir)
    with store.lock("bench report"):  # re-entrant: `bench run` and `bench report` hold it already
        return _write_all(run_dir, store, plots, step or (lambda name: None))


def check_run_folder(run_dir: str | Path) -> Path:
    """The run folder, or a one-line error before any work: not a run folder, or its manifest
    unreadable (the tables need it)."""
    run_dir = Path(run_dir)
    if not (run_dir / "manifest.json").is_file() or not (run_dir / "parts").is_dir():
        raise BenchError(f"{run_dir} is not a run folder: it has no manifest.json and parts/")
    read_manifest_file(run_dir / "manifest.json")
    return run_dir


REPORT_STAGES = ("verifying the cells", "tables", "FINDINGS.md", "figures", "report.html")


def stages(plots: bool = True) -> tuple[str, ...]:
    """The stages `write_all` goes through, in order (figures and the page only with plots)."""
    return REPORT_STAGES if plots else REPORT_STAGES[:3]


def _write_all(run_dir: Path, store: ResultStore, plots: bool,
               step: Callable[[str], None]) -> list[Path]:
    step(REPORT_STAGES[0])
    verification = store.verify()
    if not verification.ok:  # never build tables from a part that was not verified
        raise BenchError(f"{run_dir}: {len(verification.lines())} cells do not verify "
                         f"({verification.lines()[0]}); `bench report` or `bench run` recomputes them")
    step(REPORT_STAGES[1])
    scores = store.consolidate()  # the derived files, rebuilt from the verified parts
    written = write_tables(run_dir, scores, store.costs())
    from explainbench.bench.report import findings

    step(REPORT_STAGES[2])
    folder = RunFolder(run_dir, scores)
    found = findings.generate(folder)
    written.append(findings.write(folder, found))
    if plots:
        from explainbench.bench.report import html_page

        step(REPORT_STAGES[3])
        written += write_figures(folder)
        step(REPORT_STAGES[4])
        written.append(html_page.write(folder, found))
    return written
