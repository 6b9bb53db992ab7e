"""The prepared GPU check runs end to end here in its tiny CPU mode, so that the first run on a
GPU machine does not fail on a typo: every step writes its numbers, the device and CPU scores
agree (here trivially: both are the CPU), a rerun is identical, the plan is calibrated."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_gpu_check_runs_in_its_tiny_cpu_mode(tmp_path, real_data):
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / "gpu_check.py"), "--device",
                           "cpu", "--tiny", "--out", str(tmp_path / "check"), "--workers", "1"],
                          capture_output=True, text=True, timeout=600, env=os.environ)
    assert done.returncode == 0, done.stdout + done.stderr
    summary = json.loads((tmp_path / "check" / "summary.json").read_text())
    assert summary["ok"] and summary["steps"]["determinism"]["identical"]
    agreement = summary["steps"]["agreement"]
    assert agreement["passed"] and agreement["paired"] == agreement["device_rows"] > 0
    assert {m["metric"] for m in agreement["metrics"]} >= {"deletion", "sparseness"}
    assert summary["steps"]["plan"]["forward_passes"] > 100_000_000  # full's
    assert "full" not in summary["steps"]  # --tiny never starts it
    assert summary["steps"]["cuda_tests"]["exit"] == 0  # here: collected, and skipped without CUDA
    assert "skipped" in summary["steps"]["cuda_tests"]["result"]
    assert json.loads((tmp_path / "check" / "env.json").read_text())["device"] == "cpu"
