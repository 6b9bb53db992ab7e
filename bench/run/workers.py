"""`bench run --workers N`: independent cells in N local worker processes at once.

Why processes of our own and not Ray (`--backend ray` stays for clusters): on one machine the cells
need no scheduler beyond a queue, Ray is an optional extra of some hundred MB, and its fractional
GPUs would only share one device the same way. Why processes and not threads: the time goes to the
reference libraries' per-sample Python (lime, shap, anchor-exp, SLIC), which holds the GIL.

Each worker is `python -m explainbench.bench.run.workers`, started with the run's settings as one
JSON line; it loads the suite from its text, plans it to find cells by id, keeps its models and
slices between cells, and per cell id it reads from stdin computes the cell (run stage's
compute_cell: the same code as the serial runner), writes its parts and digest into the run folder
(atomically, digest last, as the serial runner does; the parent holds the folder's lock), and
answers one JSON line. Nothing but JSON crosses the pipes. A cell's numbers depend only on the cell,
so which worker runs it, and when, changes nothing (tested: identical scores.parquet).

Torch threads per worker: the machine's cores over the workers (at least 1), or
`--threads-per-cell`. Scores are identical for equal threads per cell; across thread counts they
differ in float32 rounding (a sum split over more threads adds in another order). Memory: each worker
holds its own models and slices (the four built-in models are ~30 MB; explanation by example's
CNN activations cache, 750 MB, is loaded by a worker that runs such a cell).
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
from pathlib import Path

def default_workers() -> int:
    return max(1, os.cpu_count() or 1)


def threads_per_worker(workers: int) -> int:
    return max(1, (os.cpu_count() or 1) // max(1, workers))


def run_parallel(todo, work: dict[str, float], suite, ctx, store, show_progress: bool,
                 workers: int, threads: int | None = None) -> list[dict]:
    """Run `todo` on `workers` processes; the bar counts planned forward passes as the serial
    runner's does. Returns the failure records."""
    from explainbench.bench.run import progress
    from explainbench.bench.run.execute import failure_record
    from explainbench.core import data, plugins

    settings = {"suite_text": suite.text, "source": suite.source, "run_dir": str(store.root),
                "device": str(ctx.device), "batch_size": ctx.batch_size, "tuned": ctx.tuned,
                "threads": threads or threads_per_worker(workers),
                "data_dir": str(data._data_dir_override) if data._data_dir_override else None,
                "plugins": [[spec, base] for spec, base in plugins.loaded()]}
    # the costliest first: the last cells to finish are the short ones (less idle at the end)
    pending: queue.Queue = queue.Queue()
    for cell in sorted(todo, key=lambda c: -work[c.id]):
        pending.put(cell)
    failed: list[dict] = []
    lock = threading.Lock()
    total = sum(work.values())
    left = sum(work[c.id] for c in todo)
    with progress.bar(show_progress) as bar:
        task = bar.add_task("forward passes", total=total, completed=total - left,
                            initial=total - left, current="")

        def serve() -> None:
            worker = _Worker(settings)
            try:
                while True:
                    try:
                        cell = pending.get_nowait()
                    except queue.Empty:
                        return
                    with lock:
                        bar.update(task, current=cell.label)
                    answer = worker.run(cell.id)
                    if answer is None:  # the worker died: the cell fails, a new worker goes on
                        record = failure_record(cell, RuntimeError(
                            f"worker process ended ({worker.stderr_tail()})"))
                        store.write_failure(cell.id, record)
                        answer = {"failure": record}
                        worker.close()
                        worker = _Worker(settings)
                    with lock:
                        if answer.get("failure"):
                            failed.append(answer["failure"])
                        bar.update(task, advance=work[cell.id])
            finally:
                worker.close()

        threads = [threading.Thread(target=serve, daemon=True) for _ in range(workers)]
        for t in threads:
            t.start()
        try:
            for t in threads:
                while t.is_alive():
                    t.join(0.2)  # wake for ^C and SIGTERM
        except BaseException:
            # stopped: no worker may write into the folder after its lock is released; a part
            # written without its digest is found unverified and recomputed by the next run
            _Worker.stop_all()
            raise
    return failed


class _Worker:
    live: set = set()
    live_lock = threading.Lock()

    @classmethod
    def stop_all(cls) -> None:
        with cls.live_lock:
            for process in list(cls.live):
                process.kill()
            for process in list(cls.live):
                process.wait()
            cls.live.clear()

    def __init__(self, settings: dict):
        env = {**os.environ, "OMP_NUM_THREADS": str(settings["threads"])}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "explainbench.bench.run.workers"], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, bufsize=1)
        with _Worker.live_lock:
            _Worker.live.add(self.process)
        self._stderr: list[str] = []
        threading.Thread(target=self._drain, daemon=True).start()
        self.process.stdin.write(json.dumps(settings) + "\n")
        self.process.stdin.flush()

    def _drain(self) -> None:  # keep the last lines (a traceback) without blocking the worker
        for line in self.process.stderr:
            self._stderr = (self._stderr + [line.rstrip()])[-5:]
            if line.startswith("damaged") or line.startswith("cached"):
                print(line.rstrip(), file=sys.stderr)  # the one-line notices users must see

    def stderr_tail(self) -> str:
        return " | ".join(self._stderr[-2:]) or f"exit code {self.process.poll()}"

    def run(self, cell_id: str) -> dict | None:
        try:
            self.process.stdin.write(cell_id + "\n")
            self.process.stdin.flush()
            line = self.process.stdout.readline()
        except (BrokenPipeError, OSError):
            return None
        return json.loads(line) if line else None

    def close(self) -> None:
        try:
            self.process.stdin.close()
        except OSError:
            pass
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
        with _Worker.live_lock:
            _Worker.live.discard(self.process)


def _serve() -> None:
    """The worker: settings on the first stdin line, then one cell id a line; one JSON answer a
    cell on stdout."""
    import torch
    import yaml

    settings = json.loads(sys.stdin.readline())
    torch.set_num_threads(int(settings["threads"]))
    from explainbench import models
    from explainbench.bench.cells.context import RunContext
    from explainbench.bench.run import suite as suites
    from explainbench.bench.run.execute import compute_cell
    from explainbench.bench.run.suite_cells import plan
    from explainbench.bench.store import ResultStore
    from explainbench.core import data, plugins

    data.set_data_dir(settings["data_dir"])
    for spec, base in settings["plugins"]:
        plugins.load_modules([spec], base=None if base is None else Path(base))
    suite = suites.parse(yaml.safe_load(settings["suite_text"]), source=settings["source"],
                         text=settings["suite_text"])
    cells = {c.id: c for c in plan(suite)}
    ctx = RunContext(models.resolve_device(settings["device"]), batch_size=settings["batch_size"],
                     tuned=settings["tuned"])
    store = ResultStore(Path(settings["run_dir"]))
    out = sys.stdout
    sys.stdout = sys.stderr  # libraries that print must not break the protocol
    for line in sys.stdin:
        cell_id = line.strip()
        if not cell_id:
            continue
        files, failure = compute_cell(cells[cell_id], suite, ctx)
        if failure is not None:
            store.write_failure(cell_id, failure)
        else:
            store.write_cell(cell_id, files)
        out.write(json.dumps({"cell": cell_id, "failure": failure}, default=str) + "\n")
        out.flush()


if __name__ == "__main__":
    try:
        _serve()
    except KeyboardInterrupt:  # the parent says what was kept; a worker stops quietly
        sys.exit(130)
