"""Users' explainers, metrics and models: the README's worked example, entry points, `plugins:`,
`--plugin`, and the one-line errors of broken plugins."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest
import torch

from explainbench import explainers, metrics, models
from explainbench.core import plugins
from explainbench.core.errors import PluginError

ROOT = Path(__file__).resolve().parents[2]


def readme_examples() -> dict[str, str]:
    """The files of the README's worked example: {file name: content}."""
    text = (ROOT / "README.md").read_text()
    blocks = re.findall(r"<!-- plugin-example: (\S+) -->\n```\w+\n(.*?)```\n<!-- /plugin-example -->",
                        text, flags=re.S)
    return dict(blocks)


def bench_cli(*args, cwd: Path, env_extra: dict | None = None) -> subprocess.CompletedProcess:
    import os

    env = {**os.environ, **(env_extra or {})}
    return subprocess.run([sys.executable, "-m", "explainbench.bench", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=600)


@pytest.fixture
def forget_plugins():
    """Registries are per process: drop what a test registered."""
    before = {"explainer": set(explainers.REGISTRY.names()), "metric": set(metrics.REGISTRY.names())}
    users = set(models.user.USER_SPECS)
    yield
    for name in set(explainers.REGISTRY.names()) - before["explainer"]:
        explainers.REGISTRY.unregister(name)
    for name in set(metrics.REGISTRY.names()) - before["metric"]:
        metrics.REGISTRY.unregister(name)
    for name in set(models.user.USER_SPECS) - users:
        del models.user.USER_SPECS[name]


def test_the_readme_has_the_worked_example():
    files = readme_examples()
    assert set(files) == {"my_saliency.py", "my-saliency.yaml"}
    assert "@explainers.register(\"my_saliency\")" in files["my_saliency.py"]


@pytest.mark.integration
def test_the_readme_plugin_scores_exactly_what_the_builtin_saliency_scores(tmp_path, real_data,
                                                                          forget_plugins):
    from explainbench.bench import report
    from explainbench.bench.run import runner, suite as suites

    for name, content in readme_examples().items():
        (tmp_path / name).write_text(content)
    suite = suites.load(str(tmp_path / "my-saliency.yaml"))
    assert suite.plugins == ("my_saliency.py",)
    summary = runner.run(suite, tmp_path / "run", device="cpu", show_progress=False)
    assert summary.ok
    report.write_all(summary.out)
    scores = pd.read_parquet(tmp_path / "run" / "scores.parquet")
    wide = scores.pivot_table(index=["metric", "sample_id"], columns="explainer", values="value")
    assert len(wide) == (3 + 1) * 16  # three metrics and the tied-feature share, per image
    assert wide["my_saliency"].to_numpy().tolist() == wide["saliency"].to_numpy().tolist()
    board = pd.read_csv(tmp_path / "run" / "leaderboard" / "mnist-mnist_cnn.csv")
    assert "my_saliency" in set(board["explainer"])  # ranked like a built-in one
    assert "my_saliency" in (tmp_path / "run" / "report.html").read_text()


def test_register_sets_the_name_and_refuses_what_is_not_an_explainer(forget_plugins):
    @explainers.register("plugin_ones")
    class Ones(explainers.Explainer):
        def attribute(self, model, task, inputs, targets, *, seed):
            return torch.ones(len(inputs), *task.feature_shape)

    assert Ones.name == "plugin_ones" and explainers.get_class("plugin_ones") is Ones
    assert not explainers.REGISTRY.is_builtin("plugin_ones")
    with pytest.raises(PluginError, match="is not a subclass of explainbench.explainers.Explainer"):
        explainers.register("plugin_not_a_class")(object)
    with pytest.raises(PluginError, match="does not implement attribute"):
        explainers.register("plugin_abstract")(type("Abstract", (explainers.Explainer,), {}))
    with pytest.raises(PluginError, match="'saliency' is taken by the built-in explainer"):
        explainers.register("saliency")(Ones)
    assert explainers.get_class("saliency").__module__ == "explainbench.explainers.gradients"


def test_a_plugin_metric_is_called_like_a_builtin_one(forget_plugins, images, tiny_cnn, image_task):
    @metrics.register("plugin_total", category="complexity", higher_is_better=False,
                      summary="sum of |attribution|", scale=1.0)
    def total(model, task, inputs, attributions, targets, *, scale):
        return scale * attributions.abs().flatten(1).sum(1)

    attributions = torch.full((len(images), 28, 28), -0.5)
    result = metrics.get("plugin_total", scale=2.0)(tiny_cnn, image_task, images, attributions,
                                                    torch.zeros(len(images), dtype=torch.long))
    assert result.scores.tolist() == [2.0 * 0.5 * 784] * len(images)
    assert metrics.spec("plugin_total").higher_is_better is False
    with pytest.raises(PluginError, match="declares parameters width that its function does not"):
        metrics.register("plugin_bad", category="complexity", higher_is_better=True, width=3)(total)
    with pytest.raises(PluginError, match="category 'speed'"):
        metrics.register("plugin_bad", category="speed", higher_is_better=True)(total)


def test_a_user_model_is_verified_by_its_digest_and_never_trained(tmp_path, forget_plugins):
    from safetensors.torch import save_file

    from explainbench.core import data
    from explainbench.core.errors import BenchError
    from explainbench.models.architectures import MnistLogReg

    torch.manual_seed(3)
    trained = MnistLogReg()
    path = tmp_path / "weights.safetensors"
    save_file({k: v.contiguous() for k, v in trained.state_dict().items()}, str(path))
    models.register("plugin_logreg", task="mnist", builder=MnistLogReg, checkpoint=path,
                    sha256=data.file_digest(path))
    loaded = models.load("plugin_logreg")
    assert torch.equal(loaded.linear.weight, trained.linear.weight)
    assert loaded.card["profile"] == "user" and models.task_of("plugin_logreg").name == "mnist"
    assert models.train("plugin_logreg")["checkpoint_sha256"] == data.file_digest(path)
    path.write_bytes(path.read_bytes()[:-4] + b"\0\0\0\0")  # tampered with
    with pytest.raises(BenchError, match="has SHA-256 .* expected"):
        models.load("plugin_logreg")
    with pytest.raises(PluginError, match="taken by the built-in model"):
        models.register("mnist_cnn", task="mnist", builder=MnistLogReg, checkpoint=path,
                        sha256="0" * 64)


def write_distribution(site: Path, group: str, name: str, value: str, module: str, code: str):
    """An installed package as importlib.metadata finds it: a module and a dist-info folder."""
    (site / f"{module}.py").write_text(textwrap.dedent(code))
    info = site / "byo_plugin-0.1.dist-info"
    info.mkdir(parents=True, exist_ok=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: byo-plugin\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[{group}]\n{name} = {value}\n")


PLAIN_EXPLAINER = """
    import torch
    from explainbench.explainers import Explainer

    class Constant(Explainer):  # not decorated: the entry point registers it
        modalities = frozenset({"image"})

        def attribute(self, model, task, inputs, targets, *, seed):
            return torch.ones(len(inputs), *task.feature_shape)
"""


def test_an_installed_package_is_found_through_its_entry_point(tmp_path):
    write_distribution(tmp_path, "explainbench.explainers", "entry_constant",
                       "byo_constant:Constant", "byo_constant", PLAIN_EXPLAINER)
    result = bench_cli("list", "explainers", cwd=tmp_path, env_extra={"PYTHONPATH": str(tmp_path),
                                                                     "COLUMNS": "200"})
    assert result.returncode == 0, result.stderr
    assert "entry_constant" in result.stdout


def test_an_entry_point_that_clashes_with_a_builtin_is_one_line(tmp_path):
    write_distribution(tmp_path, "explainbench.explainers", "saliency", "byo_constant:Constant",
                       "byo_constant", PLAIN_EXPLAINER)
    result = bench_cli("list", "explainers", cwd=tmp_path, env_extra={"PYTHONPATH": str(tmp_path)})
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0 and "Traceback" not in result.stderr
    assert "entry point saliency = byo_constant:Constant" in result.stderr
    assert "taken by the built-in explainer" in result.stderr


SUITE_WITH_PLUGIN = """
name: broken-plugin
version: 1
plugins: [{plugin}]
experiments:
  - name: mnist
    slice: {{name: mnist-test, size: 4}}
    models: [mnist_cnn]
    explainers: [saliency]
    metrics: [sparseness]
"""

BROKEN = {
    "import error": ("import nonexistent_package_xyz\n", "No module named 'nonexistent_package_xyz'"),
    "bad class": ("from explainbench import explainers\n"
                  "explainers.register('plugin_object')(object)\n",
                  "is not a subclass of explainbench.explainers.Explainer"),
    "name clash": ("from explainbench import explainers\n"
                   "@explainers.register('saliency')\n"
                   "class Mine(explainers.Explainer):\n"
                   "    def attribute(self, model, task, inputs, targets, *, seed):\n"
                   "        return inputs[:, 0]\n",
                   "'saliency' is taken by the built-in explainer"),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_a_broken_plugin_is_one_line_before_anything_runs(tmp_path, case):
    code, message = BROKEN[case]
    (tmp_path / "broken.py").write_text(code)
    (tmp_path / "suite.yaml").write_text(SUITE_WITH_PLUGIN.format(plugin="broken"))
    for args in (("validate", "suite.yaml"), ("run", "--suite", "suite.yaml", "--out", "out")):
        result = bench_cli(*args, cwd=tmp_path)
        assert result.returncode == 2, result.stderr
        assert "Traceback" not in result.stderr and result.stderr.strip().count("\n") == 0
        assert result.stderr.startswith("error: plugin broken: ") and message in result.stderr
        assert not (tmp_path / "out" / "parts").exists()  # before any cell


def test_validate_and_plan_say_that_they_ran_the_suites_plugins(tmp_path):
    """Checking a suite imports its plugins (their names must resolve): both commands say so,
    naming each plugin, so that checking someone else's file is not mistaken for reading it."""
    (tmp_path / "marker_plugin.py").write_text(
        "from pathlib import Path\nPath(__file__).with_name('ran').write_text('yes')\n")
    (tmp_path / "suite.yaml").write_text(SUITE_WITH_PLUGIN.format(plugin="marker_plugin"))
    for args in (("validate", "suite.yaml"), ("plan", "--suite", "suite.yaml")):
        (tmp_path / "ran").unlink(missing_ok=True)
        result = bench_cli(*args, cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        assert (tmp_path / "ran").is_file()
        said = " ".join(result.stdout.split())
        assert "imported plugin marker_plugin: their code ran" in said, result.stdout


def test_plugin_modules_load_once_and_bad_specs_are_errors(tmp_path, forget_plugins):
    (tmp_path / "byo_once.py").write_text("COUNT = [0]\nCOUNT[0] += 1\n")
    first = plugins.load_modules(["byo_once.py"], base=tmp_path)
    second = plugins.load_modules(["byo_once.py"], base=tmp_path)
    assert first[0] is second[0] and first[0].COUNT == [1]
    with pytest.raises(PluginError, match="no file missing.py"):
        plugins.load_modules(["missing.py"], base=tmp_path)
    with pytest.raises(PluginError, match="must be a list"):
        plugins.load_modules("byo_once.py")
