"""Every figure of a run's report, drawn once by `bench report` into RUN_DIR/plots/."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from explainbench.bench import gallery, plots, plots_overview, plots_studies


def write_all(run_dir: Path, scores: pd.DataFrame) -> list[Path]:
    run_dir = Path(run_dir)
    # Figures are derived files: drop the previous report's, so none outlives its data.
    for old in (run_dir / "plots").glob("*.*") if (run_dir / "plots").is_dir() else []:
        if old.suffix in (".png", ".svg"):
            old.unlink()
    out = plots_overview.overview_figures(run_dir)
    out += plots.curve_figures(run_dir)
    out += plots_studies.budget_figures(run_dir)
    out += plots_studies.background_figures(run_dir)
    out += plots_studies.sanity_figures(run_dir)
    out += plots_studies.agreement_figures(run_dir, scores)
    out += gallery.figures(run_dir, scores)
    return out
