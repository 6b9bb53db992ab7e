"""`bench report RUN_DIR`: every table, plot and the HTML page of a run, derived from its files.

    RUN_DIR/leaderboard.csv                  every (task, model, study, explainer, metric): mean, std, n
    RUN_DIR/leaderboard/<task>-<model>.csv   the leaderboard proper (CI, rank, significance, cost)
    RUN_DIR/stability.csv, background.csv, sanity.csv     study tables (when the run has them)
    RUN_DIR/correct_vs_wrong.csv             every leaderboard score split by prediction correctness
    RUN_DIR/explanation_styles.csv           the explanation styles side by side (bench/styles_table.py)
    RUN_DIR/agreement/<task>-<model>.csv     explainer x explainer agreement matrices
    RUN_DIR/versus_controls.csv              every explainer against the random and edge controls
    RUN_DIR/stability_budget.csv             stability against the sampling budget
    RUN_DIR/agreement_pairs.csv              the agreement matrices in long form, with intervals
    RUN_DIR/FINDINGS.md                      the answers, generated from those tables
    RUN_DIR/plots/*.png|svg                  seaborn figures
    RUN_DIR/report.html                      one self-contained page, the same findings first
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from explainbench.bench import styles_table, tables
from explainbench.core.errors import BenchError
from explainbench.bench.store import ResultStore, atomic_write_bytes

STUDY_TABLES = ("stability",)  # background and sanity have their own tables in their study modules


def _csv(path: Path, frame: pd.DataFrame) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, frame.to_csv(index=False, float_format="%.6g").encode())
    return path


def write_all(run_dir: str | Path, *, plots: bool = True) -> list[Path]:
    """Write every table (and, with `plots`, the figures and report.html) of a run folder."""
    run_dir = Path(run_dir)
    if not (run_dir / "manifest.json").is_file() or not (run_dir / "parts").is_dir():
        raise BenchError(f"{run_dir} is not a run folder: it has no manifest.json and parts/")
    store = ResultStore(run_dir)
    verification = store.verify()
    if not verification.ok:  # never build tables from a part that was not verified
        raise BenchError(f"{run_dir}: {len(verification.lines())} cells do not verify "
                         f"({verification.lines()[0]}); `bench report` or `bench run` recomputes them")
    scores = store.consolidate()  # the derived files, rebuilt from the verified parts
    costs = store.costs()
    written = [_csv(run_dir / "leaderboard.csv", tables.summary(scores))]
    for (task, model), board in tables.leaderboards(scores, costs).items():
        written.append(_csv(run_dir / "leaderboard" / f"{task}-{model}.csv", board))
    from explainbench.bench.studies import background, sanity

    study_tables = {"stability": tables.study_table(scores, "stability"),
                    "background": background.table(scores, costs),
                    "sanity": sanity.table(scores),
                    "correct_vs_wrong": tables.correct_vs_wrong(scores),
                    "versus_controls": tables.versus_controls(scores),
                    "stability_budget": tables.stability_by_budget(scores),
                    "agreement_pairs": tables.agreement_pairs(scores),
                    "explanation_styles": styles_table.table(scores)}
    for name, table in study_tables.items():
        path = run_dir / f"{name}.csv"
        if not table.empty:
            written.append(_csv(path, table))
        elif path.is_file():  # derived: none may outlive the data it came from
            path.unlink()
    for (task, model, metric), matrix in tables.agreement_matrices(scores).items():
        name = f"{task}-{model}.csv" if metric == "agreement_spearman" else f"{task}-{model}-{metric}.csv"
        frame = matrix.reset_index().rename(columns={"index": "explainer"})
        written.append(_csv(run_dir / "agreement" / name, frame))
    from explainbench.bench import findings

    found = findings.generate(run_dir)
    written.append(findings.write(run_dir, found))
    if plots:
        from explainbench.bench import html_report, report_figures

        written += report_figures.write_all(run_dir, scores)
        written.append(html_report.write(run_dir, found))
    return written
