"""Suite parsing and validation: every mistake is one line naming where it is and the choices."""

from __future__ import annotations

import copy

import pytest

from explainbench.bench.run import suite as suites
from explainbench.core.errors import UnknownNameError

BASE = {
    "name": "t",
    "version": 1,
    "seeds": [0, 1],
    "experiments": [{
        "name": "m",
        "slice": {"name": "mnist-test", "size": 4},
        "models": ["mnist_cnn"],
        "explainers": ["saliency", {"name": "integrated_gradients", "params": {"n_steps": 8}}],
        "metrics": [{"name": "deletion", "params": {"steps": 4, "substrate": "zero"}}],
    }],
}


def _with(**changes):
    raw = copy.deepcopy(BASE)
    for path, value in changes.items():
        target = raw
        keys = path.split("__")
        for k in keys[:-1]:
            target = target[int(k)] if k.isdigit() else target[k]
        target[keys[-1]] = value
    return raw


def test_builtin_smoke_suite_parses():
    suite = suites.load("smoke")
    assert suite.name == "smoke" and suite.version == 1
    assert {e.slice.dataset for e in suite.experiments} == {"mnist", "imdb"}
    assert "smoke" in suites.builtin_names()


@pytest.mark.parametrize("name", suites.builtin_names())
def test_every_builtin_suite_validates_and_plans(name):
    from explainbench.bench.run import runner

    suite = suites.load(name)
    assert suite.name == name and runner.plan(suite)


def test_the_builtin_suites_include_the_reference_and_study_suites():
    assert {"smoke", "quick", "standard", "full", "lime-seeds", "lime-seeds-text", "explanation-styles",
            "background-ablation", "model-complexity", "correct-vs-wrong",
            "attention-vs-gradients"} <= set(suites.builtin_names())
    from explainbench import explainers, metrics

    for name, images, reviews in (("full", 1000, 500), ("standard", 200, 100)):
        suite = suites.load(name)
        sizes = {e.slice.label for e in suite.experiments}
        assert {f"mnist-test-n{images}-s0", f"imdb-test-n{reviews}-s0"} <= sizes
        studies = {name for e in suite.experiments for name, _ in e.studies}
        assert studies == {"stability", "background", "sanity", "agreement"}
        # every explainer and every metric somewhere in the suite
        named = {c.name for e in suite.experiments for c in e.explainers}
        assert named >= set(explainers.names()) - {"random"}  # the floor joins by itself
        assert any(e.floor for e in suite.experiments)
        assert {c.name for e in suite.experiments for c in e.metrics} >= set(metrics.names())
        # the stability study runs 10 seeds, on prefixes whose chunks are the leaderboard's
        stability = [e for e in suite.experiments if "stability" in dict(e.studies)]
        assert stability and all(len(e.seeds) == 10 for e in stability)
        leaderboard = {e.slice.dataset: e for e in suite.experiments if e.metrics and
                       e.slice.size in (images, reviews)}
        assert all(e.chunk_size == leaderboard[e.slice.dataset].chunk_size for e in stability)


def test_lime_seeds_sweeps_every_sampling_explainer_on_every_model_from_100_to_5000():
    """The question users bring first (LIME's variance across seeds) on every built-in model,
    beside the other sampling explainers, 10 seeds, budgets up to lime's text default."""
    from explainbench.bench.studies import stability

    experiments = [e for name in ("lime-seeds", "lime-seeds-text") for e in suites.load(name).experiments]
    models = {m for e in experiments for m in e.models}
    assert models == {"mnist_cnn", "mnist_logreg", "imdb_transformer", "imdb_lstm"}
    for exp in experiments:
        options = exp.study_options()["stability"]
        settings = stability._settings(options, exp)
        assert {c.name for c, _, _ in settings} == {"lime", "lime_batched", "kernel_shap", "rise", "anchor"}
        assert all(seeds == tuple(range(10)) for _, seeds, _ in settings)
        for name in ("lime", "lime_batched", "kernel_shap", "rise"):
            (param, values), = options["budgets"][name].items()
            assert min(values) == 100 and max(values) == 5000 and len(values) >= 5


def test_parse_builds_frozen_components_and_a_stable_hash():
    a, b = suites.parse(BASE), suites.parse(copy.deepcopy(BASE))
    assert a.content_hash == b.content_hash
    exp = a.experiments[0]
    assert exp.seeds == (0, 1) and exp.chunk_size == 64 and exp.target == "predicted"
    assert exp.explainers[1].params == {"n_steps": 8}
    assert suites.parse(_with(version=2)).content_hash != a.content_hash


@pytest.mark.parametrize("changes, fragment", [
    ({"experiments__0__explainers": ["salency"]}, "Did you mean 'saliency'"),
    ({"experiments__0__metrics": ["deletoin"]}, "Did you mean 'deletion'"),
    ({"experiments__0__models": ["mnist_cnm"]}, "unknown model 'mnist_cnm'"),
    ({"experiments__0__models": ["imdb_lstm"]}, "is a imdb model but the slice is mnist"),
    ({"experiments__0__metrics": [{"name": "deletion", "params": {"substrate": "mask"}}]},
     "valid choices: zero, mean, blur, noise"),
    ({"experiments__0__metrics": [{"name": "deletion", "params": {"stepz": 3}}]},
     "valid parameters: steps, substrate"),
    ({"experiments__0__explainers": [{"name": "saliency", "params": {"n_steps": 3}}]},
     "unknown parameter 'n_steps' for explainer 'saliency'"),
    ({"experiments__0__slice": {"name": "mnist-tset"}}, "unknown slice 'mnist-tset'"),
    ({"experiments__0__target": "truth"}, "valid choices: predicted, label"),
    ({"experiments__0__colour": "red"}, "unknown key 'colour'"),
    ({"seeds": ["a"]}, "list of integers"),
    ({"version": "one"}, "'version' must be an integer"),
])
def test_mistakes_are_one_line_and_name_the_place(changes, fragment):
    with pytest.raises(suites.SuiteError) as info:
        suites.parse(_with(**changes), source="x.yaml")
    message = str(info.value)
    assert fragment in message and "\n" not in message
    assert message.startswith("suite x.yaml")


def test_unknown_suite_name_lists_the_builtin_suites():
    with pytest.raises(UnknownNameError) as info:
        suites.load("smok")
    assert "Did you mean 'smoke'" in str(info.value) and "smoke" in info.value.choices


def test_malformed_yaml_file_is_one_line(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [unclosed\n")
    with pytest.raises(suites.SuiteError, match="not valid YAML at line"):
        suites.load(str(bad))
    with pytest.raises(suites.SuiteError, match="does not exist"):
        suites.load(str(tmp_path / "missing.yaml"))


@pytest.mark.parametrize("explainer, dataset", [("grad_cam", "mnist"), ("attention", "imdb")])
def test_a_suite_like_standard_scores_an_explainer_on_the_models_it_explains(explainer, dataset):
    """`bench run --suite standard --explainer E`: an image-only explainer (the README's
    my_saliency) on the image experiments only, a text-only one on the text experiments, each
    with the published metrics and no studies."""
    from explainbench import explainers

    suite = suites.load_like("standard", [explainer])
    standard = suites.load("standard")
    assert {e.slice.dataset for e in suite.experiments} == {dataset}
    expected = [e.name for e in standard.experiments
                if e.metrics and e.slice.dataset == dataset]
    assert [e.name for e in suite.experiments] == expected
    assert all(not e.studies and [c.name for c in e.explainers] == [explainer] for e in suite.experiments)
    assert explainers.get_class(explainer).modalities == {"image" if dataset == "mnist" else "text"}
