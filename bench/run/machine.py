"""Measurements kept per machine: the key a measurement holds under (the processor or GPU, the
torch threads, the torch version), whether other work holds the cores now, and the JSON files
they are kept in (the cache's calibration/ folder). The forward-batch choice (batch_tuning.py)
and the forecast's throughput (forecast.calibrate) are both measured on an untrained copy of a
model and both go wrong under load: another process on the cores does not just take its share,
it stalls torch's threads at every barrier (here, imdb_lstm at two threads timed 261 ms per
review with another run on both cores, 0.93 idle), so neither is kept from a busy machine."""

from __future__ import annotations

import json
import os
import platform

import torch

from explainbench.core import paths


def key(device: torch.device) -> str:
    """Where a measurement holds: the processor (or GPU), the threads, the torch version."""
    device = torch.device(device)
    if device.type == "cuda":
        where = torch.cuda.get_device_name(device)
    else:
        where = f"{platform.processor() or platform.machine()} x{os.cpu_count()}"
    return f"{device.type} {where} threads={torch.get_num_threads()} torch={torch.__version__}"


def busy_load() -> float | None:
    """The 1-minute load average when other work holds at least half of the cores, else None."""
    try:
        load = os.getloadavg()[0]
    except OSError:  # not on this platform
        return None
    return round(load, 1) if load >= 0.5 * (os.cpu_count() or 1) else None


def path(name: str):
    return paths.cache_dir() / "calibration" / name


def read(name: str) -> dict:
    try:
        return json.loads(path(name).read_text())
    except (OSError, ValueError):  # none yet, or unreadable: measure again
        return {}


def write(name: str, data: dict) -> None:
    from explainbench.bench.store import atomic_write_bytes

    path(name).parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path(name), json.dumps(data, indent=1, sort_keys=True).encode())
