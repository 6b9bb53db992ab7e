"""The forward batch each model runs at on this machine, chosen by measurement.

A fixed default is not the fastest everywhere: on the 2-core VM this was written on, mnist_cnn's
deletion curves ran at 1.8-3.3x their floor with 256 images per forward and 0.99-1.17x with 128
(cache pressure: 256 images' activations no longer fit), while a GPU wants thousands. So before a
run (and in `bench plan`) each model's forward time per row is measured at a few candidate batch
sizes, in interleaved rounds (the best of each candidate's rounds: noise only ever slows a round
down), on an untrained copy of the architecture with inputs shaped like the task's, at the torch
thread count the cells will run with. The fastest candidate wins if it beats the task's default
by more than 5 %. A measurement made while other work holds half the cores or more (the load
average) is used for that run only and not kept: under load the order is noise.

The choice is kept in the cache (calibration/forward_batches.json, keyed by machine, device,
threads, torch version and model) and reused: a measurement is noisy, and two runs of the same
suite on the same machine must make the same forward batches (float32 sums may differ in their
last bits between batch sizes). `--batch-size` overrides it; `BENCH_TUNE_BATCH=0` keeps each
task's fixed default (256 images / 32 reviews on a CPU, 4,096 / 512 on a GPU).
"""

from __future__ import annotations

import os

import torch

from explainbench.bench.run import machine
# a name of this module's, so that tests can script the load
from explainbench.bench.run.machine import busy_load as machine_load

# per (modality, device type); the task's fixed default is always one of them
CANDIDATES = {
    ("image", "cpu"): (64, 128, 256, 512),
    ("text", "cpu"): (8, 16, 32, 64),
    ("image", "cuda"): (1024, 2048, 4096, 8192),
    ("text", "cuda"): (128, 256, 512, 1024),
}
ROUNDS, ROUND_SECONDS = 3, 0.1
TIE_MARGIN = 0.05  # a candidate must beat the task's default by more than this to replace it
STORE = "forward_batches.json"


def enabled() -> bool:
    return os.environ.get("BENCH_TUNE_BATCH", "1") != "0"


def forward_batches(model_names, device: torch.device) -> dict[str, dict]:
    """{model: {"batch": chosen, "seconds_per_row": {batch: s}, "measured_now": bool}} for every
    model, measured where this machine has no recorded choice yet (and the choice recorded)."""
    from explainbench import models

    device = torch.device(device)
    known = machine.read(STORE)
    where = machine.key(device)
    busy = machine_load() if device.type == "cpu" else None
    out, changed = {}, False
    for name in sorted(set(model_names)):
        entry = known.get(where, {}).get(name)
        fresh = entry is None
        if fresh:
            task = models.task_of(name)
            candidates = CANDIDATES.get((task.modality, device.type),
                                        (task.default_batch_size(device),))
            times = measure(name, device, candidates)
            entry = {"batch": fastest(times, task.default_batch_size(device)),
                     "seconds_per_row": {str(b): s for b, s in times.items()}}
            if busy is None:  # a choice made while other work held the cores is not kept
                known.setdefault(where, {})[name] = entry
                changed = True
        out[name] = {**entry, "measured_now": fresh, "busy_load": busy if fresh else None}
    if changed:
        machine.write(STORE, known)
    return out


def fastest(seconds_per_row: dict[int, float], default: int | None = None) -> int:
    """The candidate with the least time per row (the smaller batch where they tie exactly),
    unless the task's `default` is within TIE_MARGIN of it: differences that small are the
    machine's noise (measured here: 64, 128 and 256 images within 1 % of each other), and a
    choice that flips with noise would change the run's last bits from one machine to the next
    for nothing."""
    best = min(seconds_per_row, key=lambda b: (seconds_per_row[b], b))
    near = seconds_per_row[best] * (1 + TIE_MARGIN)
    return default if default in seconds_per_row and seconds_per_row[default] <= near else best


def measure(model_name: str, device: torch.device, candidates) -> dict[int, float]:
    """Seconds per forward row at each candidate batch size: the best of ROUNDS interleaved
    rounds of about ROUND_SECONDS each."""
    from explainbench import models
    from explainbench.bench.run.forecast import calibration_inputs, seconds_per_row

    task = models.task_of(model_name)
    torch.manual_seed(0)
    model = models.zoo.build(model_name).eval().to(device)
    inputs = {b: calibration_inputs(task, b, device) for b in candidates}
    best = {b: float("inf") for b in candidates}
    with torch.no_grad():
        for b in candidates:  # warm-up: allocator, kernels, caches
            task.forward(model, inputs[b])
        for _ in range(ROUNDS):  # interleaved: a slow spell of the machine hits every candidate
            for b in candidates:
                once = seconds_per_row(lambda: task.forward(model, inputs[b]), b, ROUND_SECONDS,
                                       rounds=1, warm_up=False, device=device)
                best[b] = min(best[b], once)
    return best


def describe(batches: dict[str, dict]) -> str:
    """`mnist_cnn 128, imdb_lstm 32 (measured now; kept in the cache)` for the run's lines."""
    picks = ", ".join(f"{name} {entry['batch']}" for name, entry in sorted(batches.items()))
    loads = [entry["busy_load"] for entry in batches.values() if entry.get("busy_load")]
    if loads:
        return picks + (f" (measured now under load {max(loads)}: not kept; measure again on an "
                        "idle machine)")
    now = any(entry["measured_now"] for entry in batches.values())
    return picks + (" (measured now, kept for the next runs)" if now
                    else " (as measured on this machine before)")
