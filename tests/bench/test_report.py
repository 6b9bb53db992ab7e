"""bench report on a real tiny run: every file, and report.html rendering in headless Chromium."""

from __future__ import annotations

import copy
import re
import shutil
import subprocess

import pandas as pd
import pytest

from explainbench.bench import report, runner, suite as suites
from explainbench.bench.cmd_report import publish_leaderboards
from explainbench.core.errors import BenchError
from explainbench.bench.html_report import SECTIONS
from tests.bench.test_runner import TINY


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, real_data):
    out = tmp_path_factory.mktemp("report") / "run"
    runner.run(suites.parse(copy.deepcopy(TINY)), out, device="cpu", show_progress=False)
    return out


def test_report_writes_leaderboards_plots_and_html(run_dir):
    written = report.write_all(run_dir)
    names = {p.relative_to(run_dir).as_posix() for p in written}
    assert {"leaderboard.csv", "leaderboard/mnist-mnist_cnn.csv", "leaderboard/imdb-imdb_lstm.csv",
            "report.html"} <= names
    assert any(n.startswith("plots/curves-mnist-mnist_cnn-deletion") and n.endswith(".svg") for n in names)
    assert "plots/gallery-mnist-mnist_cnn.png" in names
    board = pd.read_csv(run_dir / "leaderboard" / "mnist-mnist_cnn.csv")
    for column in ("mean", "std", "ci_low", "ci_high", "rank", "mean_faithfulness_rank",
                   "different_from_best", "seconds_per_explanation", "forward_passes_per_explanation"):
        assert column in board.columns
    assert board["seconds_per_explanation"].gt(0).all()
    assert set(board["explainer"]) >= {"saliency", "integrated_gradients"}
    # the IMDB reviews appear highlighted word by word
    page = (run_dir / "report.html").read_text()
    assert 'class="tok"' in page and "data:image/png;base64," in page


def test_report_html_renders_in_headless_chromium_without_console_errors(run_dir, tmp_path):
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        pytest.skip("chromium not installed (.ci/run installs Debian's chromium)")
    report.write_all(run_dir)
    result = subprocess.run(
        [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run",
         f"--user-data-dir={tmp_path / 'profile'}", "--enable-logging=stderr", "--v=0",
         "--virtual-time-budget=5000", "--dump-dom", (run_dir / "report.html").as_uri()],
        capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    console = [line for line in result.stderr.splitlines() if "CONSOLE" in line]
    assert console == []
    dom = result.stdout
    assert 'data-ready="1"' in dom  # the page's script ran
    assert f'data-sections="{len(SECTIONS)}"' in dom
    for section in SECTIONS:
        assert re.search(rf'<section id="{section}">\s*<h2>', dom), section


def test_publish_copies_leaderboards_with_provenance(run_dir, tmp_path):
    report.write_all(run_dir, plots=False)
    published = publish_leaderboards(run_dir, tmp_path / "leaderboard")
    assert {p.name for p in published} == {"mnist-mnist_cnn.csv", "imdb-imdb_lstm.csv"}
    text = published[0].read_text()
    assert text.startswith("# explainbench leaderboard") and "checkpoint sha256" in text
    table = pd.read_csv(published[0], comment="#")
    assert len(table) == len(pd.read_csv(run_dir / "leaderboard" / published[0].name))


def test_report_of_a_folder_without_scores_is_a_clear_error(tmp_path):
    with pytest.raises(BenchError, match="is not a run folder"):
        report.write_all(tmp_path)
