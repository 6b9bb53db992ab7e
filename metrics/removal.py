"""The shared engine of every removal metric: rank features by attribution, take away (or put back)
some of them through `Task.remove`, and read the target-class probability.

Batched: every (sample, perturbation) row of a metric goes through the model in forward batches of
`batch_size`; the keep masks of a batch are built with tensor ops from the ranks, so there is no
per-step Python work beyond one `Task.remove` and one forward call per batch.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor

from explainbench.metrics.ordering import ranks_of, tie_broken_order, tie_noise

# The substrate each paper removes features into, per modality; `substrate=None` means this.
# Images: RISE (Petsiuk et al. 2018) deletes to black and inserts into a blurred canvas; Samek et
# al. 2017 replace regions by uniform noise (AOPC; kept for pixel flipping to full removal); Bhatt et al. 2020 (and Quantus's default "black")
# replace by the darkest value. Text: [MASK] keeps positions (the models were trained with word
# dropout to [MASK]); ERASER (DeYoung et al. 2020) deletes the tokens, i.e. `pad`.
PAPER_SUBSTRATES: dict[str, dict[str, str]] = {
    "deletion": {"image": "zero", "text": "mask"},
    "insertion": {"image": "blur", "text": "mask"},
    "aopc": {"image": "noise", "text": "mask"},
    "pixel_flipping": {"image": "noise", "text": "mask"},
    "eraser": {"image": "zero", "text": "pad"},
    "faithfulness_correlation": {"image": "zero", "text": "mask"},
}


# Which removal curves a metric evaluates: (order, steps, substrate) per curve, "down" removing
# features by decreasing attribution, "up" by increasing, "in" inserting by decreasing. Two
# metrics that evaluate one of the same curves are one measurement (the leaderboard counts their
# families once): on text deletion and MIF both remove words into [MASK].
CURVES = {"deletion": (("down", "deletion"),), "mif": (("down", "pixel_flipping"),),
          "lif": (("up", "pixel_flipping"),),
          "srg": (("down", "pixel_flipping"), ("up", "pixel_flipping")),
          "insertion": (("in", "insertion"),)}
STEPS_DEFAULT = 20


def measurements(metric: str, params: dict, modality: str) -> set[tuple]:
    """The removal curves `metric` with `params` evaluates on `modality` (empty for a metric
    that evaluates none of the shared curves)."""
    out = set()
    for order, paper in CURVES.get(metric, ()):
        substrate = params.get("substrate") or PAPER_SUBSTRATES[paper][modality]
        out.add((order, int(params.get("steps") or STEPS_DEFAULT), substrate))
    return out


def resolve_substrate(task, substrate: str | None, paper: str) -> str:
    """The substrate to use: the one asked for, else the paper's default for this modality."""
    if substrate is None:
        substrate = PAPER_SUBSTRATES[paper][task.modality]
    return task.check_substrate(substrate)


def feature_ranks(task, inputs: Tensor, attributions: Tensor, descending: bool = True,
                  seed: int = 0):
    """Rank of each feature (0 = first to go) and the number of features per sample.

    Ties are broken at random from the seed and the sample (metrics/ordering.py), never by
    position; positions that are not features (text [CLS] and padding) rank after every feature
    and are never touched.
    """
    valid = task.feature_mask(inputs).flatten(1)
    scores = attributions.flatten(1).to(torch.float64)
    fill = float("-inf") if descending else float("inf")
    scores = torch.where(valid, scores, torch.full_like(scores, fill))
    order = tie_broken_order(scores, descending, tie_noise(inputs, seed, scores.shape[1]))
    return ranks_of(order), valid.sum(dim=1)


def counts_for_fractions(n_features: Tensor, fractions: Tensor) -> Tensor:
    """(B, S): how many features each fraction means for each sample, rounded half up, so the
    fractions 0 and 1 are exactly none and all."""
    n = n_features.to(torch.float64).unsqueeze(1)
    fractions = torch.as_tensor(fractions, dtype=torch.float64, device=n.device)
    return torch.floor(fractions.unsqueeze(0) * n + 0.5).long()


def check_fraction(name: str, value: float, *, allow_zero: bool = False, allow_one: bool = True) -> float:
    value = float(value)
    low_ok = value >= 0 if allow_zero else value > 0
    high_ok = value <= 1 if allow_one else value < 1
    if not (low_ok and high_ok):
        raise ValueError(f"{name} must be in {'[' if allow_zero else '('}0, 1{']' if allow_one else ')'}, got {value}")
    return value


def target_output(model, task, batch: Tensor, targets: Tensor, output: str = "probability") -> Tensor:
    """The target-class probability (or logit) of each row, float32."""
    logits = task.forward(model, batch).float()
    if output == "probability":
        logits = torch.softmax(logits, dim=-1)
    elif output != "logit":
        raise ValueError(f"output must be 'probability' or 'logit', got {output!r}")
    return logits.gather(1, targets.view(-1, 1)).squeeze(1)


@torch.inference_mode()
def batched_output(model, task, inputs: Tensor, targets: Tensor, *, batch_size: int = 256,
                   output: str = "probability") -> Tensor:
    """`target_output` of unperturbed inputs, in forward batches."""
    return torch.cat([target_output(model, task, inputs[i:i + batch_size], targets[i:i + batch_size],
                                    output) for i in range(0, len(inputs), max(1, batch_size))])


@torch.inference_mode()
def evaluate_removals(model, task, inputs: Tensor, targets: Tensor, samples: Tensor,
                      keep_rows: Callable[[slice, Tensor], Tensor], *, substrate: str,
                      fill: Tensor | None, batch_size: int = 256, output: str = "probability") -> Tensor:
    """Target output (N,) of N perturbed inputs: row i is `inputs[samples[i]]` with the features
    where `keep_rows(rows, samples[rows])` is False taken away (fill: `task.substrate_fill`)."""
    out = torch.empty(len(samples), device=inputs.device)
    for start in range(0, len(samples), max(1, batch_size)):
        rows = slice(start, min(len(samples), start + batch_size))
        b = samples[rows]
        keep = keep_rows(rows, b).view(len(b), *task.feature_shape)
        perturbed = task.remove(inputs.index_select(0, b), keep, substrate,
                                fill=None if fill is None else fill.index_select(0, b))
        out[rows] = target_output(model, task, perturbed, targets.index_select(0, b), output)
    return out


def removal_curve(model, task, inputs: Tensor, ranks: Tensor, counts: Tensor, targets: Tensor, *,
                  substrate: str, insert: bool = False, batch_size: int = 256,
                  generator: torch.Generator | None = None, fill: Tensor | None = None) -> Tensor:
    """Target-class probability (B, S) after removing the `counts[b, s]` first-ranked features of
    sample b (or, with `insert`, keeping only them on the substrate). A random substrate is drawn
    once per sample from `generator` (or given as `fill`), so every step of a curve sees the same
    noise and the result does not depend on `batch_size`."""
    if fill is None:
        fill = task.substrate_fill(inputs, substrate, generator=generator)
    B, S = counts.shape
    samples = torch.arange(B, device=inputs.device).repeat_interleave(S)
    # int32 ranks: a quarter of the bytes to gather per row than int64 (F < 2^31)
    ranks = ranks.to(torch.int32)
    flat_k = counts.reshape(-1, 1).to(inputs.device, torch.int32)

    def keep_rows(rows: slice, b: Tensor) -> Tensor:
        rank = ranks.index_select(0, b)  # the first k features of a row are the chosen ones
        return rank < flat_k[rows] if insert else rank >= flat_k[rows]

    return evaluate_removals(model, task, inputs, targets, samples, keep_rows, substrate=substrate,
                             fill=fill, batch_size=batch_size).view(B, S)
