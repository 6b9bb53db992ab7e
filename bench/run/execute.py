"""Computing one cell, wherever it runs (the local runner or a Ray worker): its time limit, its
failure record, and halving the batch size after running out of memory. Returns the cell's files
as bytes; only the caller writes them to the run folder."""

from __future__ import annotations

import contextlib
import signal
import time
import traceback

from explainbench.bench import studies
from explainbench.bench.cells.cell import Cell
from explainbench.bench.cells.context import CellOutput, RunContext
from explainbench.bench.cells.spec import Suite


class CellTimeout(Exception):
    pass


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
    from explainbench import models
    from explainbench.bench.cells.attribution_cache import count_forward_passes
    from explainbench.bench.store import encode_cell

    while True:
        try:
            started = time.perf_counter()
            with time_limit(suite.cell_timeout_s), \
                    count_forward_passes(ctx.model(cell.model)) as counted:
                output = execute(cell, suite, ctx)
            # NaN is a sample the metric is undefined for (recorded, counted and excluded by the
            # tables); an infinite score is a bug
            if output.rows["value"].isin([float("inf"), float("-inf")]).any():
                raise ValueError("a metric returned infinite scores")
            timing = {"cell_id": cell.id, "kind": cell.kind, "experiment": cell.experiment.name,
                      "model": cell.model, "explainer": cell.explainer.label if cell.explainer else "",
                      "seed": cell.seed, "samples": cell.n_samples,
                      "seconds": time.perf_counter() - started, "device": ctx.device.type,
                      "forward_passes": counted.rows}
            return encode_cell(output.rows, output.curves, output.costs, output.extras, timing), None
        except KeyboardInterrupt:
            raise
        except Exception as exc:  # recorded, whatever it is; the run goes on
            if is_out_of_memory(exc) and ctx.halve(models.task_of(cell.model), cell.model):
                _free_device_memory()
                continue
            return None, failure_record(cell, exc)


def _free_device_memory() -> None:
    import gc

    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
