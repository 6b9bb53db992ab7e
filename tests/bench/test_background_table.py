"""background.csv when the explainers of a task have different parameters (their convergence
references differ): one convergence column, with its interval, for all of them."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from explainbench.bench.studies import background


def test_convergence_is_one_column_whatever_the_explainers_parameters():
    rows = []
    for explainer, extra in [("deeplift_shap", {}), ("gradient_shap", {"n_samples": 20})]:
        for strategy, size, value in [("random", 1, 0.5), ("random", 20, 1.0), ("zeros", 1, 0.3)]:
            params = {"background": strategy, "background_size": size, **extra}
            reference = {"background": "random", "background_size": 20, **extra}
            for sample in range(4):
                for metric, mp, v in [("background_convergence", {"reference": reference}, value + 0.01 * sample),
                                      ("deletion", {"steps": 4}, 0.1 * size)]:
                    rows.append(dict(study="background", task="mnist", model="mnist_cnn", explainer=explainer,
                                     params=json.dumps(params, sort_keys=True),
                                     params_hash=f"{explainer}-{strategy}-{size}", metric=metric,
                                     metric_params=json.dumps(mp, sort_keys=True), sample_id=sample,
                                     value=v))
    table = background.table(pd.DataFrame(rows), None)
    assert [c for c in table.columns if "convergence" in c] == [
        "background_convergence_mean", "convergence_ci_low", "convergence_ci_high"]
    assert table["background_convergence_mean"].notna().all() and table["convergence_ci_low"].notna().all()
    row = table[(table.explainer == "gradient_shap") & (table.strategy == "random") & (table["size"] == 1)].iloc[0]
    assert row["background_convergence_mean"] == pytest.approx(0.515)
    assert row["deletion_change"] == pytest.approx(0.1 - 2.0)  # against the largest random background
