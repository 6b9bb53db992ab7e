"""Study cells end to end on tiny real slices: rows in scores.parquet, tables, controls."""

from __future__ import annotations

import copy

import pandas as pd
import pytest

from explainbench.bench import report
from explainbench.bench.run import runner, suite as suites

STUDY_SUITE = {
    "name": "studies",
    "version": 1,
    "seeds": [0, 1],
    "chunk_size": 4,
    "experiments": [{
        "name": "mnist",
        "slice": {"name": "mnist-test", "size": 4},
        "models": ["mnist_cnn"],
        "explainers": ["saliency", {"name": "integrated_gradients", "params": {"n_steps": 8}}],
        "metrics": [{"name": "deletion", "params": {"steps": 4}}, "sparseness"],
        "studies": {
            "stability": {"explainers": ["saliency", "integrated_gradients"], "seeds": 2},
            "agreement": {},
            "sanity": {"explainers": ["saliency"], "max_depth": 2},
        },
    }],
}


@pytest.fixture(scope="module")
def study_run(tmp_path_factory, real_data):
    out = tmp_path_factory.mktemp("studies") / "run"
    summary = runner.run(suites.parse(copy.deepcopy(STUDY_SUITE)), out, device="cpu",
                         show_progress=False)
    assert summary.ok, summary.failed
    report.write_all(out, plots=False)
    return out


def test_deterministic_explainers_are_perfectly_stable(study_run):
    scores = pd.read_parquet(study_run / "scores.parquet")
    stability = scores[scores.study == "stability"]
    assert set(stability.explainer) == {"saliency", "integrated_gradients"}
    assert (stability.seed == -1).all()
    for metric, expected in [("stability_spearman", 1.0), ("stability_topk", 1.0),
                             ("stability_sign", 1.0), ("stability_cv", 0.0)]:
        assert (stability[stability.metric == metric]["value"] == expected).all(), metric
    table = pd.read_csv(study_run / "stability.csv")
    assert set(table.metric) == {"stability_spearman", "stability_topk", "stability_sign", "stability_cv"}


def test_agreement_rows_form_a_symmetric_matrix(study_run):
    scores = pd.read_parquet(study_run / "scores.parquet")
    agreement = scores[scores.study == "agreement"]
    assert set(agreement.metric) == {"agreement_spearman", "agreement_topk"}
    matrix = pd.read_csv(study_run / "agreement" / "mnist-mnist_cnn.csv", index_col=0)
    assert (matrix.values.diagonal() == 1).all()
    assert (abs(matrix.values - matrix.values.T) < 1e-12).all()
    # the control: random attributions agree with nothing (Spearman ~ 0, |r| ~ 1/sqrt(784))
    assert set(matrix.index) == {"saliency", "integrated_gradients", "random"}
    assert abs(matrix.loc["random", "saliency"]) < 0.15
    assert abs(matrix.loc["random", "integrated_gradients"]) < 0.15
    assert matrix.loc["saliency", "integrated_gradients"] > 0.2


def test_sanity_rows_cascade_and_random_logit(study_run):
    scores = pd.read_parquet(study_run / "scores.parquet")
    sanity = scores[scores.study == "sanity"]
    assert set(sanity.metric) == {f"{p}_{m}" for p in ("mprt", "random_logit")
                                  for m in ("spearman", "spearman_signed", "spearman_untied", "ssim")}
    table = pd.read_csv(study_run / "sanity.csv")
    assert set(table[table.metric == "mprt_spearman"].layer) == {"fc2", "fc1"}
    assert "flagged" in table.columns
    # with the classifier randomised, saliency's map changes (Adebayo et al.): not flagged
    assert not table[table.metric == "mprt_spearman"]["flagged"].any()


def test_leaderboard_keeps_study_rows_out_and_complexity_in(study_run):
    board = pd.read_csv(study_run / "leaderboard" / "mnist-mnist_cnn.csv")
    assert set(board.metric) == {"deletion", "sparseness"}
    report.write_all(study_run)
    assert (study_run / "plots").is_dir()
    names = {p.name for p in (study_run / "plots").glob("*.png")}
    assert any(n.startswith("agreement-") for n in names)
    assert any(n.startswith("sanity-") for n in names)
    # stability is a pivot of explainer x measure in the page (a figure only for budget sweeps);
    # explainers identical under every seed are named once, not tabulated
    page = (study_run / "report.html").read_text()
    stability = page[page.index('<section id="stability">'):page.index('<section id="background">')]
    assert "identical under every seed (as they must be): integrated_gradients, saliency." in stability


def test_unknown_study_settings_are_one_line_errors():
    raw = copy.deepcopy(STUDY_SUITE)
    raw["experiments"][0]["studies"]["stability"]["sedes"] = 3
    with pytest.raises(suites.SuiteError, match="unknown setting 'sedes'"):
        suites.parse(raw)
    raw = copy.deepcopy(STUDY_SUITE)
    raw["experiments"][0]["studies"] = {"stabilty": {}}
    with pytest.raises(suites.SuiteError, match="Did you mean 'stability'"):
        suites.parse(raw)


JAIN_WALLACE_SUITE = {
    "name": "jain-wallace-tiny", "version": 1, "seeds": [0], "chunk_size": 3,
    "experiments": [{
        "name": "jw", "slice": {"name": "imdb-test", "size": 6},
        "models": ["imdb_bilstm_attention"], "floor": False,
        "explainers": ["attention", "jw_gradient", "leave_one_out"], "metrics": [],
        "studies": {"agreement": {"measures": ["kendall", "spearman"], "permutations": 10}},
    }],
}


def test_jain_and_wallace_through_a_run(tmp_path, real_data):
    """Their measures through the agreement study on their model (the ci profile): Kendall's tau
    equals scipy's on the cached maps, the permutation rows are one per review, and FINDINGS.md
    sets the tau beside theirs; chunks do not change a review's numbers."""
    import numpy as np
    from scipy.stats import kendalltau

    from explainbench import explainers, models
    from explainbench.core import slices

    runs = {}
    for chunk_size in (3, 6):
        raw = copy.deepcopy(JAIN_WALLACE_SUITE)
        raw["chunk_size"] = chunk_size
        out = tmp_path / f"run{chunk_size}"
        assert runner.run(suites.parse(raw), out, device="cpu", show_progress=False).ok
        report.write_all(out, plots=False)
        runs[chunk_size] = pd.read_parquet(out / "scores.parquet")
    scores = runs[3]
    kendall = scores[scores.metric == "agreement_kendall"]
    assert len(kendall) == 3 * 6 and set(scores.metric) == {
        "agreement_kendall", "agreement_spearman", "attention_permutation"}
    permutation = scores[scores.metric == "attention_permutation"]
    assert len(permutation) == 6 and permutation["value"].between(0, 1).all()
    key = ["metric", "explainer", "metric_params", "sample_id"]
    merged = runs[3].merge(runs[6], on=key, suffixes=("", "_6"))
    assert len(merged) == len(runs[3]) and np.allclose(merged["value"], merged["value_6"], atol=1e-12)
    # tau of attention and jw_gradient per review, recomputed with scipy from fresh maps
    model = models.load("imdb_bilstm_attention", device="cpu", profile="ci")
    from explainbench.core import tasks

    task = tasks.get("imdb")
    rows = kendall[kendall.metric_params.str.contains('"other": "jw_gradient"')
                   & (kendall.explainer == "attention")].sort_values("sample_id")
    full = slices.load(slices.named("imdb-test"))
    chunk = full.subset(full.positions_of(rows["sample_id"].tolist()))
    inputs = task.inputs(chunk)
    targets = model(inputs).argmax(1)
    words = task.feature_mask(inputs)
    a = explainers.get("attention").explain(model, task, inputs, targets)
    g = explainers.get("jw_gradient").explain(model, task, inputs, targets)
    expected = [kendalltau(a[i][words[i]].numpy(), g[i][words[i]].numpy())[0] for i in range(6)]
    assert np.allclose(rows["value"].to_numpy(), expected, atol=1e-6)
    found = (tmp_path / "run3" / "FINDINGS.md").read_text()
    assert "Jain & Wallace 0.44" in found and "over n = 6 reviews" in found
    assert (tmp_path / "run3" / "attention_permutation.csv").is_file()
