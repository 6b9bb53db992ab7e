"""How fast are the explainers, how close are the batched surrogates to their floor, and what does a
suite cost on this machine?

    python -m benchmarks.explainers_speed [--device cpu|cuda] [--quick] [--skip-suite]

Three parts, from one run on one machine (ratios, not seconds, are what carries to another one):

1. Throughput: every explainer at its registry defaults (the `full` suite's budgets) on the first
   `--n-images` MNIST test images with `mnist_cnn` and the first `--n-reviews` IMDB test reviews
   with `imdb_transformer`: explanations per second and forward passes (model evaluations, counted
   at the output layer) per explanation. Each explainer is warmed up on one input first, so
   one-time set-up (lazy imports, the example index) is not counted.
2. Batched surrogates at equal budgets: `lime_batched` against the `lime` package (at batch size
   1000 and at its default of 10) and `kernel_shap_batched` against Captum's KernelShap, each also
   against its floor: the forward passes its budget needs (inputs x samples) at the best forward
   batch size of this machine, measured over a sweep. Ratios: method / floor (1.0 = nothing but
   forward passes) and reference / ours.
3. The `quick` suite end to end (`bench run --suite quick`, attribution cache off, models cached):
   wall time and peak resident memory of the run, beside `bench plan`'s forecast of it (the
   forecast of any suite, `full` included, is `bench plan --suite NAME`).

Requires the cached full-profile models (`bench train`) and BENCH_DATA_DIR.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch

from benchmarks.metrics_speed import best_time, sweep, timed

# Parameters whose value a sampling explainer's cost is proportional to (the product of those it has).
BUDGET_KEYS = {
    "integrated_gradients": ("n_steps",),
    "smoothgrad": ("n_samples",),
    "gradient_shap": ("n_samples",),
    "deeplift_shap": ("background_size",),
    "kernel_shap": ("n_samples",),
    "kernel_shap_batched": ("n_samples",),
    "lime": ("n_samples",),
    "lime_batched": ("n_samples",),
    "rise": ("n_masks",),
    "shap_deep": ("background_size",),
    "shap_gradient": ("n_samples",),
    "shap_kernel": ("n_samples", "background_size"),
    "shap_partition": ("max_evals",),
}
# Full's curves have twice the steps of quick's (28/14 images, 20/10 reviews); the scoring share of
# a cell is scaled by this.
SCORING_SCALE = 2.0


@dataclass
class Setting:
    model_name: str
    model: torch.nn.Module
    task: object
    inputs: torch.Tensor
    targets: torch.Tensor
    batch_sizes: tuple[int, ...]


def load_setting(model_name: str, n: int, device, batch_sizes) -> Setting:
    from explainbench import models
    from explainbench.core import slices

    model = models.load(model_name, device=device, profile="full")
    task = models.task_of(model_name)
    slice_name = "mnist-test" if task.modality == "image" else "imdb-test"
    inputs = task.inputs(slices.load(slices.named(slice_name, n))).to(device)
    targets = task.probabilities(model, inputs).argmax(dim=-1)
    return Setting(model_name, model, task, inputs, targets, batch_sizes)


def explain_timed(explainer, s: Setting, device, n: int | None = None) -> tuple[float, float]:
    """(seconds per explanation, forward passes per explanation) on the first n inputs."""
    from explainbench.bench.cells.attribution_cache import count_forward_passes

    x, t = s.inputs[:n], s.targets[:n]
    explainer.explain(s.model, s.task, x[:1], t[:1], seed=0)  # warm-up
    with count_forward_passes(s.model) as counter:
        seconds = timed(lambda: explainer.explain(s.model, s.task, x, t, seed=0), device)[0]
    return seconds / len(x), counter.rows / len(x)


def best_forward(s: Setting, device, probe: float) -> tuple[int, float]:
    """(batch size, rows per second) of the fastest plain forward of these inputs."""
    biggest = max(s.batch_sizes)
    tiles = s.inputs.repeat(math.ceil(biggest / len(s.inputs)), *([1] * (s.inputs.dim() - 1)))

    def forward(batch: int) -> None:
        with torch.inference_mode():
            s.task.forward(s.model, tiles[:batch])

    rates = sweep(forward, s.batch_sizes, device, probe)
    batch = max(rates, key=rates.get)
    return batch, rates[batch]


def throughput_table(s: Setting, names: list[str], device) -> list[dict]:
    from explainbench import explainers

    rows = []
    for name in names:
        explainer = explainers.get(name, batch_size=s.task.default_batch_size(device))
        if explainer.supports(s.model, s.task):
            continue
        spe, fpe = explain_timed(explainer, s, device)
        rows.append({"model": s.model_name, "explainer": name, "per_s": 1 / spe, "fpe": fpe})
        print(f"  {s.model_name} {name}: {1 / spe:,.2f} explanations/s, {fpe:,.0f} forward passes "
              "per explanation", flush=True)
    return rows


def surrogate_table(s: Setting, device, probe: float, lime_default_n: int) -> list[dict]:
    """Ours, the reference(s) and the floor, seconds per explanation at equal budgets."""
    from explainbench import explainers

    batch, rate = best_forward(s, device, probe)
    print(f"  {s.model_name}: best forward batch {batch} ({rate:,.0f} rows/s)", flush=True)
    rows = []
    pairs = [("lime_batched", [("lime", batch), ("lime", 10)]),
             ("kernel_shap_batched", [("kernel_shap", batch)])]
    for ours_name, references in pairs:
        ours = explainers.get(ours_name, batch_size=batch)
        budget = int(ours.params["n_samples"])
        floor_rows = len(s.inputs) * budget
        tiles = s.inputs.repeat(math.ceil(batch / len(s.inputs)), *([1] * (s.inputs.dim() - 1)))[:batch]

        def floor() -> None:
            with torch.inference_mode():
                for start in range(0, floor_rows, batch):
                    s.task.forward(s.model, tiles[: min(batch, floor_rows - start)])

        ours_s = explain_timed(ours, s, device)[0]
        floor_s = best_time(floor, device) / len(s.inputs)
        for ref_name, ref_batch in references:
            if ref_name == "lime" and s.task.modality == "text" and ref_batch != batch:
                continue  # lime_text hands all samples to the classifier at once: no batch size
            n = lime_default_n if ref_batch == 10 else None
            reference = explainers.get(ref_name, batch_size=ref_batch)
            ref_s = explain_timed(reference, s, device, n)[0]
            rows.append({"model": s.model_name, "ours": ours_name, "budget": budget,
                         "batch": batch, "floor_s": floor_s, "ours_s": ours_s,
                         "reference": f"{ref_name} (batch {ref_batch})", "reference_s": ref_s})
            print(f"  {s.model_name} {ours_name}: ours {ours_s:.3f} s/explanation "
                  f"({ours_s / floor_s:.2f}x floor), {ref_name} batch {ref_batch} {ref_s:.3f} s "
                  f"({ref_s / floor_s:.2f}x floor, {ref_s / ours_s:.1f}x ours)", flush=True)
    return rows


def run_quick(device: str) -> tuple[float, float, Path]:
    """(wall seconds, peak RSS GiB, run folder) of `bench run --suite quick` in a subprocess."""
    out = Path(tempfile.mkdtemp(prefix="bench-quick-")) / "run"
    env = {**os.environ, "BENCH_ATTRIBUTION_CACHE": "0"}
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "explainbench.bench", "run", "--suite", "quick", "--out", str(out),
                    "--device", device, "--no-progress"], env=env, check=True)
    wall = time.perf_counter() - start
    peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # Linux: KiB
    return wall, peak_kib / 2**20, out


def plan_seconds(suite: str, device: str) -> float:
    """`bench plan`'s projected seconds for a suite on this machine."""
    done = subprocess.run([sys.executable, "-m", "explainbench.bench", "plan", "--suite", suite,
                           "--device", device, "--json"], capture_output=True, text=True, check=True)
    return float(json.loads(done.stdout)["projected_seconds"])


def hms(seconds: float) -> str:
    h, rest = divmod(int(round(seconds)), 3600)
    return f"{h}:{rest // 60:02d}:{rest % 60:02d}"


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--n-images", type=int, default=16)
    parser.add_argument("--n-reviews", type=int, default=4)
    parser.add_argument("--quick", action="store_true",
                        help="4 images, 2 reviews, shorter probes (a smoke test of the script)")
    parser.add_argument("--explainers", nargs="*", help="explainers of part 1 (default: all)")
    parser.add_argument("--skip-throughput", action="store_true")
    parser.add_argument("--skip-surrogates", action="store_true")
    parser.add_argument("--skip-suite", action="store_true", help="do not run the quick suite")
    parser.add_argument("--json", type=Path, help="also write every measurement here")
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    from explainbench import explainers

    device = torch.device(args.device)
    n_images, n_reviews = (4, 2) if args.quick else (args.n_images, args.n_reviews)
    probe = 0.5 if args.quick else 2.0
    gpu = device.type == "cuda"
    image = load_setting("mnist_cnn", n_images, device,
                         (256, 1024, 4096, 16384) if gpu else (64, 256, 1000, 2048))
    text = load_setting("imdb_transformer", n_reviews, device,
                        (128, 512, 2048) if gpu else (16, 32, 64, 128))
    print(f"device {device}, torch threads {torch.get_num_threads()}, {n_images} images, "
          f"{n_reviews} reviews", flush=True)
    report: dict = {"device": str(device), "threads": torch.get_num_threads()}

    if not args.skip_throughput:
        print("\n1. throughput at the registry defaults (the full suite's budgets)")
        names = args.explainers or explainers.names()
        report["throughput"] = throughput_table(image, names, device) + throughput_table(text, names, device)
        print("\n| model | explainer | explanations/s | forward passes / explanation |\n| --- | --- | ---: | ---: |")
        for r in report["throughput"]:
            print(f"| {r['model']} | {r['explainer']} | {r['per_s']:,.2f} | {r['fpe']:,.0f} |")

    if not args.skip_surrogates:
        print("\n2. batched surrogates against their references and their floor (equal budgets)")
        rows = (surrogate_table(image, device, probe, max(1, n_images // 4))
                + surrogate_table(text, device, probe, 1))
        report["surrogates"] = rows
        print("\n| model | method | budget | batch | floor s/expl | ours s/expl | ours / floor | "
              "reference | reference s/expl | reference / floor | reference / ours |\n"
              "| --- | --- | ---: | ---: | ---: | ---: | ---: | --- | ---: | ---: | ---: |")
        for r in rows:
            print(f"| {r['model']} | {r['ours']} | {r['budget']} | {r['batch']} | {r['floor_s']:.3f} | "
                  f"{r['ours_s']:.3f} | {r['ours_s'] / r['floor_s']:.2f} | {r['reference']} | "
                  f"{r['reference_s']:.3f} | {r['reference_s'] / r['floor_s']:.2f} | "
                  f"{r['reference_s'] / r['ours_s']:.1f} |")

    if not args.skip_suite:
        print("\n3. the quick suite end to end (attribution cache off)", flush=True)
        forecast = plan_seconds("quick", args.device)
        wall, peak, out = run_quick(args.device)
        report["suite"] = {"quick_wall_s": wall, "quick_peak_rss_gib": peak, "quick_run": str(out),
                           "quick_forecast_s": forecast}
        print(f"quick: wall {hms(wall)}, peak RSS {peak:.2f} GiB ({out}); bench plan forecast "
              f"{hms(forecast)}, measured / forecast {wall / forecast:.2f}")
    if args.json:
        args.json.write_text(json.dumps(report, indent=2, default=str))


if __name__ == "__main__":
    main()
