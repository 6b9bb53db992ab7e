"""Tables from the tidy score rows. Every table is a query over scores.parquet."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from bench.store import atomic_write_bytes

GROUP = ["task", "model", "explainer", "metric"]


def leaderboard(scores: pd.DataFrame) -> pd.DataFrame:
    """One row per (task, model, explainer, metric): mean, std and n over samples and seeds."""
    if scores.empty:
        return pd.DataFrame(columns=GROUP + ["higher_is_better", "mean", "std", "n"])
    table = (scores.groupby(GROUP + ["higher_is_better"], sort=True)["value"]
             .agg(mean="mean", std="std", n="count").reset_index())
    return table[GROUP + ["higher_is_better", "mean", "std", "n"]]


def write_leaderboard(scores: pd.DataFrame, run_dir: Path) -> Path:
    path = Path(run_dir) / "leaderboard.csv"
    atomic_write_bytes(path, leaderboard(scores).to_csv(index=False).encode())
    return path
