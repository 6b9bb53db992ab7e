"""The run folder's format, written by the run stage and read by the report: one folder per run, one set of part files per finished cell, each written
atomically, and a digest file that marks the cell finished.

    RUN_DIR/
      suite.yaml          the suite as it was run
      manifest.json       provenance: commit, packages, device, seeds, slice and model digests, times
      parts/<cell>.parquet         rows of one finished cell
      parts/<cell>.curves.parquet  the curves of its curve metrics
      parts/<cell>.cost.json       its explanation cost (seconds, forward passes)
      parts/<cell>.timing.json     its wall time, explaining and scoring
      parts/<cell>.gallery.safetensors   a few explained samples for the report's gallery
      parts/<cell>.done.json       the SHA-256 and size of each of the files above; written last
      failures/<cell>.json         a failed cell's error (removed when a retry succeeds)
      damaged/<cell>.*             parts that failed verification, moved aside (never deleted)
      scores.parquet, curves.parquet, costs.csv, timings.csv, failures.csv   derived from the parts

Every file is written to a temporary name, flushed to disk (fsync) and renamed, so a crash or a
full disk leaves either the whole file or none. A cell is finished when its digest file exists;
`verify` checks every part against it, and a resumed run or `bench report` moves damaged or
unverified parts (truncated, edited, or a cell whose digest never got written) to damaged/ and
computes those cells again, so no table is ever built from a part that was not verified. The
derived files are rebuilt from the verified parts in a fixed order, so a resumed run's
`scores.parquet` equals an uninterrupted one's.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import io
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from explainbench.core.errors import BenchError

# The key of a score row, in the order scores.parquet is sorted by.
# The columns of a file `bench score` writes (bench/run/score_file.py): what `bench compare`
# (bench/report/compare.py) pairs with a published run's rows.
SCORE_FILE_COLUMNS = ["sample_id", "target", "metric", "value", "higher_is_better", "task", "model",
                      "model_sha256", "metric_params", "metric_version", "seed", "explainer",
                      "params", "explainer_version"]
KEY_COLUMNS = ["suite", "experiment", "study", "task", "model", "explainer", "params_hash",
               "metric", "metric_params", "seed", "sample_id"]
SCORE_COLUMNS = [
    "suite", "suite_version", "suite_hash", "experiment", "study", "task", "model", "model_sha256",
    "explainer", "params_hash", "params", "metric", "metric_params", "category", "family", "seed",
    "sample_id", "label", "target", "pred", "correct", "value", "higher_is_better", "slice",
    "slice_hash", "cell_id", "explainer_version", "metric_version",
]
CURVE_KEY = [c for c in KEY_COLUMNS] + ["step"]


def encode_params(params: dict) -> str:
    """A row's `params` / `metric_params`: the settings as canonical JSON (a string column keeps
    scores.parquet one flat table that any Parquet reader opens)."""
    return json.dumps(params, sort_keys=True, default=str)


def decode_params(text: str) -> dict:
    """The settings a row's `params` / `metric_params` string holds; every reader decodes here."""
    return json.loads(text)


def setting(column: pd.Series, name: str, default=None) -> list:
    """One setting of every row, from its `params` or `metric_params` column (`default` where a
    row's settings do not name it)."""
    return [decode_params(text).get(name, default) for text in column]


class RunLockedError(BenchError):
    exit_code = 4


class StorageError(BenchError):
    """The disk refused a write (full, read-only, quota): what was written before is intact."""

    exit_code = 5


DONE = "done.json"  # the suffix of a cell's digest file, its completion marker
REQUIRED_PARTS = {"parquet", "timing.json"}  # every finished cell writes its rows and its timing


def atomic_write_bytes(path: Path, payload: bytes) -> None:
    """Write to a temporary file, fsync, rename: the file is whole or absent. A write the disk
    refuses removes the temporary file and is one line naming the file."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            f.write(payload)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise StorageError(
            f"could not write {path} ({exc.strerror or exc}); the files written before it are "
            "intact: free some space and rerun the same command to resume") from None


def check_output_file(path: Path, option: str, suffixes: tuple[str, ...]) -> Path:
    """An output file named on the command line, checked before any work is done: its kind by
    suffix and that it is not a folder (exit 2, naming the valid suffixes), and that its folder
    can be created and written (exit 5). The probe file is removed again."""
    if path.is_dir():
        raise BenchError(f"{option} {path} is a folder; give the file to write")
    if path.suffix.lower() not in suffixes:
        raise BenchError(f"{option} {path}: unknown file type {path.suffix or '(none)'!r}; "
                         f"valid: {', '.join(suffixes)}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        probe = path.parent / f".{path.name}.{os.getpid()}.probe"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise StorageError(f"{option} {path}: cannot create a file in {path.parent} "
                           f"({exc.strerror or exc})") from None
    return path


def digest(payload: bytes) -> str:
    return hashlib.sha256(payload).hexdigest()


@dataclass
class Verification:
    """What `ResultStore.verify` found: finished cells whose parts match their digests, damaged
    ones (cell id -> why), and part files of no finished cell."""

    verified: list[str] = field(default_factory=list)
    damaged: dict[str, str] = field(default_factory=dict)
    unverified: dict[str, list[str]] = field(default_factory=dict)  # cell id -> its file names

    @property
    def ok(self) -> bool:
        return not self.damaged and not self.unverified

    def lines(self) -> list[str]:
        out = [f"damaged cell {cell}: {why}" for cell, why in sorted(self.damaged.items())]
        out += [f"unverified cell {cell}: {', '.join(files)} without its digest"
                for cell, files in sorted(self.unverified.items())]
        return out


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
    atomic_write_bytes(path, parquet_bytes(frame))


_HELD: dict[str, int] = {}  # run folders whose lock this process holds -> depth


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
    def lock(self, holder: str = "bench run"):
        """One writer per run folder: a second process (`bench run`, `bench report`) on it stops
        with a clear message. Re-entrant within a process (`bench report` holds it while it
        recomputes damaged cells through the runner). The .lock file is removed on release."""
        key = str(self.root.resolve())
        if key in _HELD:
            _HELD[key] += 1
            try:
                yield
            finally:
                _HELD[key] -= 1
            return
        handle = self._acquire(holder)
        _HELD[key] = 1
        try:
            yield
        finally:
            del _HELD[key]
            # Unlink before unlocking: a process that opened the old file and then gets its
            # lock sees that the path no longer names it, and tries again (_acquire).
            with contextlib.suppress(OSError):
                os.unlink(self.root / ".lock")
            fcntl.flock(handle, fcntl.LOCK_UN)
            handle.close()

    def _acquire(self, holder: str):
        for _ in range(100):  # each retry means another process released it meanwhile
            try:
                self.root.mkdir(parents=True, exist_ok=True)
                handle = open(self.root / ".lock", "a+")
            except OSError as exc:  # a read-only or full disk: storage (exit 5), not a bug
                raise StorageError(f"cannot write in {self.root} ({exc.strerror or exc}); give a "
                                   "writable --out") from None
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.seek(0)
                who = handle.read().strip() or "another process"
                handle.close()
                raise RunLockedError(
                    f"output folder {self.root} is in use by {who}; wait for it to finish or "
                    "choose another --out"
                ) from None
            try:
                current = os.stat(self.root / ".lock").st_ino
            except FileNotFoundError:
                current = None
            if current != os.fstat(handle.fileno()).st_ino:  # released and removed meanwhile
                fcntl.flock(handle, fcntl.LOCK_UN)
                handle.close()
                continue
            handle.seek(0)
            handle.truncate()
            handle.write(f"{holder} (pid {os.getpid()})")
            handle.flush()
            return handle
        raise RunLockedError(f"output folder {self.root} is locked and released over and over; "
                             "try again")

    # ------------------------------------------------------------------ cells

    def is_done(self, cell_id: str) -> bool:
        return (self.parts / f"{cell_id}.{DONE}").exists()

    def write_cell(self, cell_id: str, files: dict[str, bytes]) -> None:
        """Write a finished cell's files (from `encode_cell`), then its digest file, which marks
        it finished: a crash in between leaves parts that the next run finds unverified."""
        for suffix, payload in files.items():
            atomic_write_bytes(self.parts / f"{cell_id}.{suffix}", payload)
        record = {suffix: {"sha256": digest(payload), "bytes": len(payload)}
                  for suffix, payload in files.items()}
        atomic_write_bytes(self.parts / f"{cell_id}.{DONE}",
                           json.dumps({"cell_id": cell_id, "files": record}, sort_keys=True).encode())
        (self.failures_dir / f"{cell_id}.json").unlink(missing_ok=True)

    # ------------------------------------------------------------------ verification

    def _cell_files(self) -> dict[str, list[Path]]:
        """Every part file by the cell it belongs to (the name before the first dot)."""
        cells: dict[str, list[Path]] = {}
        for path in sorted(self.parts.glob("*")) if self.parts.is_dir() else []:
            if path.name.startswith("."):  # a temporary file a killed writer left
                continue
            cells.setdefault(path.name.split(".", 1)[0], []).append(path)
        return cells

    def verify(self) -> Verification:
        """Check every part against its cell's digest file; changes nothing."""
        result = Verification()
        for cell_id, paths in self._cell_files().items():
            names = {p.name.split(".", 1)[1]: p for p in paths}
            if DONE not in names:
                result.unverified[cell_id] = sorted(p.name for p in paths)
                continue
            why = self._check(names, cell_id)
            if why:
                result.damaged[cell_id] = why
            else:
                result.verified.append(cell_id)
        return result

    @staticmethod
    def _check(names: dict[str, Path], cell_id: str) -> str | None:
        try:
            digest_file = json.loads(names[DONE].read_text())
            record = digest_file["files"]
            if not isinstance(record, dict) or not all(
                    isinstance(v, dict) and {"sha256", "bytes"} <= set(v) for v in record.values()):
                raise TypeError("not a map of parts to their digests")
        except (OSError, ValueError, KeyError, TypeError):
            return f"its digest file {names[DONE].name} is unreadable"
        if digest_file.get("cell_id") != cell_id:
            return f"its digest file names cell {digest_file.get('cell_id')!r}, not this one"
        missing = sorted(REQUIRED_PARTS - set(record))
        if missing:  # a digest emptied (with its parts deleted) must not pass as a finished cell
            return (f"its digest lists no {', '.join(missing)}, which every finished cell writes"
                    + ("" if all(m not in names for m in missing) else " (present but unlisted)"))
        for suffix, expected in sorted(record.items()):
            path = names.get(suffix)
            if path is None:
                return f"{suffix} is missing"
            payload = path.read_bytes()
            if len(payload) != expected["bytes"]:
                return f"{path.name} has {len(payload):,} bytes, {expected['bytes']:,} were written"
            if digest(payload) != expected["sha256"]:
                return f"{path.name} does not match its SHA-256 (edited or corrupted)"
        extra = sorted(set(names) - set(record) - {DONE})
        return f"{', '.join(extra)} not in its digest" if extra else None

    def quarantine(self, verification: Verification) -> list[str]:
        """Move the parts of damaged and unverified cells to damaged/ (kept, never deleted), so
        those cells count as unfinished and are computed again; returns one line per cell."""
        moved = sorted(set(verification.damaged) | set(verification.unverified))
        if moved:
            (self.root / "damaged").mkdir(exist_ok=True)
        files = self._cell_files()
        for cell_id in moved:
            for path in files.get(cell_id, []):
                os.replace(path, self.root / "damaged" / path.name)
        return [f"{line}: moved to damaged/, it will be computed again"
                for line in verification.lines()]

    def write_failure(self, cell_id: str, record: dict) -> None:
        atomic_write_bytes(self.failures_dir / f"{cell_id}.json",
                           json.dumps(record, indent=2, sort_keys=True).encode())

    def failed_cells(self) -> set[str]:
        return {p.stem for p in self.failures_dir.glob("*.json")} if self.failures_dir.exists() else set()

    # ------------------------------------------------------------------ derived files

    def scores(self) -> pd.DataFrame:
        files = sorted(p for p in self.parts.glob("*.parquet") if not p.name.endswith(".curves.parquet")
                       and self.is_done(p.name.split(".", 1)[0]))
        if not files:
            return pd.DataFrame(columns=SCORE_COLUMNS)
        frame = pd.concat([pd.read_parquet(p) for p in files], ignore_index=True)
        return frame.sort_values(KEY_COLUMNS, kind="stable").reset_index(drop=True)

    def curves(self) -> pd.DataFrame:
        files = sorted(p for p in self.parts.glob("*.curves.parquet")
                       if self.is_done(p.name.split(".", 1)[0]))
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
        return read_manifest_file(path) if path.exists() else None

    def write_manifest(self, manifest: dict) -> None:
        atomic_write_bytes(self.root / "manifest.json",
                           json.dumps(manifest, indent=2, sort_keys=True, default=str).encode())


def read_manifest_file(path: Path) -> dict:
    """A run folder's manifest.json; a truncated or edited one is a one-line error."""
    try:
        manifest = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise BenchError(f"{path} is not a readable manifest ({type(exc).__name__}); it is "
                         "written by `bench run`: rerun it with the same --out") from None
    if not isinstance(manifest, dict):
        raise BenchError(f"{path} is not a manifest (a JSON object is expected)")
    return manifest


def run_commits(manifest: dict) -> list[str]:
    """Every commit the run's sittings ran at, in order: a resumed run may span several, and its
    provenance must name them all, not only the first."""
    commits = [s.get("git_commit") for s in manifest.get("sessions", []) if s.get("git_commit")]
    commits = commits or [manifest.get("git_commit") or "unknown"]
    return list(dict.fromkeys(commits))


def describe_commits(manifest: dict, width: int | None = None) -> str:
    """'abc' for one commit, 'abc, then def (resumed)' for a run resumed at another commit."""
    commits = [c[:width] if width else c for c in run_commits(manifest)]
    return commits[0] if len(commits) == 1 else ", then ".join(commits) + " (resumed)"
