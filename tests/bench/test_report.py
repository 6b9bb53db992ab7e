"""bench report on a real tiny run: every file, the findings, and report.html as a reader sees it
in headless Chromium at 1400 px (summary on the first screen, nothing wider than the window,
sortable tables that sort, no console errors)."""

from __future__ import annotations

import copy
import html
import json
import re
import shutil
import subprocess

import numpy as np
import pandas as pd
import pytest

from explainbench.bench import report
from explainbench.bench.report import findings
from explainbench.bench.run import runner, suite as suites
from explainbench.bench.report.publish import publish_leaderboards
from explainbench.bench.report.html_page import section_ids
from explainbench.core.errors import BenchError

# controls (random is added as the floor, edge listed), a stochastic explainer swept over its
# budget, the sanity and agreement studies, and one text model for the highlighted reviews
REPORT_TINY = {
    "name": "report-tiny", "version": 1, "seeds": [0], "chunk_size": 5,
    "experiments": [
        {"name": "mnist", "slice": {"name": "mnist-test", "size": 5}, "models": ["mnist_cnn"],
         "explainers": ["saliency", {"name": "integrated_gradients", "params": {"n_steps": 8}}, "edge",
                        {"name": "smoothgrad", "params": {"n_samples": 4}}],
         "metrics": [{"name": "deletion", "params": {"steps": 4, "substrate": "zero"}},
                     {"name": "insertion", "params": {"steps": 4, "substrate": "blur"}}, "sparseness"],
         "studies": {"stability": {"explainers": ["smoothgrad"], "seeds": 2,
                                   "budgets": {"smoothgrad": {"n_samples": [2, 4]}}},
                     "sanity": {"explainers": ["saliency", "edge"]},
                     "agreement": {}}},
        {"name": "imdb", "slice": {"name": "imdb-test", "size": 2}, "models": ["imdb_lstm"],
         "explainers": ["saliency"],
         "metrics": [{"name": "deletion", "params": {"steps": 5, "substrate": "mask"}}]},
    ],
}
WIDTH, HEIGHT = 1400, 900


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, real_data):
    out = tmp_path_factory.mktemp("report") / "run"
    runner.run(suites.parse(copy.deepcopy(REPORT_TINY)), out, device="cpu", show_progress=False)
    return out


def test_report_writes_tables_findings_plots_and_html(run_dir):
    import io

    from explainbench.bench.run.progress import ReportStages

    lines = io.StringIO()
    shown = ReportStages(report.stages(), stream=lines)
    written = report.write_all(run_dir, step=shown)
    shown.done()
    # every stage announced as it starts, in order, then the total
    said = [line.split("] ", 1)[1] for line in lines.getvalue().splitlines()]
    assert said == ["report 1/5: verifying the cells", "report 2/5: tables", "report 3/5: FINDINGS.md",
                    "report 4/5: figures", "report 5/5: report.html", "report written"]
    names = {p.relative_to(run_dir).as_posix() for p in written}
    assert {"leaderboard.csv", "leaderboard/mnist-mnist_cnn.csv", "leaderboard/imdb-imdb_lstm.csv",
            "versus_controls.csv", "stability.csv", "stability_budget.csv", "sanity.csv",
            "agreement_pairs.csv", "FINDINGS.md", "report.html"} <= names
    for stem in ("overview-mnist-mnist_cnn", "curves-mnist-mnist_cnn", "budget-mnist-mnist_cnn",
                 "sanity-mnist-mnist_cnn", "agreement-mnist-mnist_cnn-agreement_spearman"):
        assert {f"plots/{stem}.png", f"plots/{stem}.svg"} <= names, stem
    assert sum(n.startswith("plots/gallery-mnist-mnist_cnn-") and n.endswith(".png") for n in names) == 3
    board = pd.read_csv(run_dir / "leaderboard" / "mnist-mnist_cnn.csv")
    for column in ("mean", "std", "ci_low", "ci_high", "rank", "mean_faithfulness_rank",
                   "different_from_best", "seconds_per_explanation", "forward_passes_per_explanation"):
        assert column in board.columns
    assert board["seconds_per_explanation"].gt(0).all()
    assert set(board["explainer"]) == {"saliency", "integrated_gradients", "edge", "smoothgrad", "random"}
    page = (run_dir / "report.html").read_text()
    assert re.search(r'<span class="[pn][1-5]">', page)  # the reviews, coloured word by word
    assert "data:image/png;base64," in page


def test_versus_controls_is_the_paired_difference_of_the_scores(run_dir):
    report.write_all(run_dir, plots=False)
    scores = pd.read_parquet(run_dir / "scores.parquet")
    versus = pd.read_csv(run_dir / "versus_controls.csv")
    s = scores[(scores.study == "scores") & (scores.model == "mnist_cnn") & (scores.metric == "deletion")]
    ig = s[s.explainer == "integrated_gradients"].set_index("sample_id")["value"]
    for control in ("random", "edge"):
        floor = s[s.explainer == control].set_index("sample_id")["value"]
        row = versus[(versus.model == "mnist_cnn") & (versus.metric == "deletion")
                     & (versus.explainer == "integrated_gradients") & (versus.control == control)].iloc[0]
        # lower is better: the floor minus ours (the CSV keeps 6 significant digits)
        assert row["difference"] == pytest.approx((floor - ig).mean(), rel=1e-5)
        assert row["n"] == 5 and row["diff_ci_low"] <= row["difference"] <= row["diff_ci_high"]
        assert not row["better"]  # 5 samples: Holm over 3 explainers cannot reach 0.05
    assert set(versus[versus.model == "imdb_lstm"]["control"]) == {"random"}  # edge is image-only


def test_findings_on_the_real_run_follow_its_tables(run_dir):
    report.write_all(run_dir, plots=False)
    found = findings.generate(run_dir)
    board = pd.read_csv(run_dir / "leaderboard" / "mnist-mnist_cnn.csv")
    ranks = board.groupby("explainer")["mean_faithfulness_rank"].first().drop(["random", "edge"])
    best = next(f for f in found if f.key == "best" and f.scope == "mnist_cnn")
    assert best.short == ranks.idxmin()
    evidence = next(f for f in found if f.key == "evidence" and f.scope == "mnist_cnn")
    assert "5 images" in evidence.answer and "cannot give p below 0.0625" in evidence.answer
    budget = next(f for f in found if f.key == "budget" and f.scope == "mnist_cnn")
    sweep = pd.read_csv(run_dir / "stability_budget.csv")
    two = sweep[(sweep.metric == "stability_spearman") & (sweep.budget == 2)].iloc[0]
    assert f"{findings.interval(two['mean'], two['ci_low'], two['ci_high'])} at n_samples = 2" in budget.answer
    sanity = next(f for f in found if f.key == "sanity" and f.scope == "mnist_cnn")
    assert "edge" in sanity.answer.split("pass:")[0]  # the edge detector ignores the model
    text = (run_dir / "FINDINGS.md").read_text()
    assert all(f.answer in text for f in found)


def test_the_summary_is_the_findings(run_dir):
    report.write_all(run_dir)
    found = findings.generate(run_dir)
    page = (run_dir / "report.html").read_text()
    summary = page[page.index('<section id="summary">'):page.index('<section id="overview">')]
    for f in found:
        assert html.escape(f.answer) in summary, f.answer
    assert page.index('id="summary"') < page.index("<table")  # the summary comes before any table
    assert not re.search(r'(src|href)="(https?:)?//', page)  # nothing from the network


PROBE = """<script>
window.addEventListener('load', function () {
  var b = document.body, s = document.getElementById('summary');
  b.setAttribute('data-summary-top', String(Math.round(s.getBoundingClientRect().top)));
  b.setAttribute('data-scroll-width', String(document.documentElement.scrollWidth));
  var wide = [];
  document.querySelectorAll('body *').forEach(function (e) {
    var r = e.getBoundingClientRect();
    if (r.right > window.innerWidth + 1 && !e.closest('.wide')) wide.push(e.tagName + '.' + e.className);
  });
  b.setAttribute('data-too-wide', wide.slice(0, 5).join(' '));
  var board = document.querySelector('table.board'), th = board.querySelector('th[data-col="1"]');
  th.click();
  var ranks = Array.prototype.map.call(board.tBodies[0].rows, function (r) {
    return parseFloat(r.cells[1].getAttribute('data-v')); });
  var sorted = ranks.every(function (v, i) { return i === 0 || ranks[i - 1] <= v; });
  th.click();
  var first = parseFloat(board.tBodies[0].rows[0].cells[1].getAttribute('data-v'));
  b.setAttribute('data-sorted', sorted && first === Math.max.apply(null, ranks) ? '1' : '0');
});
</script></body>"""


def _chromium(browser, profile, *args):
    return subprocess.run(
        [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--hide-scrollbars",
         f"--user-data-dir={profile}", f"--window-size={WIDTH},{HEIGHT}", *args],
        capture_output=True, text=True, timeout=120)


def test_report_reads_well_in_headless_chromium(run_dir, tmp_path):
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        pytest.skip("chromium not installed (.ci/run installs Debian's chromium)")
    report.write_all(run_dir)
    page = run_dir / "report.html"
    assert page.stat().st_size < 3_000_000
    result = _chromium(browser, tmp_path / "p1", "--enable-logging=stderr", "--v=0",
                       "--virtual-time-budget=5000", "--dump-dom", page.as_uri())
    assert result.returncode == 0, result.stderr[-2000:]
    assert [line for line in result.stderr.splitlines() if "CONSOLE" in line] == []
    dom = result.stdout
    assert 'data-ready="1"' in dom  # the page's script ran
    assert f'data-sections="{len(section_ids())}"' in dom
    for section in section_ids():
        assert re.search(rf'<section id="{section}">\s*<h2>', dom), section
    # the layout, measured in the browser by a probe added to a copy of the page
    probed = tmp_path / "probed.html"
    probed.write_text(page.read_text().replace("</body>", PROBE))
    result = _chromium(browser, tmp_path / "p2", "--virtual-time-budget=5000", "--dump-dom", probed.as_uri())
    body = re.search(r"<body([^>]*)>", result.stdout).group(1)
    facts = dict(re.findall(r'data-([a-z-]+)="([^"]*)"', body))
    assert 0 <= int(facts["summary-top"]) < HEIGHT  # the answer is on the first screen
    assert int(facts["scroll-width"]) <= WIDTH, facts["too-wide"]  # nothing overflows the window
    assert facts["sorted"] == "1"  # a click on a column head sorts the leaderboard by it
    # and what a reader sees first
    shot = tmp_path / "first-screen.png"
    result = _chromium(browser, tmp_path / "p3", f"--screenshot={shot}", page.as_uri())
    assert result.returncode == 0 and shot.is_file()
    from PIL import Image

    image = np.asarray(Image.open(shot).convert("L"))
    assert image.shape == (HEIGHT, WIDTH)
    assert image[:40].mean() < 60 < image[200:].mean()  # the dark title bar, then a light page
    assert image[200:].std() > 20  # with text on it, not a blank screen


def test_normalised_scores_put_random_at_zero_and_the_best_at_one():
    from explainbench.bench.report.overview_figures import normalised

    board = pd.DataFrame({
        "metric": ["up"] * 3 + ["down"] * 3,
        "explainer": ["random", "a", "b"] * 2,
        "higher_is_better": [True] * 3 + [False] * 3,
        "mean": [0.2, 0.6, 0.4, 0.5, 0.1, 0.9],
        "best": [False, True, False, False, True, False]})
    assert normalised(board).tolist() == pytest.approx([0.0, 1.0, 0.5, 0.0, 1.0, -1.0])


def test_figures_are_byte_identical_on_a_rerun(run_dir):
    report.write_all(run_dir)
    first = {p.name: p.read_bytes() for p in (run_dir / "plots").iterdir()}
    report.write_all(run_dir)
    again = {p.name: p.read_bytes() for p in (run_dir / "plots").iterdir()}
    assert first.keys() == again.keys()
    assert [n for n in first if first[n] != again[n]] == []


def test_publish_copies_leaderboards_with_provenance_and_the_findings(run_dir, tmp_path):
    (tmp_path / "report.html").write_text("a page from an earlier run")
    (run_dir / "report.html").unlink(missing_ok=True)  # a run without a page (plots=False) ...
    report.write_all(run_dir, plots=False)  # ... must not leave the earlier page published
    published = publish_leaderboards(run_dir, tmp_path / "leaderboard")
    names = {p.relative_to(tmp_path).as_posix() for p in published}
    assert {"leaderboard/mnist-mnist_cnn.csv", "leaderboard/imdb-imdb_lstm.csv", "FINDINGS.md",
            "scores.parquet", "scores.json", "costs.csv", "versus_controls.csv",
            "agreement_pairs.csv"} <= names and "report.html" not in names
    assert not (tmp_path / "report.html").exists()
    text = published[0].read_text()
    assert text.startswith("# explainbench leaderboard") and "checkpoint sha256" in text
    table = pd.read_csv(published[0], comment="#")
    assert len(table) == len(pd.read_csv(run_dir / "leaderboard" / published[0].name))
    assert (tmp_path / "FINDINGS.md").read_text() == (run_dir / "FINDINGS.md").read_text()
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert (tmp_path / "FINDINGS.md").read_text().startswith(f"# Findings: {manifest['suite']['name']}")


def test_publish_copies_the_report_page_with_the_boards(run_dir, tmp_path):
    report.write_all(run_dir)
    published = publish_leaderboards(run_dir, tmp_path / "leaderboard")
    assert tmp_path / "report.html" in published
    assert (tmp_path / "report.html").read_bytes() == (run_dir / "report.html").read_bytes()


def test_report_of_a_folder_without_scores_is_a_clear_error(tmp_path):
    with pytest.raises(BenchError, match="is not a run folder"):
        report.write_all(tmp_path)


def test_an_explanation_styles_table_is_shown_with_the_stability_study(tmp_path):
    from explainbench.bench.report.reader import RunFolder
    from explainbench.bench.studies import stability_results

    assert "no stability study" in stability_results.section(RunFolder(tmp_path))
    pd.DataFrame({"style": ["lime", "anchor", "saliency"], "metric": ["stability_spearman"] * 3,
                  "mean": [0.31, 0.42, 1.0]}).to_csv(tmp_path / "explanation_styles-image.csv", index=False)
    section = stability_results.section(RunFolder(tmp_path))
    assert 'Explanation styles (<a href="explanation_styles-image.csv">' in section
    assert section.index("lime") < section.index("anchor") < section.index("saliency")
    assert 'data-v="0.31"' in section  # sortable by value


def test_a_resumed_run_names_every_commit_it_ran_at(run_dir, tmp_path):
    from explainbench.bench.store import describe_commits, run_commits

    manifest = {"git_commit": "aaa111", "sessions": [{"git_commit": "aaa111"},
                                                       {"git_commit": "bbb222"},
                                                       {"git_commit": "bbb222"}]}
    assert run_commits(manifest) == ["aaa111", "bbb222"]
    assert describe_commits(manifest, 3) == "aaa, then bbb (resumed)"
    assert describe_commits({"git_commit": "ccc333"}) == "ccc333"  # manifests without sessions
    # the published header names both sittings' commits
    path = run_dir / "manifest.json"
    original = path.read_text()
    stored = json.loads(original)
    stored["sessions"] = stored["sessions"][:1] + [dict(stored["sessions"][0], git_commit="bbb222")]
    path.write_text(json.dumps(stored))
    try:
        report.write_all(run_dir, plots=False)
        board = publish_leaderboards(run_dir, tmp_path / "leaderboard")[0].read_text()
        assert f"# git commit: {stored['sessions'][0]['git_commit']}, then bbb222 (resumed)" in board
        assert "then bbb222 (resumed)" in (run_dir / "FINDINGS.md").read_text()
    finally:
        path.write_text(original)


def test_publish_never_replaces_another_suite_or_more_samples_without_force(run_dir, tmp_path):
    dest = tmp_path / "leaderboard"
    report.write_all(run_dir, plots=False)
    publish_leaderboards(run_dir, dest)
    board = dest / "mnist-mnist_cnn.csv"
    # the published run becomes one of another suite with more samples, as standard is to quick
    text = board.read_text().replace("# suite: report-tiny", "# suite: standard")
    table = pd.read_csv(board, comment="#").assign(n=200)
    header = "".join(line + "\n" for line in text.splitlines() if line.startswith("#"))
    board.write_text(header + table.to_csv(index=False))
    before = board.read_text()
    with pytest.raises(BenchError, match="--force") as refused:
        publish_leaderboards(run_dir, dest)
    assert "standard (n = 200) -> report-tiny (n = 5)" in str(refused.value)
    assert board.read_text() == before  # nothing replaced
    publish_leaderboards(run_dir, dest, force=True)
    assert "# suite: report-tiny" in board.read_text()
    publish_leaderboards(run_dir, dest)  # the same suite again: republishing needs no --force


def test_no_table_outlives_the_model_or_metric_it_came_from(run_dir, tmp_path):
    """A leaderboard or agreement matrix of a model the run no longer has (a suite edited and
    rerun into the same folder, a file left by an older version) is removed by the report."""
    copy_dir = tmp_path / "run"
    shutil.copytree(run_dir, copy_dir)
    report.write_all(copy_dir, plots=False)
    stale = [copy_dir / "leaderboard" / "mnist-mnist_gone.csv",
             copy_dir / "agreement" / "mnist-mnist_gone-agreement_spearman.csv"]
    for path in stale:
        path.write_text("explainer\nsaliency\n")
    written = {p.resolve() for p in report.write_all(copy_dir, plots=False)}
    assert not any(path.exists() for path in stale)
    left = set((copy_dir / "leaderboard").glob("*.csv")) | set((copy_dir / "agreement").glob("*.csv"))
    assert left and {p.resolve() for p in left} <= written


def test_report_refuses_a_folder_another_process_is_writing(run_dir, tmp_path):
    """`bench report` on a folder a running `bench run` holds: exit 4 with one line, and not a
    file of the folder changed; the report of a finished run leaves no .lock behind."""
    import os
    import sys

    copy_dir = tmp_path / "run"
    shutil.copytree(run_dir, copy_dir)
    holder = subprocess.Popen([sys.executable, "-c",
                               "import sys, time; from pathlib import Path; "
                               "from explainbench.bench.store import ResultStore\n"
                               "with ResultStore(Path(sys.argv[1])).lock():\n"
                               "    print('held', flush=True); time.sleep(60)", str(copy_dir)],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        before = {p: p.stat().st_mtime_ns for p in copy_dir.rglob("*") if p.is_file()}
        done = subprocess.run([sys.executable, "-m", "explainbench.bench", "report", str(copy_dir)],
                              capture_output=True, text=True, env=os.environ, timeout=300)
        lines = done.stderr.strip().splitlines()
        assert done.returncode == 4 and len(lines) == 1 and "in use by bench run" in lines[0], done
        assert {p: p.stat().st_mtime_ns for p in copy_dir.rglob("*") if p.is_file()} == before
    finally:
        holder.kill()
        holder.wait()
    assert (copy_dir / ".lock").exists()  # a killed holder cannot remove it; nor does it block
    done = subprocess.run([sys.executable, "-m", "explainbench.bench", "report", "--no-plots",
                           str(copy_dir)], capture_output=True, text=True, env=os.environ, timeout=300)
    assert done.returncode == 0, done.stderr
    assert not (copy_dir / ".lock").exists()
