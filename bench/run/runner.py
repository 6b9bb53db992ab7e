"""The runner: a suite becomes cells; finished cells are written atomically and skipped on a rerun;
a failing cell (exception, non-finite attributions, over its time limit) is recorded and the run
goes on. It ends with the run folder's derived files (scores.parquet, ...); the report is the
report stage's (`bench run` writes it next: bench/cli).

Plain cells explain a chunk and score it with every metric (`bench/studies/scores.py`); study cells
(stability, background, sanity, agreement) combine several explanations (`bench/studies/`).
Stochastic explainers run under every seed of the experiment, deterministic ones under the first.
"""

from __future__ import annotations

import contextlib

import sys
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path

from explainbench.bench.run import forecast, progress, provenance
from explainbench.bench.cells.cell import Cell
from explainbench.bench.cells.context import RunContext
from explainbench.bench.run.execute import compute_cell
from explainbench.bench.run.suite_cells import plan
from explainbench.bench.cells.spec import Suite
from explainbench.bench.store import ResultStore
from explainbench.core.errors import BenchError


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
    repaired: list[str] = field(default_factory=list)  # one line per damaged cell recomputed

    @property
    def ok(self) -> bool:
        return not self.failed


BACKENDS = ("local", "ray")


def run(suite: Suite, out: str | Path, *, device: str = "auto", retry_failed: bool = False,
        batch_size: int | None = None, show_progress: bool = True, backend: str = "local",
        ray_address: str | None = None, cpus_per_cell: int = 1,
        only: set[str] | None = None, announce: bool = False, workers: int = 1,
        threads: int | None = None) -> RunSummary:
    """Run every unfinished cell of `suite` into `out` (with `only`, just those cell ids) and
    rebuild the folder's derived files. The parts already there are verified first: damaged or
    unverified ones are moved to damaged/ (one line each on stderr) and their cells computed
    again. The report is not written here: `bench run` writes it next (report.write_all)."""
    from explainbench import models

    if backend not in BACKENDS:
        from explainbench.core.errors import UnknownNameError

        raise UnknownNameError("backend", backend, list(BACKENDS))
    if backend == "ray":
        from explainbench.bench.run import ray_backend

        ray_backend._import_ray()  # say how to install it before anything starts

    store = ResultStore(out)
    with store.lock():
        store.open_for(suite)
        ctx = RunContext(models.resolve_device(device), batch_size=batch_size)
        cells = plan(suite)
        repaired = store.quarantine(store.verify())
        for line in repaired:
            print(line, file=sys.stderr)
        todo = [c for c in cells if not store.is_done(c.id)]
        if retry_failed:
            failed_before = store.failed_cells()
            todo = [c for c in todo if c.id in failed_before]
        if only is not None:
            todo = [c for c in todo if c.id in only]
        if todo and batch_size is None and backend != "ray":
            found = tune_batches({c.model for c in cells}, ctx.device,
                                 cell_threads(workers, len(todo), threads))
            ctx.tuned = {name: entry["batch"] for name, entry in found.items()}
            if announce and found:
                from explainbench.bench.run.batch_tuning import describe

                print(f"forward batches: {describe(found)}", file=sys.stderr)
        manifest = provenance.start_manifest(store.read_manifest(), suite, ctx, len(cells))
        work = {cell.id: sum(w.forward for w in parts.values())
                for cell, parts in forecast.plan_cells(cells)}
        if announce:
            print(announcement(cells, todo, ctx, batch_size, workers), file=sys.stderr)
        record_models_and_slices(manifest, suite, ctx)
        manifest["unsupported"] = unsupported_pairs(suite)
        store.write_manifest(manifest)

        if backend == "ray":
            from explainbench.bench.run import ray_backend

            failed = ray_backend.run_cells(todo, len(cells), suite, ctx, store, show_progress,
                                           address=ray_address, cpus_per_cell=cpus_per_cell)
        elif workers > 1 and len(todo) > 1:
            from explainbench.bench.run.workers import run_parallel

            failed = run_parallel(todo, work, suite, ctx, store, show_progress,
                                  min(workers, len(todo)), threads)
        else:
            with torch_threads(threads):
                failed = run_local(todo, work, suite, ctx, store, show_progress)
        store.consolidate()
        manifest["end_utc"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
        manifest["cells"] = {"total": len(cells),
                             "finished": sum(store.is_done(c.id) for c in cells),
                             "failed": len(store.failed_cells())}
        store.write_manifest(manifest)
    return RunSummary(store.root, len(cells), len(todo) - len(failed), len(cells) - len(todo),
                      store.failures().to_dict("records"), repaired)


def repair(run_dir: str | Path, *, device: str = "auto", show_progress: bool = True) -> list[str]:
    """Verify a run folder's parts and compute its damaged or unverified cells again (from the
    folder's own suite.yaml), then rewrite its derived files; returns (and prints on stderr, as
    `run` does) one line per repaired cell; [] when everything verified."""
    from explainbench.bench.run import suite as suites

    store = ResultStore(run_dir)
    verification = store.verify()
    if verification.ok:
        return []
    broken = set(verification.damaged) | set(verification.unverified)
    suite_file = store.root / "suite.yaml"
    if not suite_file.is_file():
        raise BenchError(f"{store.root} has damaged parts but no suite.yaml to recompute them from")
    spec = suites.load(str(suite_file))
    if (manifest := store.read_manifest()) and manifest.get("suite", {}).get("hash"):
        # the manifest's suite hash is of the suite as first parsed; keep the folder's identity
        spec = replace(spec, content_hash=manifest["suite"]["hash"])
    summary = run(spec, store.root, device=device, show_progress=show_progress, only=broken)
    return summary.repaired


def cell_threads(workers: int, cells: int, threads: int | None) -> int | None:
    """The torch threads each cell will run with (None: the process's, a serial run's)."""
    from explainbench.bench.run.workers import threads_per_worker

    if threads or workers <= 1 or cells <= 1:
        return threads
    return threads_per_worker(min(workers, cells))


def tune_batches(model_names, device, threads: int | None) -> dict[str, dict]:
    """Each model's forward batch as run.batch_tuning measures (or recalls) it at the torch
    threads a cell will have; {} when tuning is off (each task's default). `bench run` and
    `bench plan` both take it from here."""
    from explainbench.bench.run import batch_tuning

    if not batch_tuning.enabled():
        return {}
    with torch_threads(threads):
        return batch_tuning.forward_batches(model_names, device)


@contextlib.contextmanager
def torch_threads(threads: int | None):
    """Torch's intra-op threads for the cells of this process (None: as they are). A cell's
    float32 sums depend on how many threads split them: equal thread counts, equal scores."""
    import torch

    before = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def run_local(todo: list[Cell], work: dict[str, float], suite: Suite, ctx: RunContext,
              store: ResultStore, show_progress: bool) -> list[dict]:
    """Run the cells in order. The bar counts the planned forward passes (`bench plan`), not
    cells, so its ETA holds when cells differ a thousandfold in cost."""
    failed = []
    total = sum(work.values())
    left = sum(work[c.id] for c in todo)
    with progress.bar(show_progress) as bar:
        task = bar.add_task("forward passes", total=total, completed=total - left,
                            initial=total - left, current="")
        for cell in todo:
            bar.update(task, current=cell.label)
            record = run_cell(cell, suite, ctx, store)
            if record:
                failed.append(record)
            bar.update(task, advance=work[cell.id])
    return failed


def announcement(cells: list[Cell], todo: list[Cell], ctx: RunContext,
                 batch_size: int | None, workers: int = 1) -> str:
    """The plan's total and ETA, one line, before the run starts (calibrated in seconds)."""
    models = {c.model for c in cells}
    throughput = forecast.calibrate(models, ctx.device, batch_size, ctx.tuned)
    plan = forecast.forecast(todo, throughput, ctx.device.type)
    workers = min(workers, max(1, len(todo)))
    on = f"{workers} workers on this {ctx.device.type}" if workers > 1 else f"this {ctx.device.type}"
    # the bar counts the cells' passes; the one-off index of explanation by example is apart
    setup = int(round(sum(r["forward"] for r in plan.rows if r["kind"] == "setup")))
    once = f" (+{setup:,} once: the training split indexed for explanation by example)" if setup else ""
    line = (f"plan: {len(todo)} of {len(cells)} cells to run, {plan.forward_passes - setup:,} "
            f"forward{once} and {plan.backward_passes:,} backward passes; about "
            f"{forecast.format_seconds(plan.wall_seconds(workers))} on {on} (a forecast; "
            "`bench plan` has the breakdown)")
    if note := forecast.calibration_note(throughput):
        line += f"; throughput {note}"
    training = forecast.training_line(models)
    return line + (f"; {training}" if training else "")


def unsupported_pairs(suite: Suite) -> list[dict]:
    """Every (experiment, model, explainer) the suite names that the planner leaves out, with
    the reason (attention has no attention layer on an LSTM; DeepLift needs a module per
    activation), so the report can say why a leaderboard lacks an explainer."""
    from explainbench.bench.cells.cell import unsupported_reason

    out = []
    for exp in suite.experiments:
        for model in exp.models:
            for comp in exp.explainers:
                reason = unsupported_reason(model, comp)
                if reason:
                    out.append({"experiment": exp.name, "model": model, "explainer": comp.label,
                                "reason": " ".join(str(reason).split())})
    return out


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
