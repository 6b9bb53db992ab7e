"""The pieces every finding is made of, the report's and the studies': the Finding record, number
and list formatting, and which leaderboard rows are faithfulness rows and which explainers are
controls."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from explainbench.bench.present.stats import CONTROLS


FAITHFULNESS = "faithfulness"


@dataclass(frozen=True)
class Finding:
    """One answer. `scope` is the model it is about ('' for the run as a whole); `short` is a few
    words for the at-a-glance table; `details` are supporting sentences (one per metric, ...)."""

    key: str
    question: str
    answer: str
    source: str
    task: str = ""
    scope: str = ""
    short: str = ""
    details: tuple[str, ...] = field(default_factory=tuple)
    subject: str = ""  # what within the scope, where a scope has several (an explainer)


# ---------------------------------------------------------------------------- formatting


def num(x) -> str:
    """A number as a reader wants it: three significant digits, no exponent for everyday sizes."""
    if x is None or (isinstance(x, float) and np.isnan(x)):
        return "n/a"
    x = float(x)
    if x == 0:
        return "0"
    if abs(x) >= 1000:
        return f"{x:,.0f}"
    return f"{x:.3g}" if abs(x) >= 1e-3 else f"{x:.2g}"


def plural(n: int, word: str, many: str | None = None) -> str:
    return f"{n} {word if n == 1 else many or word + 's'}"


def interval(mean, low, high) -> str:
    return f"{num(mean)} [{num(low)}, {num(high)}]"


def names(items: list[str], limit: int = 8) -> str:
    """'a, b and c', or 'a, b, ... and 5 more' past `limit`."""
    items = list(items)
    if not items:
        return "none"
    if len(items) > limit:
        return ", ".join(items[:limit]) + f" and {len(items) - limit} more"
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def direction(higher: bool) -> str:
    return "higher is better" if higher else "lower is better"


# ---------------------------------------------------------------------------- leaderboard rows


def group_column(board: pd.DataFrame) -> str:
    """The column metrics are grouped by: `family` when the leaderboard has one, else `category`."""
    return "family" if "family" in board.columns and board["family"].notna().any() else "category"


def faithfulness_rows(board: pd.DataFrame) -> pd.DataFrame:
    return board[board["category"] == FAITHFULNESS]


def is_control(name: str) -> bool:
    return str(name).split("[")[0] in CONTROLS


def mean_ranks(board: pd.DataFrame) -> pd.Series:
    """Each explainer's mean faithfulness rank: the leaderboard's own column where it has one."""
    faith = faithfulness_rows(board)
    if "mean_faithfulness_rank" in board.columns and board["mean_faithfulness_rank"].notna().any():
        return board.groupby("explainer")["mean_faithfulness_rank"].first().dropna().sort_values()
    return faith.groupby("explainer")["rank"].mean().sort_values()


def base_name(label: str) -> str:
    """'lime' for 'lime[n_samples=100]': the registry name of a table's explainer label."""
    return str(label).split("[")[0]


def primary_measure(metrics) -> str:
    """The stability or similarity measure a sentence leads with: a Spearman one where there is."""
    metrics = sorted(set(metrics))
    return next((m for m in metrics if "spearman" in m), metrics[0])
