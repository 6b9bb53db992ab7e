"""Damaged results are found and computed again; a full disk loses nothing.

Every cell's parts are recorded with their SHA-256 in a digest file written last; a truncated or
edited part, or parts whose digest never got written, are moved to damaged/ and recomputed by the
next `bench run` or `bench report`; `bench verify` only checks. A disk that fails half-way through
a write leaves no partial file and a folder the same command resumes.
"""

from __future__ import annotations

import copy
import errno
import subprocess
import sys

import pandas as pd
import pytest

from explainbench.bench import report, store as store_module
from explainbench.bench.run import runner, suite as suites
from explainbench.bench.store import ResultStore, StorageError
from explainbench.core.errors import BenchError
from tests.bench.test_runner import TINY


def tiny():
    return suites.parse(copy.deepcopy(TINY), source="tiny")


def bench(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "explainbench.bench", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def clean_run(tmp_path_factory, real_data):
    """An uninterrupted run (attribution cache off: every cell really computes)."""
    import os

    os.environ["BENCH_ATTRIBUTION_CACHE"] = "0"
    try:
        out = tmp_path_factory.mktemp("clean") / "run"
        runner.run(tiny(), out, device="cpu", show_progress=False)
    finally:
        del os.environ["BENCH_ATTRIBUTION_CACHE"]
    return out


def copy_run(src, dst):
    import shutil

    shutil.copytree(src, dst)
    return dst


def scores(run_dir):
    return pd.read_parquet(run_dir / "scores.parquet").drop(columns=["cell_id"])


def test_a_clean_run_verifies(clean_run):
    result = ResultStore(clean_run).verify()
    assert result.ok and len(result.verified) == 5
    done = bench("verify", str(clean_run))
    assert done.returncode == 0 and "5 cells verified, 0 damaged, 0 unverified" in done.stdout


def test_truncated_and_edited_parts_are_found_and_recomputed_by_report(clean_run, tmp_path,
                                                                        monkeypatch):
    monkeypatch.setenv("BENCH_ATTRIBUTION_CACHE", "0")
    run = copy_run(clean_run, tmp_path / "run")
    parts = sorted((run / "parts").glob("*.parquet"))
    truncated = next(p for p in parts if not p.name.endswith(".curves.parquet"))
    truncated.write_bytes(truncated.read_bytes()[: truncated.stat().st_size // 2])
    edited = next(p for p in parts if p.name.endswith(".curves.parquet")
                  and p.name.split(".")[0] != truncated.name.split(".")[0])  # another cell
    payload = bytearray(edited.read_bytes())
    payload[len(payload) // 2] ^= 0xFF
    edited.write_bytes(bytes(payload))

    check = bench("verify", str(run))
    assert check.returncode == 6
    lines = check.stderr.strip().splitlines()
    assert len(lines) == 2 and "Traceback" not in check.stderr
    assert any(truncated.name.split(".")[0] in line and "bytes" in line for line in lines)
    assert any(edited.name.split(".")[0] in line and "SHA-256" in line for line in lines)
    with pytest.raises(BenchError, match="do not verify"):  # never tables from unverified parts
        report.write_all(run, plots=False)

    done = bench("report", str(run), "--no-plots")
    assert done.returncode == 0, done.stderr
    repaired = [line for line in done.stderr.splitlines() if line.startswith("damaged cell")]
    assert len(repaired) == 2 and all("computed again" in line for line in repaired)
    assert (run / "damaged" / truncated.name).is_file()  # kept for inspection
    assert ResultStore(run).verify().ok
    pd.testing.assert_frame_equal(scores(run), scores(clean_run))


def test_parts_without_their_digest_are_recomputed_on_resume(clean_run, tmp_path, monkeypatch):
    """A crash between a cell's parts and its digest file: the next run recomputes the cell."""
    monkeypatch.setenv("BENCH_ATTRIBUTION_CACHE", "0")
    run = copy_run(clean_run, tmp_path / "run")
    digest = sorted((run / "parts").glob("*.done.json"))[0]
    digest.unlink()
    summary = runner.run(tiny(), run, device="cpu", show_progress=False)
    assert summary.done == 1 and summary.skipped == 4
    assert len(summary.repaired) == 1 and "unverified cell" in summary.repaired[0]
    pd.testing.assert_frame_equal(scores(run), scores(clean_run))


def test_a_disk_that_fills_up_half_way_through_a_write_loses_nothing(clean_run, tmp_path,
                                                                     monkeypatch):
    monkeypatch.setenv("BENCH_ATTRIBUTION_CACHE", "0")
    real_open, writes = open, []

    class FailingFile:
        """Writes half the bytes, then the disk is full (from the 7th part file on)."""

        def __init__(self, handle):
            self.handle = handle

        def write(self, payload):
            writes.append(len(payload))
            if len(writes) >= 7:
                self.handle.write(payload[: len(payload) // 2])
                raise OSError(errno.ENOSPC, "No space left on device")
            return self.handle.write(payload)

        def __getattr__(self, name):
            return getattr(self.handle, name)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.handle.close()

    def failing_open(path, mode="r", *args, **kwargs):
        handle = real_open(path, mode, *args, **kwargs)
        return FailingFile(handle) if "parts" in str(path) and "w" in mode else handle

    monkeypatch.setattr(store_module, "open", failing_open, raising=False)
    out = tmp_path / "run"
    with pytest.raises(StorageError, match="could not write .*No space left on device.*rerun the "
                                           "same command to resume"):
        runner.run(tiny(), out, device="cpu", show_progress=False)
    assert not list((out / "parts").glob(".*.tmp"))  # no partial file left behind
    state = ResultStore(out).verify()
    assert state.damaged == {} and len(state.verified) >= 1  # what finished is intact

    monkeypatch.setattr(store_module, "open", real_open, raising=False)
    summary = runner.run(tiny(), out, device="cpu", show_progress=False)
    assert summary.ok and summary.skipped == len(state.verified)
    pd.testing.assert_frame_equal(scores(out), scores(clean_run))


@pytest.mark.parametrize("tamper", ["empty", "int", "other cell"])
def test_a_digest_that_lists_less_than_a_cell_writes_does_not_verify(clean_run, tmp_path, tamper):
    """A cell's done.json emptied to {"files": {}} with its parts deleted used to verify, and
    the cell's rows were silently gone."""
    import json

    run = copy_run(clean_run, tmp_path / "run")
    digest = sorted((run / "parts").glob("*.done.json"))[0]
    cell = digest.name.split(".")[0]
    other = sorted((run / "parts").glob("*.done.json"))[1].name.split(".")[0]
    for part in (run / "parts").glob(f"{cell}.*"):
        if part != digest and tamper != "other cell":
            part.unlink()
    digest.write_text(json.dumps({"empty": {"cell_id": cell, "files": {}},
                                  "int": {"cell_id": cell, "files": 3},
                                  "other cell": {**json.loads(digest.read_text()),
                                                 "cell_id": other}}[tamper]))
    check = bench("verify", str(run))
    assert check.returncode == 6, check.stdout
    line = check.stderr.strip()
    assert len(line.splitlines()) == 1 and cell in line
    assert {"empty": "lists no parquet", "int": "unreadable",
            "other cell": "names cell"}[tamper] in line


def test_the_attribution_cache_is_verified_and_a_bad_entry_recomputed(tmp_path, real_data,
                                                                      monkeypatch, capfd):
    """An entry replaced by another entry's file (valid, other numbers), flipped bytes, NaN maps:
    each is found on load (digest of key and contents, shape, finiteness), moved aside with one
    line, computed again; the scores equal a run without the cache."""
    from explainbench.core import paths, sealed

    shared = paths.cache_dir()  # the session's trained models and tokenizer, an empty cache else
    (tmp_path / "cache").mkdir()
    for name in ("models", "tokenizers"):
        if (shared / name).exists():
            (tmp_path / "cache" / name).symlink_to(shared / name)
    monkeypatch.setenv("BENCH_CACHE_DIR", str(tmp_path / "cache"))
    first = runner.run(tiny(), tmp_path / "a", device="cpu", show_progress=False)
    assert first.ok
    entries = sorted((tmp_path / "cache" / "attributions").rglob("*.safetensors"))
    assert len(entries) >= 3
    entries[0].write_bytes(entries[1].read_bytes())  # another entry's valid file
    payload = bytearray(entries[1].read_bytes())
    payload[-40] ^= 0xFF  # flipped bytes in the tensors
    entries[1].write_bytes(bytes(payload))
    import torch
    from safetensors.torch import save_file

    tensors = {"attributions": torch.full((3, 28, 28), float("nan"))}
    save_file(tensors, str(entries[2]), metadata={"cost": "{}", "sha256": sealed.digest(
        entries[2].stem, tensors)})  # a consistent entry of NaN
    capfd.readouterr()
    again = runner.run(tiny(), tmp_path / "b", device="cpu", show_progress=False)
    assert again.ok
    lines = [l for l in capfd.readouterr().err.splitlines() if "attribution cache entry" in l]
    assert len(lines) == 3 and all("computing it again" in l for l in lines)
    pd.testing.assert_frame_equal(scores(tmp_path / "a"), scores(tmp_path / "b"))
