"""The forecast behind `bench plan` and `bench run`'s plan line: what a suite costs before anything
heavy runs.

Every cell says what it asks for (its study's `demands`: explanations the attribution cache serves
once, explanations it never caches, the metrics that score them); each explainer and metric says
how many model evaluations that takes per sample (`Explainer.cost`, `metrics.costs`). The planner
walks the cells in run order with a simulated attribution cache, so an explanation that several
cells read (the stability study's seeds, the agreement study, the prefixes of one slice) is paid
once, and sums forward and backward passes per experiment, cell kind and component (predicting
the chunk, explaining, each metric).

Seconds come from a calibration of each model's throughput on this machine (a few batches
through an untrained copy of the architecture, which computes as fast as the trained one: no
weights, no data needed) plus fixed overheads measured here (Python work outside the model:
segmentations, the reference libraries' regressions, ROAD's solves, per-cell bookkeeping). It is
a forecast: `bench run` prints it first and counts its progress in the same forward passes.
"""

from __future__ import annotations

import math
import time
from collections import defaultdict
from dataclasses import asdict, dataclass, field

import torch

from explainbench.bench import studies
from explainbench.bench.cells.cell import Cell
from explainbench.bench.run import machine
from explainbench.bench.run.machine import busy_load
from explainbench.core.tokenizer import SPECIAL_TOKENS

# Seconds outside the model per explanation (explainers) or per sample (metrics), measured on the
# 2-core CPU VM these numbers were made on (see README, Speed): what the forward-pass count misses.
# (Measured from quick's costs.csv on an idle machine: seconds per explanation minus its forward
# passes at the calibrated throughput.)
# Host-side seconds per explanation outside the model (the reference libraries' per-sample
# Python), measured on this 2-core machine with a nearly free model (issue 28's table; the
# image figures less the SLIC segmentation counted below). Parallel workers divide this time.
EXPLAIN_OVERHEAD_S = {  # (explainer, modality) -> seconds
    ("lime", "image"): 0.078, ("lime", "text"): 0.164, ("kernel_shap", "image"): 0.103,
    ("kernel_shap", "text"): 0.100, ("shap_partition", "image"): 0.057,
    ("shap_partition", "text"): 0.086, ("shap_kernel", "image"): 0.128,
    ("shap_deep", "image"): 0.02, ("shap_gradient", "image"): 0.015,
    ("anchor", "image"): 0.113, ("anchor", "text"): 0.5,
    ("lime_batched", "image"): 0.0055, ("lime_batched", "text"): 0.015,
    ("kernel_shap_batched", "image"): 0.0018, ("kernel_shap_batched", "text"): 0.021,
}
IMAGE_SEGMENTATION_S = 0.003  # one SLIC segmentation of a 28 x 28 digit
METRIC_OVERHEAD_S = {"road": 0.004, "faithfulness_correlation": 0.0005}
CELL_OVERHEAD_S = 0.08  # loading the chunk, building the rows, writing the parts
# `bench report` at the end of a run grows with the scores it tabulates: measured on this VM with
# its stage lines, 6 s for the golden suite (244 sample x metric pairs) and 77 s for standard
# (159,245 pairs; 40 s of tables, 35 s of figures). The old per-model and per-study terms said 21 s
# for small suites that took about 7.
REPORT_BASE_S, REPORT_PER_SCORE_S = 6.0, 4.5e-4
# A run's start beyond its cells' work: the run folder checked, the workers started, each library
# imported and each model and slice loaded on first use. Measured on `smoke` (idle, 2 workers):
# 18 s wall for 2.5 s of forecast cell work and 5 s of report.
STARTUP_S = 10.0
SEGMENTED = ("lime", "lime_batched", "kernel_shap", "kernel_shap_batched", "shap_kernel", "anchor")
CALIBRATION_WORDS = 230  # about the mean length of the IMDB test reviews, in words


@dataclass
class Work:
    explanations: float = 0.0
    forward: float = 0.0
    backward: float = 0.0
    overhead_s: float = 0.0
    unknown: set = field(default_factory=set)  # components whose cost is not declared

    def add(self, other: "Work") -> None:
        self.explanations += other.explanations
        self.forward += other.forward
        self.backward += other.backward
        self.overhead_s += other.overhead_s
        self.unknown |= other.unknown


@dataclass
class Throughput:
    """Seconds per model evaluation on this machine, at the runner's batch size. `busy_load`: the
    load average other work put on the cores when it was measured (None: idle); `kept`: taken
    from this machine's idle measurement, the machine being busy now."""

    forward_s: float
    backward_s: float  # the extra time of a backward pass over a forward one, per row
    busy_load: float | None = None
    kept: bool = False


class Planner:
    """Cells -> work, with the attribution cache simulated across the cells it is given."""

    def __init__(self):
        self._seen: set = set()
        self._features: dict = {}

    def features(self, exp, model: str) -> float:
        """Features per sample: 784 pixels, or the mean number of words of the slice's reviews."""
        if exp.slice.dataset == "mnist":
            return 784.0
        key = (exp.slice, model)
        if key not in self._features:
            from explainbench.core import slices, tasks

            task = tasks.get("imdb")
            words = task.feature_mask(task.inputs(slices.load(exp.slice))).sum(1).double()
            self._features[key] = float(words.mean())
        return self._features[key]

    def cell(self, cell: Cell) -> dict[str, Work]:
        """{component: Work} of one cell; explanations already planned are free."""
        from explainbench import explainers
        from explainbench.bench.cells.spec import bound_metric
        from explainbench.metrics import costs

        exp, n = cell.experiment, cell.n_samples
        modality = "image" if exp.slice.dataset == "mnist" else "text"
        features = self.features(exp, cell.model)
        demands = studies.module(cell.kind).demands(cell)
        out = defaultdict(Work)
        out["predict"].add(Work(forward=n, overhead_s=CELL_OVERHEAD_S))

        def explained(comp, count: int) -> Work:
            explainer = explainers.get(comp.name, **comp.params)
            cost = explainer.cost(modality, features)
            if cost is None:
                return Work(explanations=count * n, unknown={comp.name})
            overhead = host_seconds(explainer, modality)
            return Work(count * n, count * n * cost[0], count * n * cost[1], count * n * overhead)

        for comp, seed in demands.cached:
            key = (cell.model, comp.name, comp.params_items, seed, exp.slice.dataset,
                   exp.slice.split, exp.slice.seed, cell.start, cell.stop)
            if key not in self._seen:
                self._seen.add(key)
                out["explain"].add(explained(comp, 1))
        for comp, count in demands.uncached:
            out["explain"].add(explained(comp, count))
        explained_by = {comp.name for comp, _ in [*demands.cached, *demands.uncached]}
        if modality == "image" and explained_by & set(SEGMENTED):
            # SLIC once per image and process, whatever explains it (core.superpixels)
            out["explain"].add(Work(overhead_s=n * IMAGE_SEGMENTATION_S))

        shared: set = set()
        scored = None if cell.explainer is None else explainers.get(cell.explainer.name,
                                                                     **cell.explainer.params)
        for comp in demands.metrics:
            params = bound_metric(comp).params
            explainer_cost = scored.cost(modality, features) if scored is not None else None
            cost = costs.evaluations(comp.name, params, modality, features, explainer_cost)
            if cost is None or any(math.isnan(c) for c in cost[:2]):
                out[f"metric {comp.name}"].add(Work(unknown={comp.name}))
                continue
            forward, backward, curves = cost
            for curve, rows in curves.items():
                if curve not in shared:  # the metrics of one explanation share their curves
                    shared.add(curve)
                    forward += rows
            out[f"metric {comp.name}"].add(Work(
                forward=n * forward, backward=n * backward,
                overhead_s=n * METRIC_OVERHEAD_S.get(comp.name, 0.0)))
        return dict(out)


def host_seconds(explainer, modality: str) -> float:
    """Seconds outside the model per explanation: measured at the explainer's default budget,
    and in proportion to its `n_samples` elsewhere (the reference libraries' regressions and
    per-sample Python grow with it: lime on a nearly free model took 11, 87 and 317 ms per image
    at 100, 1,000 and 5,000 samples; kernel_shap 19, 360 and 886 ms)."""
    overhead = EXPLAIN_OVERHEAD_S.get((explainer.name, modality), 0.0)
    declared = type(explainer).parameters.get("n_samples")
    if overhead and declared is not None and declared.default and "n_samples" in explainer.params:
        overhead *= explainer.params["n_samples"] / declared.default
    return overhead


THROUGHPUT_STORE = "throughput.json"


def calibrate(model_names, device: torch.device, batch_size: int | None = None,
              batches: dict[str, int] | None = None, seconds: float = 0.3) -> dict[str, Throughput]:
    """Each model's seconds per forward row and per backward row, timed on an untrained copy
    of its architecture with inputs shaped like the task's (digit-like images; reviews of 230 word
    ids), at the batch size the runner would use: `batch_size`, else the model's measured batch
    in `batches`, else the task's default. Measured on an idle machine, it is kept (per machine,
    threads, torch and batch); on a busy one the kept measurement is used where there is one,
    else the busy measurement, marked as such (see machine.py: under load it is no forecast)."""
    from explainbench import models
    from explainbench.core import tasks

    device = torch.device(device)
    busy = busy_load() if device.type == "cpu" else None
    known = machine.read(THROUGHPUT_STORE)
    here = known.setdefault(machine.key(device), {})
    out, changed = {}, False
    for name in sorted(set(model_names)):
        task = tasks.get(models.spec(name).task)
        batch = batch_size or (batches or {}).get(name) or task.default_batch_size(device)
        kept = here.get(name, {}).get(str(batch))
        if busy is not None and kept:
            out[name] = Throughput(kept["forward_s"], kept["backward_s"], kept=True)
            continue
        torch.manual_seed(0)
        model = models.zoo.build(name).eval().to(device)
        x = calibration_inputs(task, batch, device)
        forward = seconds_per_row(lambda: _forward(model, task, x), len(x), seconds, device=device)
        both = seconds_per_row(lambda: _forward_backward(model, task, x), len(x), seconds,
                               device=device)
        out[name] = Throughput(forward, max(both - forward, 0.0), busy_load=busy)
        if busy is None:
            here.setdefault(name, {})[str(batch)] = {"forward_s": forward,
                                                     "backward_s": out[name].backward_s}
            changed = True
    if changed:
        machine.write(THROUGHPUT_STORE, known)
    return out


def calibration_note(throughput: dict[str, Throughput]) -> str:
    """What the throughput behind a forecast is, where it is not a fresh idle measurement."""
    loads = [t.busy_load for t in throughput.values() if t.busy_load is not None]
    if loads:
        return (f"measured under load {max(loads)}: other work on the cores stalls torch's "
                "threads, so this forecast is far too long; plan again on an idle machine")
    if any(t.kept for t in throughput.values()):
        return "as measured on this machine when idle (it is busy now)"
    return ""


MNIST_INK = 0.19  # the share of an MNIST digit's pixels that are not black


def calibration_inputs(task, batch: int, device) -> torch.Tensor:
    """Inputs shaped and filled like the task's: images with a digit's share of lit pixels (CPU
    kernels ran 5-10 % slower on all-noise images than on MNIST's), reviews of 230 word ids."""
    g = torch.Generator().manual_seed(0)
    if task.modality == "image":
        shape = (batch, 1, *task.feature_shape)
        lit = torch.rand(shape, generator=g) < MNIST_INK
        return (torch.rand(shape, generator=g) * lit).to(device)
    tok = task.tokenizer
    ids = torch.randint(len(SPECIAL_TOKENS), tok.vocab_size, (batch, tok.max_len), generator=g)
    ids[:, 0] = tok.cls_id
    ids[:, 1 + CALIBRATION_WORDS:] = tok.pad_id
    return ids.to(device)


def _forward(model, task, x):
    with torch.no_grad():
        task.forward(model, x)


def _forward_backward(model, task, x):
    if task.modality == "image":
        inputs = x.detach().clone().requires_grad_()
        model(inputs).max(1).values.sum().backward()
    else:
        embeds = model.embedding_layer(x).detach().requires_grad_()
        model.forward_embeds(embeds, model.attention_mask(x)).max(1).values.sum().backward()


def seconds_per_row(fn, rows: int, seconds: float, *, rounds: int = 3, warm_up: bool = True,
                    device: torch.device | None = None) -> float:
    """The best of `rounds` timings of `fn` (which computes `rows` rows) of about seconds/rounds
    each: a busy machine only ever slows a round down (one 0.3 s average drifted 182-264 us per
    row between runs here). On CUDA each round waits for the device: kernels run asynchronously,
    and a round timed without it measures their launch, not their work."""
    def wait():
        if device is not None and torch.device(device).type == "cuda":
            torch.cuda.synchronize(device)

    if warm_up:
        fn()
        wait()
    best = float("inf")
    for _ in range(rounds):
        started, count = time.perf_counter(), 0
        while count < 1 or time.perf_counter() - started < seconds / rounds:
            fn()
            count += 1
        wait()
        best = min(best, (time.perf_counter() - started) / (count * rows))
    return best


@dataclass
class Forecast:
    """The plan of a suite: one row per (experiment, kind, model, component), its total, and
    the seconds it would take on the calibrated machine."""

    rows: list[dict]
    throughput: dict[str, Throughput]
    device: str
    longest_cell_s: float = 0.0

    def wall_seconds(self, workers: int = 1, cores: int | None = None) -> float:
        """The wall time with `workers` cell processes. Model passes do not get faster with
        more workers (on a CPU the workers split its cores' threads; on a GPU they share the
        device), the host-side Python of the reference libraries does, up to the CPU cores;
        set-up and report run once; never below the longest cell."""
        import os

        parallel = max(1, min(workers, cores or os.cpu_count() or 1))
        serial = sum(r["seconds"] for r in self.rows if r["kind"] in ("setup", "report"))
        model = sum(r["seconds"] - r["host_seconds"] for r in self.rows
                    if r["kind"] not in ("setup", "report"))
        host = sum(r["host_seconds"] for r in self.rows if r["kind"] not in ("setup", "report"))
        cells = max(model + host / parallel, self.longest_cell_s if parallel > 1 else 0.0)
        return serial + cells

    @property
    def forward_passes(self) -> int:
        return int(round(sum(r["forward"] for r in self.rows)))

    @property
    def backward_passes(self) -> int:
        return int(round(sum(r["backward"] for r in self.rows)))

    @property
    def projected_seconds(self) -> float:
        return float(sum(r["seconds"] for r in self.rows))

    def by(self, *keys: str) -> list[dict]:
        """The rows summed over everything but `keys`."""
        groups: dict = {}
        for r in self.rows:
            g = groups.setdefault(tuple(r[k] for k in keys), dict(zip(keys, (r[k] for k in keys)),
                                  cells=0, explanations=0.0, forward=0.0, backward=0.0,
                                  seconds=0.0))
            for k in ("cells", "explanations", "forward", "backward", "seconds"):
                g[k] += r[k]
        return list(groups.values())

    def to_json(self) -> dict:
        return {"forward_passes": self.forward_passes, "backward_passes": self.backward_passes,
                "projected_seconds": round(self.projected_seconds, 1), "device": self.device,
                "forecast": True,
                "throughput": {k: asdict(v) for k, v in self.throughput.items()},
                "unknown_costs": sorted({u for r in self.rows for u in r["unknown"]}),
                "experiments": self.by("experiment"),
                "longest_cell_s": round(self.longest_cell_s, 1),
                "rows": [{k: v for k, v in r.items() if k != "unknown"} for r in self.rows]}


def cell_seconds(work: dict[str, Work], throughput: Throughput) -> float:
    return sum(w.forward * throughput.forward_s + w.backward * throughput.backward_s + w.overhead_s
               for w in work.values())


def plan_cells(cells: list[Cell]) -> list[tuple[Cell, dict[str, Work]]]:
    planner = Planner()
    return [(cell, planner.cell(cell)) for cell in cells]


def setup_work(cells: list[Cell]) -> dict[str, Work]:
    """Once per run and model: the training split's activations that explanation by example
    indexes (cached per checkpoint, so only where the cache does not hold them yet)."""
    from explainbench import models

    out = {}
    for model in sorted({c.model for c in cells if c.explainer is not None
                         and c.explainer.name == "nearest_examples"}):
        task = models.spec(model).task
        if not _examples_cached(model, task):
            out[model] = Work(forward=60_000.0 if task == "mnist" else 25_000.0)
    return out


def _examples_cached(model: str, task: str) -> bool:
    from explainbench import models
    from explainbench.core import paths

    card = models.card(model)
    folder = paths.cache_dir() / "examples"
    return bool(card) and folder.is_dir() and any(
        folder.glob(f"{card['checkpoint_sha256'][:16]}-{task}-*"))


def report_seconds(cells: list[Cell]) -> float:
    """The report written at the end of a run (tables, figures, the page): a fixed part and a
    part per (sample, metric) pair the cells score."""
    scored = sum(c.n_samples * max(1, len(c.experiment.metrics)) for c in cells)
    return REPORT_BASE_S + REPORT_PER_SCORE_S * scored


def forecast(cells: list[Cell], throughput: dict[str, Throughput], device: str) -> Forecast:
    """Rows per (experiment, kind, model, component), the run's set-up and report included."""
    rows: dict = {}

    def row(experiment: str, kind: str, model: str, component: str) -> dict:
        key = (experiment, kind, model, component)
        return rows.setdefault(key, dict(zip(("experiment", "kind", "model", "component"), key),
                                         cells=0, explanations=0.0, forward=0.0, backward=0.0,
                                         seconds=0.0, host_seconds=0.0, unknown=set()))

    for model, w in setup_work(cells).items():
        r = row("(setup)", "setup", model, "example index")
        r["forward"] += w.forward
        r["seconds"] += w.forward * throughput[model].forward_s
    if cells:
        row("(setup)", "setup", "-", "start-up")["seconds"] += STARTUP_S
        row("(report)", "report", "-", "report")["seconds"] += report_seconds(cells)
    longest = 0.0
    for cell, work in plan_cells(cells):
        t = throughput[cell.model]
        longest = max(longest, cell_seconds(work, t))
        for component, w in work.items():
            r = row(cell.experiment.name, cell.kind, cell.model, component)
            r["cells"] += component == "predict"
            r["explanations"] += w.explanations
            r["forward"] += w.forward
            r["backward"] += w.backward
            r["seconds"] += w.forward * t.forward_s + w.backward * t.backward_s + w.overhead_s
            r["host_seconds"] += w.overhead_s
            r["unknown"] |= w.unknown
    return Forecast(list(rows.values()), throughput, device, longest)


def training_line(model_names) -> str | None:
    """'first it trains a, b (about 7 min on 2 CPU cores; once, then cached)', or None when
    every model is cached: the forecast of the cells leaves the training out."""
    from explainbench import models

    missing, seconds = models.training_forecast(model_names)
    if not missing:
        return None
    when = f"about {format_seconds(seconds)} on 2 CPU cores; " if seconds is not None else ""
    return f"first it trains {', '.join(missing)} ({when}once, then cached)"


def format_seconds(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
