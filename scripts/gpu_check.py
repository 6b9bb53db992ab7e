"""The prepared GPU check: one go, on a GPU machine without network, every number into --out.

    python scripts/gpu_check.py --device cuda --out $OUT [--budget-s 480] [--workers 16]
    python scripts/gpu_check.py --device cpu --tiny --out /tmp/check      # here, and in CI

Steps (each writes its own file; summary.json has them all, and the exit code is 1 if a check
failed):
1. env.json: torch, CUDA, the GPU, cores; which optional libraries import. cuda_tests.txt: the
   tests marked `cuda` (pytest -m cuda: LSTM gradients on cuDNN and explainers against the CPU).
2. agreement.csv: a suite (quick; --tiny: a few cells) on --device and on the CPU, score by score:
   per metric the largest difference and the share of samples within its tolerance
   (TOLERANCE: float32 reduction order differs between kernels; rank-based metrics may swap
   near-ties, so a metric passes when 95 % of its samples agree within the tolerance).
3. determinism: the same suite again on --device into a new folder: identical scores.
4. plan.json: `bench plan --suite full --device D --json --workers W` (calibrated on this device).
5. full/: `bench run --suite full` on the device with the time that is left (not with --tiny);
   resumable: run the script again on the same --out to go on.

The wheels of the libraries the GPU machine lacks (captum, shap, lime, anchor-exp) and the cached
models travel with the checkout: scripts/gpu_prepare.sh puts them into .gpu_carry/ (ignored);
this script puts .gpu_carry/site on the path and .gpu_carry/cache as BENCH_CACHE_DIR when present.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CARRY = ROOT / ".gpu_carry"
TOLERANCE = {"default": 1e-3}  # absolute, on scores in [0, 1]-like ranges; per metric below
TOLERANCE.update({"infidelity": 1e-4, "sparseness": 1e-3, "complexity": 1e-3})
AGREE_SHARE = 0.95

TINY_SUITE = """
name: gpu-check-tiny
version: 1
seeds: [0]
chunk_size: 4
experiments:
  - name: mnist
    slice: {name: mnist-test, size: 4}
    models: [mnist_cnn]
    explainers: [saliency, {name: integrated_gradients, params: {n_steps: 8}}]
    metrics: [{name: deletion, params: {steps: 4, substrate: zero}}, sparseness]
"""


def bench(*args: str, env: dict, timeout: float | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "explainbench.bench", *args], env=env,
                          capture_output=True, text=True, timeout=timeout, cwd=ROOT)


def environment() -> dict:
    """The variables of every `bench` call: the carried wheels and caches where they are, and
    the checkout importable as `explainbench` without installing it (the package is the
    repository root: a link named explainbench to it, on PYTHONPATH)."""
    import tempfile

    env = dict(os.environ, PYTHONUNBUFFERED="1", HF_HUB_OFFLINE="1")
    paths = [str(CARRY / "site")] if (CARRY / "site").is_dir() else []
    try:
        __import__("explainbench.bench")
    except ImportError:
        link_dir = Path(tempfile.mkdtemp(prefix="explainbench-path-"))
        (link_dir / "explainbench").symlink_to(ROOT)
        paths.append(str(link_dir))
    if paths:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [*paths, env.get("PYTHONPATH")]))
    if (CARRY / "cache").is_dir():
        env.setdefault("BENCH_CACHE_DIR", str(CARRY / "cache"))
    if (CARRY / "data").is_dir():
        env.setdefault("BENCH_DATA_DIR", str(CARRY / "data"))
    return env


def cuda_tests(out: Path, env: dict) -> dict:
    """The tests marked `cuda` (device against CPU: LSTM gradients on cuDNN, explainers), their
    output in cuda_tests.txt; on a machine without CUDA they skip, which passes."""
    env = dict(env)
    if env.get("BENCH_CACHE_DIR"):  # the tests' cache: the carried tokenizer (no IMDB train split there)
        env.setdefault("BENCH_TEST_CACHE_DIR", env["BENCH_CACHE_DIR"])
    try:
        done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-m", "cuda", "-p",
                               "no:cacheprovider", "tests/models/test_cuda.py"], env=env,
                              capture_output=True, text=True, timeout=300, cwd=ROOT)
    except subprocess.TimeoutExpired:
        return {"exit": "timeout"}
    (out / "cuda_tests.txt").write_text(done.stdout + done.stderr)
    last = (done.stdout.strip().splitlines() or [""])[-1]
    return {"exit": done.returncode, "result": last}


def env_report(device: str) -> dict:
    import torch

    out = {"torch": torch.__version__, "cuda": torch.version.cuda,
           "cuda_available": torch.cuda.is_available(), "cores": os.cpu_count(), "device": device}
    if torch.cuda.is_available():
        out["gpu"] = torch.cuda.get_device_name(0)
        out["gpu_memory_gib"] = round(torch.cuda.get_device_properties(0).total_memory / 2**30, 1)
    for name in ("captum", "shap", "lime", "anchor", "quantus"):
        try:
            __import__(name)
            out[f"has_{name}"] = True
        except Exception:  # noqa: BLE001 - absent or broken: either way not usable
            out[f"has_{name}"] = False
    return out


def agreement(a: Path, b: Path):
    """Per metric: samples, largest |difference|, share within tolerance, passed."""
    import numpy as np
    import pandas as pd

    keys = ["experiment", "model", "explainer", "params_hash", "metric", "metric_params", "seed",
            "sample_id"]
    left = pd.read_parquet(a / "scores.parquet")
    right = pd.read_parquet(b / "scores.parquet")
    merged = left.merge(right, on=keys, suffixes=("_device", "_cpu"))
    rows = []
    for metric, g in merged.groupby("metric", sort=True):
        diff = (g["value_device"] - g["value_cpu"]).abs()
        both_nan = g["value_device"].isna() & g["value_cpu"].isna()
        tolerance = TOLERANCE.get(metric, TOLERANCE["default"])
        within = (diff <= tolerance) | both_nan
        rows.append({"metric": metric, "samples": len(g), "max_abs_diff": float(np.nanmax(diff))
                     if diff.notna().any() else 0.0, "tolerance": tolerance,
                     "share_within": float(within.mean()),
                     "passed": bool(within.mean() >= AGREE_SHARE)})
    return pd.DataFrame(rows), len(merged), len(left), len(right)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--tiny", action="store_true", help="a few cells, no `full` (CI)")
    parser.add_argument("--budget-s", type=float, default=480.0, help="the whole check's time")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args(argv)
    started = time.monotonic()
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    env = environment()
    summary: dict = {"env": env_report(args.device), "steps": {}}
    (out / "env.json").write_text(json.dumps(summary["env"], indent=2))

    summary["steps"]["cuda_tests"] = cuda_tests(out, env)
    ok_tests = summary["steps"]["cuda_tests"]["exit"] == 0

    suite = "quick"
    if args.tiny:
        (out / "tiny.yaml").write_text(TINY_SUITE)
        suite = str(out / "tiny.yaml")
    workers = ["--workers", str(args.workers)]
    runs = {}
    for name, device in (("device", args.device), ("cpu", "cpu"), ("again", args.device)):
        t0 = time.monotonic()
        done = bench("run", "--suite", suite, "--device", device, "--out", str(out / name),
                     "--no-progress", *workers, env=env)
        runs[name] = {"exit": done.returncode, "seconds": round(time.monotonic() - t0, 1),
                      "stderr_tail": done.stderr[-800:]}
    summary["steps"]["runs"] = runs
    ok = all(r["exit"] == 0 for r in runs.values())
    if ok:
        table, paired, n_device, n_cpu = agreement(out / "device", out / "cpu")
        table.to_csv(out / "agreement.csv", index=False)
        import pandas as pd

        same = pd.read_parquet(out / "device" / "scores.parquet").equals(
            pd.read_parquet(out / "again" / "scores.parquet"))
        summary["steps"]["agreement"] = {"paired": paired, "device_rows": n_device,
                                         "cpu_rows": n_cpu, "passed": bool(table["passed"].all()),
                                         "metrics": table.to_dict("records")}
        summary["steps"]["determinism"] = {"identical": bool(same)}
        ok = ok and bool(table["passed"].all()) and paired == n_device == n_cpu and same

    plan = bench("plan", "--suite", "full", "--device", args.device, "--json", *workers, env=env)
    if plan.returncode == 0:
        (out / "plan.json").write_text(plan.stdout)
        payload = json.loads(plan.stdout)
        summary["steps"]["plan"] = {k: payload[k] for k in ("forward_passes", "projected_seconds",
                                                             "projected_wall_seconds", "basis",
                                                             "throughput")}
    else:
        summary["steps"]["plan"] = {"exit": plan.returncode, "stderr": plan.stderr[-400:]}
        ok = False

    left = args.budget_s - (time.monotonic() - started) - 30
    if not args.tiny and left > 60:
        t0 = time.monotonic()
        try:
            done = bench("run", "--suite", "full", "--device", args.device, "--out",
                         str(out / "full"), "--no-progress", *workers, env=env, timeout=left)
            summary["steps"]["full"] = {"exit": done.returncode, "finished": done.returncode == 0}
        except subprocess.TimeoutExpired:
            summary["steps"]["full"] = {"finished": False, "stopped_after_s": round(left)}
        parts = out / "full" / "parts"
        summary["steps"]["full"].update(
            seconds=round(time.monotonic() - t0, 1),
            cells_done=len(list(parts.glob("*.done.json"))) if parts.is_dir() else 0)
    summary["ok"] = ok = ok and ok_tests
    summary["seconds"] = round(time.monotonic() - started, 1)
    (out / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
    print(json.dumps({"ok": ok, "seconds": summary["seconds"], "out": str(out)}))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
