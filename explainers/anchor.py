"""Anchor (Ribeiro, Singh & Guestrin, AAAI 2018, "Anchors: High-Precision Model-Agnostic
Explanations"): the smallest set of features that, kept as they are, holds the prediction in
place while everything else is perturbed.

An anchor A is a set of interpretable features (superpixels, words). Its precision is the share
of perturbed inputs that keep the predicted class when the features of A are kept and each other
feature is switched off with probability 1/2; its coverage is the share of perturbed inputs in
which every feature of A happens to be on. The search finds an anchor of precision >= `threshold`
with probability >= 1 - `delta` by a beam search over anchors of growing size, each step a
KL-LUCB best-arm identification (tolerance `tau`) among the candidates.

The search is the reference implementation, `anchor.anchor_base.AnchorBaseBeam.anchor_beam` of
the `anchor-exp` package (BSD-2, Ribeiro's own code), called once per sample with explainbench's
own sampling function; anchor-exp's image and text front ends (spaCy, hub downloads) are not
used. The sampling function draws the requested number of perturbations at once and evaluates
them in forward batches of the explainer's `batch_size`, with the same features and the same
removal as LIME (explainers.lime_batched): SLIC (or grid) superpixels switched off to black (the
zero substrate) for images, words replaced by [MASK] for text, through `task.remove` like every
metric; each feature outside the candidate anchor is off with probability 1/2, as anchor-exp's
image sampler draws it and its text sampler does with `use_unk_distribution`. A perturbation is
a positive when the model's predicted class is the explained target.

Defaults are anchor-exp's: threshold 0.95, delta 0.1, tau 0.15 (`explain_instance` of both front
ends), beam size 1 and epsilon_stop 0.05 (`anchor_beam`; the text front end declares a beam of 4
but never passes it on), 10,000 coverage samples (the image front end). `sample_batch` is
anchor-exp's `batch_size`, the perturbations one step of the search draws: 100 in its image
front end, 10 in its text one; null (the default) takes those (on the CPU, 10 costs imdb_transformer
66,585 forward passes on a hard review where 100 cost 80,125, for the same anchor).
`max_anchor_size` caps the search at 10 features (anchor-exp: no cap, which costs a KL-LUCB over
every remaining feature for every size up to all of them when no anchor reaches the threshold;
the anchors seen at the defaults have 0-3 features); when no anchor reaches the threshold within
the cap, the search returns the most precise candidate it saw (anchor-exp's fallback), whose
precision is then below `threshold`.

Randomness: every sample draws from its own generator, `sample_generator(seed, sample id)`, so its
anchor depends on the model, the parameters, the seed and its id only. anchor-exp itself draws
from numpy's global generator only to pick example rows for its display, which are dropped; it
runs under `global_rng` of the sample's seed so the process's generators are left untouched.

Output. The attribution map is the anchor's features weighted by the order in which the search
added them, everything else 0: the j-th feature added (j = 0, 1, ..., s - 1 for an anchor of s
features) gets (s - j) / s at every one of its positions (every pixel of a superpixel, the word's
token), so the first feature added weighs 1 and the last 1/s; an empty anchor (the prediction
holds with every feature perturbed) is the all-zero map. The anchor itself travels as records
(`explain_with_records`), one row per sample:
  anchor_features   (B, S) long, the anchor's feature ids (superpixel labels of `segment_batch`,
                    word numbers 0.. of the review) in the order added, padded with -1;
  anchor_precision  (B,) the search's estimate of the anchor's precision;
  anchor_coverage   (B,) its coverage estimate (1 for the empty anchor). Under this perturbation
                    distribution the expected coverage of s features is exactly 2**-s;
  anchor_size       (B,) s.
The runner writes precision, coverage and size as score rows (category "rules").
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from explainbench.core.params import Float, Int
from explainbench.explainers.base import Explainer, sample_generator, sample_seed
from explainbench.explainers.seeding import global_rng
from explainbench.core.superpixels import SEGMENTATION
from explainbench.core.surrogate import evaluate, feature_groups, spread

EPSILON_STOP = 0.05  # anchor_beam's default: the tolerance of the final precision check
# anchor-exp's front ends' batch sizes, taken when `sample_batch` is null
FRONT_END_BATCH = {"image": 100, "text": 10}


def substrate_for(task) -> str:
    """What a switched-off feature becomes: black pixels, [MASK] words (as LIME)."""
    return "zero" if task.modality == "image" else "mask"


def order_weights(features: list[int], width: int) -> Tensor:
    """(width,) float64: feature j-th in `features` gets (s - j) / s, every other feature 0."""
    weights = torch.zeros(width, dtype=torch.float64)
    s = len(features)
    if s:
        weights[torch.as_tensor(features, dtype=torch.long)] = torch.arange(s, 0, -1).double() / s
    return weights


class AnchorSampler:
    """anchor-exp's `sample_fn(present, num_samples, compute_labels=True)` for one sample:
    (raw_data, data, labels) with data (n, M) bool (feature on), labels (n,) int64 (1 where the
    prediction is kept). raw_data, which anchor-exp only stores for display, is (n, 0): its
    preallocated copy (10,000 x the batch rows) then costs nothing."""

    def __init__(self, model, task, inputs: Tensor, target: Tensor, groups: Tensor, count: int,
                 generator: torch.Generator, batch_size: int):
        self.model, self.task, self.inputs, self.target = model, task, inputs, target
        self.groups, self.count, self.generator = groups, count, generator
        self.batch_size = batch_size
        self.substrate = substrate_for(task)
        self.evaluated = 0  # rows through the model, for the tests' bookkeeping

    def __call__(self, present, num_samples, compute_labels=True):
        bits = torch.randint(0, 2, (num_samples, self.count), generator=self.generator,
                             dtype=torch.uint8).bool()
        if len(present):
            bits[:, list(present)] = True
        empty = np.zeros((num_samples, 0), dtype=np.uint8)
        if not compute_labels:
            return empty, bits.numpy(), np.zeros(0, dtype=np.int64)
        kept = evaluate(self.model, self.task, self.inputs, self.target, self.groups,
                        bits[None].to(self.inputs.device), substrate=self.substrate,
                        output="kept", batch_size=self.batch_size)
        self.evaluated += num_samples
        return empty, bits.numpy(), kept[0].cpu().numpy().astype(np.int64)


class Anchor(Explainer):
    """Anchor's beam search (anchor-exp's AnchorBaseBeam) over superpixels or words; see the
    module docstring for the sampling, the defaults and the output."""

    name = "anchor"
    stochastic = True
    parameters = {
        "threshold": Float(0.95, 0, 1, low_open=True, doc="precision an anchor must reach"),
        "delta": Float(0.1, 0, 1, low_open=True, high_open=True,
                       doc="the search is wrong with probability at most delta"),
        "tau": Float(0.15, 0, 1, low_open=True, high_open=True,
                     doc="KL-LUCB tolerance (anchor-exp's epsilon)"),
        "beam_size": Int(1, 1, 100, doc="candidate anchors kept per size"),
        "sample_batch": Int(None, 1, 1000, nullable=True,
                            doc="perturbations per step of the search; null: 100 (images), 10 (text)"),
        "max_anchor_size": Int(10, 1, 1000, nullable=True, doc="largest anchor; null: no cap"),
        "coverage_samples": Int(10_000, 1, 1_000_000, doc="perturbations that estimate coverage"),
        "segmentation": SEGMENTATION,
    }
    reference = "Ribeiro et al. 2018; anchor-exp AnchorBaseBeam"
    # the search's own estimates, as score rows: a precise anchor, a wide one, a short one
    record_scores = {"anchor_precision": True, "anchor_coverage": True, "anchor_size": False}
    chosen_record = "anchor_features"

    def cost(self, modality, features):
        """The search is adaptive: its forward passes are averages measured here, for the
        forecast only (mnist_cnn: about 1,900 per image at the defaults, 1,200 with anchors of
        at most 2 superpixels; text at tau 0.5 with one-word anchors: 2,150 per review on
        imdb_transformer and 4,100 on imdb_lstm in quick)."""
        if modality == "image":
            return (1200.0 if (self.params["max_anchor_size"] or 99) <= 2 else 1900.0), 0.0
        return 3000.0, 0.0

    def attribute(self, model, task, inputs, targets, *, seed, sample_ids):
        groups, counts = feature_groups(task, inputs, self.params["segmentation"])
        width = max(int(counts.max()), 1) if len(counts) else 1
        weights = torch.zeros(len(inputs), width, dtype=torch.float64)
        precision = torch.ones(len(inputs), dtype=torch.float64)
        coverage = torch.ones(len(inputs), dtype=torch.float64)
        chosen: list[list[int]] = []
        for i, key in enumerate(sample_ids):  # the search is sequential within a sample
            found = self._search(model, task, inputs[i : i + 1], targets[i : i + 1],
                                 groups[i : i + 1], int(counts[i]), seed, key)
            chosen.append(found["feature"])
            weights[i] = order_weights(found["feature"], width)
            precision[i], coverage[i] = found["precision"], found["coverage"]
        features = torch.full((len(inputs), max([len(c) for c in chosen] + [1])), -1,
                              dtype=torch.long)
        for i, c in enumerate(chosen):
            features[i, : len(c)] = torch.as_tensor(c, dtype=torch.long)
        device = inputs.device
        attributions = spread(weights.to(device), groups, task.feature_shape)
        return attributions, {"anchor_features": features.to(device),
                              "anchor_precision": precision.float().to(device),
                              "anchor_coverage": coverage.float().to(device),
                              "anchor_size": (features >= 0).sum(1).float().to(device)}

    def _search(self, model, task, inputs, target, groups, count: int, seed: int, key: int) -> dict:
        """{"feature": ids in the order added, "precision", "coverage"} of one sample's anchor."""
        if count == 0:  # nothing to perturb: the prediction holds by itself
            return {"feature": [], "precision": 1.0, "coverage": 1.0}
        from anchor.anchor_base import AnchorBaseBeam

        p = self.params
        batch = p["sample_batch"] or FRONT_END_BATCH[task.modality]
        sampler = AnchorSampler(model, task, inputs, target, groups, count,
                                sample_generator(seed, key), self.batch_size)
        with global_rng(sample_seed(seed, key)):
            found = AnchorBaseBeam.anchor_beam(
                sampler, delta=p["delta"], epsilon=p["tau"], batch_size=batch,
                desired_confidence=p["threshold"], beam_size=p["beam_size"],
                epsilon_stop=EPSILON_STOP, max_anchor_size=p["max_anchor_size"],
                coverage_samples=p["coverage_samples"])
        features = [int(f) for f in found["feature"]]
        if not features:  # anchor_beam's early exit: the empty anchor is precise enough
            return {"feature": [], "precision": float(found["all_precision"]), "coverage": 1.0}
        return {"feature": features, "precision": float(found["precision"][-1]),
                "coverage": float(found["coverage"][-1])}
