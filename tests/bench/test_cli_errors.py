"""Every command, driven with bad input as a user would: one line on stderr, no traceback, and
one of the documented exit codes (bench.cli.EXIT_CODES)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import yaml

from explainbench.bench.cli import EXIT_CODES
from tests.bench.test_runner import TINY

BAD = {  # command line -> the exit code it must end with, and a piece of its one line
    "run without --suite": (["run"], 2, "Missing option '--suite'"),
    "run unknown suite": (["run", "--suite", "nope"], 2, "unknown suite 'nope'"),
    "run bad device": (["run", "--suite", "smoke", "--device", "tpu"], 2, "unknown device 'tpu'"),
    "run bad batch size": (["run", "--suite", "smoke", "--batch-size", "0"], 2, "--batch-size"),
    "run bad backend": (["run", "--suite", "smoke", "--backend", "spark"], 2, "unknown backend"),
    "run bad plugin": (["run", "--suite", "smoke", "--plugin", "no_such_plugin_module"], 2,
                       "plugin no_such_plugin_module"),
    "list bad kind": (["list", "modles"], 2, "Did you mean 'models'"),
    "train bad model": (["train", "mnist_cnx"], 2, "Did you mean 'mnist_cnn'"),
    "train bad profile": (["train", "mnist_cnn", "--profile", "fast"], 2, "unknown training profile"),
    "validate bad suite": (["validate", "nope.yaml"], 2, "does not exist"),
    "validate bad parameter": (["validate", "{bad_steps}"], 2, "steps = -3 is not allowed"),
    "validate oversized slice": (["validate", "{big_slice}"], 2, "from 1 to 10,000"),
    "report not a run": (["report", "{tmp}"], 2, "is not a run folder"),
    "verify not a run": (["verify", "{tmp}"], 2, "is not a run folder"),
    "publish not a run": (["leaderboard", "publish", "{tmp}"], 2, "has no leaderboard/*.csv"),
    "explain negative budget": (["explain", "-m", "mnist_cnn", "-e", "lime", "--n", "2", "-p",
                                 "n_samples=-5", "-o", "{tmp}/x.npz"], 2, "n_samples = -5"),
    "explain bad n": (["explain", "-m", "mnist_cnn", "-e", "lime", "--n", "0", "-o", "x.npz"], 2,
                      "--n"),
    "explain unknown explainer": (["explain", "-m", "mnist_cnn", "-e", "lmie", "-o", "x.npz"], 2,
                                  "Did you mean 'lime'"),
    "explain out is a folder": (["explain", "-m", "mnist_cnn", "-e", "saliency", "-o", "{tmp}"],
                                2, "is a folder"),
    "explain out not npz": (["explain", "-m", "mnist_cnn", "-e", "saliency", "-o", "{tmp}/x.csv"],
                            2, "valid: .npz"),
    "explain out unwritable": (["explain", "-m", "mnist_cnn", "-e", "saliency", "-o",
                                "/proc/x.npz"], 5, "cannot create a file in /proc"),
    "explain plot unknown type": (["explain", "-m", "mnist_cnn", "-e", "saliency", "-o",
                                   "{tmp}/x.npz", "--plot", "{tmp}/p.txt"], 2,
                                  "valid: .png, .svg, .pdf"),
    "explain plot unwritable": (["explain", "-m", "mnist_cnn", "-e", "saliency", "-o",
                                 "{tmp}/x.npz", "--plot", "/proc/nope/p.png"], 5,
                                "cannot create a file in /proc/nope"),
    "score missing file": (["score", "-m", "mnist_cnn", "-a", "{tmp}/none.npz", "--metric",
                            "deletion"], 2, "not found"),
    "score bad steps": (["score", "-m", "mnist_cnn", "-a", "{tmp}/none.npz", "--metric",
                         "deletion", "--steps", "-1"], 2, "steps = -1"),
    "stability bad seeds": (["stability", "-e", "lime", "-m", "mnist_cnn", "--seeds", "1"], 2,
                            "--seeds"),
    "unknown command": (["explian"], 2, "No such command 'explian'"),
    "report truncated manifest": (["report", "{broken_run}"], 2, "not a readable manifest"),
    "publish truncated manifest": (["leaderboard", "publish", "{broken_pub}", "--dest",
                                    "{tmp}/board"], 2, "not a readable manifest"),
}


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("bad")
    bad_steps, big_slice = yaml.safe_load(yaml.safe_dump(TINY)), yaml.safe_load(yaml.safe_dump(TINY))
    bad_steps["experiments"][0]["metrics"][0]["params"]["steps"] = -3
    big_slice["experiments"][0]["slice"]["size"] = 100_000
    (tmp / "bad_steps.yaml").write_text(yaml.safe_dump(bad_steps))
    (tmp / "big_slice.yaml").write_text(yaml.safe_dump(big_slice))
    for name in ("broken_run", "broken_pub"):
        (tmp / name / "parts").mkdir(parents=True)
        (tmp / name / "manifest.json").write_text('{"suite": {"name": "trun')  # cut mid-write
    (tmp / "broken_pub" / "leaderboard").mkdir()
    (tmp / "broken_pub" / "leaderboard" / "mnist-mnist_cnn.csv").write_text("task,model,n\n")
    return {"tmp": str(tmp), "bad_steps": str(tmp / "bad_steps.yaml"),
            "big_slice": str(tmp / "big_slice.yaml"), "broken_run": str(tmp / "broken_run"),
            "broken_pub": str(tmp / "broken_pub")}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_input_is_one_line_and_a_documented_exit_code(case, files, tmp_path):
    args, code, piece = BAD[case]
    args = [a.format(**files) for a in args]
    env = {**os.environ, "BENCH_CACHE_DIR": os.environ["BENCH_CACHE_DIR"]}
    done = subprocess.run([sys.executable, "-m", "explainbench.bench", *args], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == code and code in EXIT_CODES, done.stderr
    assert "Traceback" not in done.stderr + done.stdout
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), done.stderr
    assert piece in lines[0]


def test_a_bug_is_one_line_with_the_path_of_its_traceback(tmp_path):
    """An exception the code does not expect: exit 70, one line naming the log file, and the
    log file holds the traceback."""
    script = ("import sys; from explainbench.bench import cli\nfrom explainbench.bench.run import suite_cells\n"
              "suite_cells.plan = lambda *a, **k: 1 / 0\n"
              "sys.argv = ['bench', 'validate', 'smoke']\ncli.main()\n")
    done = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 70
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "ZeroDivisionError" in lines[0] and "this is a bug" in lines[0]
    log = lines[0].rsplit("traceback in ", 1)[1].rstrip(")")
    assert "Traceback (most recent call last)" in open(log).read()


# Hostile suites: each is TINY with one change, or a raw text; `bench validate` must refuse it with
# one line naming the field (exit 2), never accept it or fail as a bug.
HOSTILE_SUITES = {
    "nan timeout": ({"cell_timeout_s": float("nan")}, "cell_timeout_s"),
    "infinite timeout": ({"cell_timeout_s": float("inf")}, "cell_timeout_s"),
    "no models": ({"experiments[0].models": []}, "models"),
    "boolean seed": ({"seeds": [True]}, "seeds"),
    "boolean chunk size": ({"chunk_size": True}, "chunk_size"),
    "null name": ({"name": None}, "name"),
    "empty name": ({"name": ""}, "name"),
    "duplicate key": ("name: a\nname: b\nversion: 1\nexperiments: []\n", "given twice"),
    "alias bomb": ("a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 9)}]\n" for i in range(12)),
        "aliases"),
    "binary file": (b"\x00\xff\xfe\x89PNG\r\n", "not text"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE_SUITES))
def test_hostile_suites_are_refused_in_one_line(case, tmp_path):
    change, piece = HOSTILE_SUITES[case]
    path = tmp_path / "suite.yaml"
    if isinstance(change, bytes):
        path.write_bytes(change)
    elif isinstance(change, str):
        path.write_text(change)
    else:
        raw = yaml.safe_load(yaml.safe_dump(TINY))
        for key, value in change.items():
            if key.startswith("experiments[0]."):
                raw["experiments"][0][key.split(".", 1)[1]] = value
            else:
                raw[key] = value
        path.write_text(yaml.safe_dump(raw))
    done = subprocess.run([sys.executable, "-m", "explainbench.bench", "validate", str(path)],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300)
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: "), done.stderr
    assert piece in lines[0] and "Traceback" not in done.stderr


@pytest.mark.parametrize("out, piece", [("", "--out is empty"), ("{file}", "is a file")])
def test_run_refuses_an_out_that_is_no_folder(out, piece, tmp_path):
    (tmp_path / "f").write_text("x")
    done = subprocess.run([sys.executable, "-m", "explainbench.bench", "run", "--suite", "smoke",
                           "--out", out.format(file=tmp_path / "f")], cwd=tmp_path,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 2 and piece in done.stderr and len(done.stderr.splitlines()) == 1


def test_a_plugin_that_exits_at_import_is_an_error_not_a_silent_exit(tmp_path):
    (tmp_path / "sysexit.py").write_text("import sys\nsys.exit(0)\n")
    done = subprocess.run([sys.executable, "-m", "explainbench.bench", "list", "models",
                           "--plugin", "sysexit.py"], cwd=tmp_path, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 2 and "sys.exit(0)" in done.stderr


def test_a_plugin_file_named_like_a_standard_module_does_not_replace_it(tmp_path):
    (tmp_path / "json.py").write_text("VALUE = 1\n")
    done = subprocess.run([sys.executable, "-m", "explainbench.bench", "list", "suites",
                           "--plugin", "json.py"], cwd=tmp_path, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr


def test_sigterm_says_what_was_kept_and_how_to_resume(tmp_path):
    """A scheduler's stop (SIGTERM) used to end a run without a word."""
    import signal
    import time

    process = subprocess.Popen([sys.executable, "-m", "explainbench.bench", "run", "--suite",
                                "smoke", "--out", str(tmp_path / "run"), "--no-progress"],
                               cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
    deadline = time.time() + 120
    while time.time() < deadline and not (tmp_path / "run" / "parts").is_dir():
        time.sleep(0.2)  # running: its folder exists
    time.sleep(1.0)
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 130, err
    assert err.strip().splitlines()[-1] == ("terminated; finished cells are kept, rerun the same "
                                            "command to resume")


def test_a_folder_whose_lock_cannot_be_written_is_storage_not_a_bug(tmp_path):
    """Where the .lock file cannot be created (here a folder stands in its place; a read-only
    disk gives the same OSError, which root cannot be shown here), `bench run`, a resume and
    `bench report` stop with exit 5 and one line instead of 70."""
    run = tmp_path / "run"
    (run / "parts").mkdir(parents=True)
    (run / "manifest.json").write_text("{}")
    (run / ".lock").mkdir()
    for args in (["run", "--suite", "smoke", "--out", str(run)], ["report", str(run)]):
        done = subprocess.run([sys.executable, "-m", "explainbench.bench", *args], cwd=tmp_path,
                              capture_output=True, text=True, timeout=300)
        lines = done.stderr.strip().splitlines()
        assert done.returncode == 5 and len(lines) == 1, done.stderr
        assert lines[0].startswith("error: cannot write in") and str(run) in lines[0]
