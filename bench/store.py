"""The result store: one folder per run, one Parquet part per finished cell, written atomically.

    RUN_DIR/
      suite.yaml          the suite as it was run
      manifest.json       provenance: commit, packages, device, seeds, slice and model digests, times
      parts/<cell>.parquet         rows of one finished cell (written to a temporary name, renamed)
      parts/<cell>.curves.parquet  the curves of its curve metrics
      parts/<cell>.cost.json       its explanation cost (seconds, forward passes)
      parts/<cell>.timing.json     its wall time, explaining and scoring
      parts/<cell>.gallery.safetensors   a few explained samples for the report's gallery
      failures/<cell>.json         a failed cell's error (removed when a retry succeeds)
      scores.parquet, curves.parquet, costs.csv, timings.csv, failures.csv   derived from the parts

A cell is finished when its part exists, so a run killed at any moment resumes by skipping finished
cells; the derived files are rebuilt from the parts in a fixed order, so a resumed run's
`scores.parquet` equals an uninterrupted one's. Parts are never overwritten or deleted.
"""

from __future__ import annotations

import contextlib
import fcntl
import io
import json
import os
from pathlib import Path

import pandas as pd

from explainbench.core.errors import BenchError

# The key of a score row, in the order scores.parquet is sorted by.
KEY_COLUMNS = ["suite", "experiment", "study", "task", "model", "explainer", "params_hash",
               "metric", "metric_params", "seed", "sample_id"]
SCORE_COLUMNS = [
    "suite", "suite_version", "suite_hash", "experiment", "study", "task", "model", "model_sha256",
    "explainer", "params_hash", "params", "metric", "metric_params", "category", "family", "seed",
    "sample_id", "label", "target", "pred", "correct", "value", "higher_is_better", "slice",
    "slice_hash", "cell_id",
]
CURVE_KEY = [c for c in KEY_COLUMNS] + ["step"]


class RunLockedError(BenchError):
    exit_code = 4


def atomic_write_bytes(path: Path, payload: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as f:
        f.write(payload)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def parquet_bytes(frame: pd.DataFrame) -> bytes:
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    return buffer.getvalue()


def encode_cell(rows: pd.DataFrame, curves: pd.DataFrame | None = None,
                costs: list[dict] | None = None, extras: dict[str, bytes] | None = None,
                timing: dict | None = None) -> dict[str, bytes]:
    """A finished cell as {file suffix: bytes}: what a worker (local or Ray) hands to the store."""
    files = dict(extras or {})
    if timing:
        files["timing.json"] = json.dumps(timing, sort_keys=True).encode()
    if costs:
        files["cost.json"] = json.dumps(costs, sort_keys=True).encode()
    if curves is not None and len(curves):
        files["curves.parquet"] = parquet_bytes(curves)
    files["parquet"] = parquet_bytes(rows)
    return files


def atomic_write_parquet(path: Path, frame: pd.DataFrame) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    frame.to_parquet(tmp, index=False)
    with open(tmp, "rb") as f:
        os.fsync(f.fileno())
    os.replace(tmp, path)


class ResultStore:
    def __init__(self, root: str | Path):
        self.root = Path(root)
        self.parts = self.root / "parts"
        self.failures_dir = self.root / "failures"

    # ------------------------------------------------------------------ lifecycle

    def open_for(self, suite) -> None:
        """Create the folder, or check that an existing one holds this same suite."""
        self.parts.mkdir(parents=True, exist_ok=True)
        self.failures_dir.mkdir(exist_ok=True)
        suite_file = self.root / "suite.yaml"
        manifest = self.read_manifest()
        if manifest and manifest.get("suite", {}).get("hash") != suite.content_hash:
            old = manifest.get("suite", {})
            raise BenchError(
                f"output folder {self.root} holds results of suite {old.get('name')!r} "
                f"(hash {old.get('hash')}), not of {suite.name!r} (hash {suite.content_hash}); "
                "choose another --out"
            )
        if not suite_file.exists():
            atomic_write_bytes(suite_file, suite.text.encode("utf-8"))

    @contextlib.contextmanager
    def lock(self):
        """One writer per run folder; a second `bench run` on it stops with a clear message."""
        self.root.mkdir(parents=True, exist_ok=True)
        handle = open(self.root / ".lock", "a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            handle.close()
            raise RunLockedError(
                f"output folder {self.root} is in use by {holder}; wait for it to finish or "
                "choose another --out"
            ) from None
        try:
            handle.seek(0)
            handle.truncate()
            handle.write(f"bench run (pid {os.getpid()})")
            handle.flush()
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
            handle.close()

    # ------------------------------------------------------------------ cells

    def is_done(self, cell_id: str) -> bool:
        return (self.parts / f"{cell_id}.parquet").exists()

    def write_cell(self, cell_id: str, files: dict[str, bytes]) -> None:
        """Write a finished cell's files (from `encode_cell`). The scores part goes last: it is
        the completion marker of the cell."""
        for suffix, payload in files.items():
            if suffix != "parquet":
                atomic_write_bytes(self.parts / f"{cell_id}.{suffix}", payload)
        atomic_write_bytes(self.parts / f"{cell_id}.parquet", files["parquet"])
        (self.failures_dir / f"{cell_id}.json").unlink(missing_ok=True)

    def write_failure(self, cell_id: str, record: dict) -> None:
        atomic_write_bytes(self.failures_dir / f"{cell_id}.json",
                           json.dumps(record, indent=2, sort_keys=True).encode())

    def failed_cells(self) -> set[str]:
        return {p.stem for p in self.failures_dir.glob("*.json")} if self.failures_dir.exists() else set()

    # ------------------------------------------------------------------ derived files

    def scores(self) -> pd.DataFrame:
        files = sorted(p for p in self.parts.glob("*.parquet") if not p.name.endswith(".curves.parquet"))
        if not files:
            return pd.DataFrame(columns=SCORE_COLUMNS)
        frame = pd.concat([pd.read_parquet(p) for p in files], ignore_index=True)
        return frame.sort_values(KEY_COLUMNS, kind="stable").reset_index(drop=True)

    def curves(self) -> pd.DataFrame:
        files = sorted(self.parts.glob("*.curves.parquet"))
        if not files:
            return pd.DataFrame()
        frame = pd.concat([pd.read_parquet(p) for p in files], ignore_index=True)
        return frame.sort_values(CURVE_KEY, kind="stable").reset_index(drop=True)

    def costs(self) -> pd.DataFrame:
        """Explanation cost per cell (seconds and forward passes per explanation). Timings vary
        between runs, so they live here and never in scores.parquet."""
        records = [r for p in sorted(self.parts.glob("*.cost.json")) for r in json.loads(p.read_text())]
        return pd.DataFrame(records)

    def timings(self) -> pd.DataFrame:
        """Wall time of every finished cell (explaining and scoring), for cost projections."""
        return pd.DataFrame([json.loads(p.read_text()) for p in sorted(self.parts.glob("*.timing.json"))])

    def failures(self) -> pd.DataFrame:
        records = [json.loads(p.read_text()) for p in sorted(self.failures_dir.glob("*.json"))]
        columns = ["cell_id", "kind", "experiment", "model", "explainer", "seed", "chunk",
                   "error_type", "error"]
        return pd.DataFrame(records, columns=columns)

    def consolidate(self) -> pd.DataFrame:
        """Rebuild scores.parquet, curves.parquet and failures.csv from the parts."""
        scores = self.scores()
        atomic_write_parquet(self.root / "scores.parquet", scores)
        curves = self.curves()
        if len(curves):
            atomic_write_parquet(self.root / "curves.parquet", curves)
        for name, frame in (("costs.csv", self.costs()), ("timings.csv", self.timings())):
            if len(frame):
                atomic_write_bytes(self.root / name, frame.to_csv(index=False).encode())
        failures = self.failures()
        atomic_write_bytes(self.root / "failures.csv", failures.to_csv(index=False).encode())
        return scores

    # ------------------------------------------------------------------ manifest

    def read_manifest(self) -> dict | None:
        path = self.root / "manifest.json"
        return json.loads(path.read_text()) if path.exists() else None

    def write_manifest(self, manifest: dict) -> None:
        atomic_write_bytes(self.root / "manifest.json",
                           json.dumps(manifest, indent=2, sort_keys=True, default=str).encode())
