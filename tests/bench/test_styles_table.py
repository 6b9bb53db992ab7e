"""explanation_styles.csv on hand-made score rows: seeds averaged per sample, intervals from
bench/present/stats.bootstrap_ci, budget sweeps and the random floor left out, shared styles named."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from explainbench.bench.present import stats as tables
from explainbench.bench.studies import styles as styles_table
from tests.bench.test_tables import rows


def test_one_row_per_style_and_measure_with_bootstrap_intervals():
    lime0 = [0.1, 0.2, 0.3, 0.4]
    lime1 = [0.3, 0.4, 0.5, 0.6]  # seed 1: the per-sample means are 0.2, 0.3, 0.4, 0.5
    frame = pd.concat([
        rows("lime", "deletion", lime0, seed=0), rows("lime", "deletion", lime1, seed=1),
        rows("anchor", "rule_precision", [1.0, 0.9, 1.0, 0.95], category="rules",
             metric_params={"k": 10}, higher=True),
        rows("anchor", "stability_jaccard", [1.0, 0.5, 0.0, 0.5], seed=-1, study="stability",
             category="stability", metric_params={"seeds": [0, 1], "budget_param": None}),
        # a budget sweep's stability and the floor are not styles at the experiment's settings
        rows("lime", "stability_spearman", [0.0] * 4, seed=-1, study="stability",
             category="stability", params={"n_samples": 100},
             metric_params={"seeds": [0, 1], "budget_param": "n_samples"}),
        rows("random", "deletion", [0.5] * 4),
    ])
    table = styles_table.table(frame)
    assert list(table.columns) == styles_table.COLUMNS
    assert table[["style", "measure"]].values.tolist() == [
        ["LIME", "deletion"], ["Anchor", "rule_precision"], ["Anchor", "stability_jaccard"]]
    lime = table.iloc[0]
    per_sample = np.array([0.2, 0.3, 0.4, 0.5])
    assert np.isclose(lime["mean"], 0.35) and lime["n"] == 4
    assert (lime["ci_low"], lime["ci_high"]) == tables.bootstrap_ci(per_sample)
    assert table.iloc[2]["mean"] == 0.5


def test_two_explainers_of_one_style_are_told_apart():
    frame = pd.concat([rows("lime", "deletion", [0.1, 0.2]),
                       rows("lime_batched", "deletion", [0.3, 0.4])])
    assert set(styles_table.table(frame)["style"]) == {"LIME (lime)", "LIME (lime_batched)"}


def test_a_run_without_styles_gives_an_empty_table():
    assert styles_table.table(rows("integrated_gradients", "deletion", [0.1])).empty


def test_samples_a_measure_is_undefined_for_are_left_out_not_the_whole_row():
    """Anchor's faithfulness correlation is NaN where the output never changes: the style's mean
    is over the samples where it is defined (as on the leaderboard), with n counting them."""
    frame = rows("anchor", "faithfulness_correlation", [0.2, np.nan, 0.4, np.nan, 0.6], higher=True)
    row = styles_table.table(frame).iloc[0]
    assert row["mean"] == pytest.approx(0.4) and row["n"] == 3
    assert (row["ci_low"], row["ci_high"]) == tables.bootstrap_ci(np.array([0.2, 0.4, 0.6]))
