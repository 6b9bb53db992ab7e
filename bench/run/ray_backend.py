"""`bench run --backend ray`: the cells of a run as Ray tasks, on a local Ray runtime or a cluster.

Only plain data crosses the wire: a task receives the suite's YAML text and a cell id, plans the
suite itself to find its cell, computes it, and returns the cell's files as bytes (Parquet, JSON,
safetensors) or its failure record. The driver alone writes the run folder (atomically, as the
local backend does) and holds its lock, so resuming works the same way and the results are
identical. Each task declares its resources: one GPU when the run is on CUDA, else
`cpus_per_cell` CPUs (and as many torch threads).

On a cluster every node needs explainbench installed (`pip install explainbench-xai[ray]`) and the
data in its BENCH_DATA_DIR; the driver forwards BENCH_DATA_DIR, BENCH_CACHE_DIR and
BENCH_TRAIN_PROFILE to the workers.
"""

from __future__ import annotations

import os
from pathlib import Path

from explainbench.core.errors import BenchError

FORWARDED_ENV = ("BENCH_DATA_DIR", "BENCH_CACHE_DIR", "BENCH_TRAIN_PROFILE", "HF_HUB_OFFLINE",
                 "BENCH_ATTRIBUTION_CACHE")
_WORKER_STATE: dict = {}


def _import_ray():
    try:
        import ray
    except ImportError:
        raise BenchError("--backend ray needs Ray, an optional extra: pip install 'explainbench-xai[ray]'"
                         " (or pip install ray)") from None
    return ray


def _compute(suite_text: str, source: str, cell_id: str, device: str, batch_size: int | None,
             threads: int, data_dir: str | None, plugin_specs: list):
    """Runs on a worker: (cell id, files or None, failure or None)."""
    import torch
    import yaml

    from explainbench.core import data, plugins
    from explainbench.bench.run import suite as suites
    from explainbench.bench.run.execute import compute_cell
    from explainbench.bench.run.suite_cells import plan
    from explainbench.bench.cells.context import RunContext

    torch.set_num_threads(max(1, threads))
    data.set_data_dir(data_dir)
    for spec, base in plugin_specs:  # the driver's plugins (--plugin and the suite's)
        plugins.load_modules([spec], base=None if base is None else Path(base))
    key = (suite_text, device, batch_size)
    if key not in _WORKER_STATE:  # a worker process keeps its models and slices between tasks
        spec = suites.parse(yaml.safe_load(suite_text), source=source, text=suite_text)
        from explainbench import models

        _WORKER_STATE.clear()
        _WORKER_STATE[key] = (spec, {c.id: c for c in plan(spec)},
                              RunContext(models.resolve_device(device), batch_size=batch_size))
    spec, cells, ctx = _WORKER_STATE[key]
    files, failure = compute_cell(cells[cell_id], spec, ctx)
    return cell_id, files, failure


def run_cells(todo, total: int, suite, ctx, store, show_progress: bool, *,
              address: str | None = None, cpus_per_cell: int = 1) -> list[dict]:
    from explainbench.bench.run import progress
    from explainbench.core import data, plugins

    ray = _import_ray()
    env = {k: os.environ[k] for k in FORWARDED_ENV if k in os.environ}
    started_here = not ray.is_initialized()
    if started_here:
        ray.init(address=address, include_dashboard=False, log_to_driver=False,
                 runtime_env={"env_vars": env}, **({} if address else {"num_cpus": os.cpu_count()}))
    try:
        on_gpu = ctx.device.type == "cuda"
        remote = ray.remote(_compute).options(
            num_gpus=1 if on_gpu else 0, num_cpus=1 if on_gpu else cpus_per_cell, max_retries=0)
        data_dir = str(data._data_dir_override) if data._data_dir_override else None
        pending = [remote.remote(suite.text, suite.source, c.id, str(ctx.device), ctx.batch_size,
                                 cpus_per_cell, data_dir, plugins.loaded()) for c in todo]
        labels = {c.id: c.label for c in todo}
        failed = []
        with progress.bar(show_progress) as bar:
            task = bar.add_task("cells (ray)", total=total, completed=total - len(todo),
                                initial=total - len(todo), current="", unit="cells")
            while pending:
                done, pending = ray.wait(pending, num_returns=1)
                cell_id, files, failure = ray.get(done[0])
                if failure is not None:
                    store.write_failure(cell_id, failure)
                    failed.append(failure)
                else:
                    store.write_cell(cell_id, files)
                bar.update(task, advance=1, current=labels[cell_id])
        return failed
    finally:
        if started_here:
            ray.shutdown()
