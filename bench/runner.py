"""The runner: a suite becomes cells; finished cells are written atomically and skipped on a rerun;
a failing cell (exception, non-finite attributions, over its time limit) is recorded and the run
goes on.

Plain cells explain a chunk and score it with every metric (`bench/studies/scores.py`); study cells
(stability, background, sanity, agreement) combine several explanations (`bench/studies/`).
Stochastic explainers run under every seed of the experiment, deterministic ones under the first.
"""

from __future__ import annotations

import contextlib
import signal
import time
import traceback
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from bench import provenance, studies
from bench.cells import Cell, CellOutput, RunContext
from bench.errors import BenchError
from bench.store import ResultStore
from bench.suite import Suite


class CellTimeout(Exception):
    pass


def plan(suite: Suite) -> list[Cell]:
    """Every cell of a suite in a fixed order: per experiment, its scores cells, then its studies."""
    cells: list[Cell] = []
    for exp in suite.experiments:
        cells += studies.module("scores").plan(suite, exp)
        for name, options in exp.study_options().items():
            cells += studies.module(name).plan(suite, exp, options)
    ids = [c.id for c in cells]
    if len(set(ids)) != len(ids):
        raise BenchError(f"suite {suite.name} plans the same cell twice; make experiment names unique")
    return cells


def execute(cell: Cell, suite: Suite, ctx: RunContext) -> CellOutput:
    return studies.module(cell.kind).execute(cell, suite, ctx)


@contextlib.contextmanager
def time_limit(seconds: float):
    """Raise CellTimeout in the main thread after `seconds` (SIGALRM; a no-op elsewhere)."""
    if seconds <= 0 or not hasattr(signal, "SIGALRM"):
        yield
        return

    def _expire(signum, frame):
        raise CellTimeout(f"cell exceeded its time limit of {seconds:g} s")

    try:
        previous = signal.signal(signal.SIGALRM, _expire)
    except ValueError:  # not the main thread
        yield
        return
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def failure_record(cell: Cell, exc: BaseException) -> dict:
    message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return {
        "cell_id": cell.id, "kind": cell.kind, "experiment": cell.experiment.name,
        "model": cell.model, "explainer": cell.explainer.label if cell.explainer else "",
        "seed": cell.seed, "chunk": cell.chunk, "error_type": type(exc).__name__,
        "error": message, "traceback": traceback.format_exc(),
    }


def is_out_of_memory(exc: BaseException) -> bool:
    import torch

    if isinstance(exc, torch.cuda.OutOfMemoryError):
        return True
    return isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower()


def compute_cell(cell: Cell, suite: Suite, ctx: RunContext) -> tuple[dict | None, dict | None]:
    """(files, None) for a finished cell, or (None, failure record). On out-of-memory the cell
    halves its forward batch size and retries; results do not depend on the batch size."""
    from bench import tasks
    from bench.store import encode_cell

    while True:
        try:
            started = time.perf_counter()
            with time_limit(suite.cell_timeout_s):
                output = execute(cell, suite, ctx)
            if output.rows["value"].isna().any():
                raise ValueError("a metric returned NaN scores")
            timing = {"cell_id": cell.id, "kind": cell.kind, "experiment": cell.experiment.name,
                      "model": cell.model, "explainer": cell.explainer.label if cell.explainer else "",
                      "seed": cell.seed, "samples": cell.n_samples,
                      "seconds": time.perf_counter() - started, "device": ctx.device.type}
            return encode_cell(output.rows, output.curves, output.costs, output.extras, timing), None
        except KeyboardInterrupt:
            raise
        except Exception as exc:  # recorded, whatever it is; the run goes on
            if is_out_of_memory(exc) and ctx.halve(tasks.for_model(cell.model)):
                _free_device_memory()
                continue
            return None, failure_record(cell, exc)


def _free_device_memory() -> None:
    import gc

    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def run_cell(cell: Cell, suite: Suite, ctx: RunContext, store: ResultStore) -> dict | None:
    """Execute one cell and write its part; returns the failure record if it failed."""
    files, failure = compute_cell(cell, suite, ctx)
    if failure is not None:
        store.write_failure(cell.id, failure)
        return failure
    store.write_cell(cell.id, files)
    return None


@dataclass
class RunSummary:
    out: Path
    total: int
    done: int
    skipped: int
    failed: list[dict]

    @property
    def ok(self) -> bool:
        return not self.failed


BACKENDS = ("local", "ray")


def run(suite: Suite, out: str | Path, *, device: str = "auto", retry_failed: bool = False,
        batch_size: int | None = None, show_progress: bool = True, backend: str = "local",
        ray_address: str | None = None, cpus_per_cell: int = 1) -> RunSummary:
    """Run every unfinished cell of `suite` into `out` and write the report."""
    import models

    if backend not in BACKENDS:
        from bench.errors import UnknownNameError

        raise UnknownNameError("backend", backend, list(BACKENDS))
    if backend == "ray":
        from bench import ray_backend

        ray_backend._import_ray()  # say how to install it before anything starts

    store = ResultStore(out)
    with store.lock():
        store.open_for(suite)
        ctx = RunContext(models.resolve_device(device), batch_size=batch_size)
        cells = plan(suite)
        todo = [c for c in cells if not store.is_done(c.id)]
        if retry_failed:
            failed_before = store.failed_cells()
            todo = [c for c in todo if c.id in failed_before]
        manifest = provenance.start_manifest(store.read_manifest(), suite, ctx, len(cells))
        record_models_and_slices(manifest, suite, ctx)
        store.write_manifest(manifest)

        if backend == "ray":
            from bench import ray_backend

            failed = ray_backend.run_cells(todo, len(cells), suite, ctx, store, show_progress,
                                           address=ray_address, cpus_per_cell=cpus_per_cell)
        else:
            failed = run_local(todo, len(cells), suite, ctx, store, show_progress)
        store.consolidate()
        manifest["end_utc"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
        manifest["cells"] = {"total": len(cells),
                             "finished": sum(store.is_done(c.id) for c in cells),
                             "failed": len(store.failed_cells())}
        store.write_manifest(manifest)
        from bench import report

        report.write_all(store.root)
    return RunSummary(store.root, len(cells), len(todo) - len(failed), len(cells) - len(todo),
                      store.failures().to_dict("records"))


def run_local(todo: list[Cell], total: int, suite: Suite, ctx: RunContext, store: ResultStore,
              show_progress: bool) -> list[dict]:
    failed = []
    with provenance.progress(show_progress) as bar:
        task = bar.add_task("cells", total=total, completed=total - len(todo), current="", rate="")
        for cell in todo:
            bar.update(task, current=cell.label)
            started = datetime.now(timezone.utc)
            record = run_cell(cell, suite, ctx, store)
            seconds = (datetime.now(timezone.utc) - started).total_seconds()
            if record:
                failed.append(record)
            bar.update(task, advance=1, rate=f"{cell.n_samples / max(seconds, 1e-9):.1f} samples/s")
    return failed


def record_models_and_slices(manifest: dict, suite: Suite, ctx: RunContext) -> None:
    """Load (training if needed) every model; a resumed run must see the same checkpoints."""
    recorded = manifest.setdefault("models", {})
    for exp in suite.experiments:
        for name in exp.models:
            card = ctx.model(name).card
            digest = card["checkpoint_sha256"]
            if name in recorded and recorded[name]["checkpoint_sha256"] != digest:
                raise BenchError(
                    f"model {name} changed since this run started (checkpoint "
                    f"{recorded[name]['checkpoint_sha256'][:12]} -> {digest[:12]}); "
                    "choose another --out"
                )
            recorded[name] = {k: card.get(k) for k in
                              ("checkpoint_sha256", "identity_sha256", "profile", "test_accuracy")}
        manifest.setdefault("slices", {})[exp.slice.label] = ctx.slice(exp.slice).content_hash
