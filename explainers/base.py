"""The Explainer interface every family implements, and the checks every explanation passes.

A subclass declares what it is (modalities, stochastic, needs gradients or a background set, its
cost parameters with defaults) and implements `attribute`. `explain` wraps it with the contract:
targets default to the predicted class; the result is float32 on the task's feature space, finite,
and zero on positions that are not features (text padding and [CLS]).
"""

from __future__ import annotations

import hashlib
import inspect
import json
from abc import ABC, abstractmethod
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from explainbench.core.errors import BenchError, ExplainerError
from explainbench.core.params import Int, Param, check_all, declared

BATCH_SIZE = Int(256, low=1, doc="model evaluations per forward batch")


class Explainer(ABC):
    name: ClassVar[str]
    modalities: ClassVar[frozenset[str]] = frozenset({"image", "text"})
    stochastic: ClassVar[bool] = False
    needs_gradients: ClassVar[bool] = False
    # The definition's version: bump it whenever the explainer's maps would change (a bug fix, a
    # new default). Score rows carry it; `bench compare` pairs only equal ones. Plugins: 1.
    version: ClassVar[int] = 1
    needs_background: ClassVar[bool] = False
    # Output kind: "attribution" maps on the feature space; "examples" (explanation by example)
    # returns training ids and similarities, which the feature metrics skip.
    output: ClassVar[str] = "attribution"
    # Parameters that change the explanation (and its cache key): each with its default, type and
    # valid range (explainbench.core.params), which a suite overrides within that range.
    parameters: ClassVar[dict[str, Param]] = {}
    # {name: default}, derived from `parameters`; a class may declare only `defaults` (a plugin's
    # shorthand), whose types are then inferred from the defaults.
    defaults: ClassVar[dict[str, Any]] = {}
    # Records (see `explain_with_records`) that are per-sample scores of the explanation itself,
    # written as score rows beside the metrics': {record name: higher is better}.
    record_scores: ClassVar[dict[str, bool]] = {}
    # The record holding the ids of the features the explanation chose (B, L), padded with -1,
    # whose overlap across seeds the stability study measures (stability_jaccard).
    chosen_record: ClassVar[str | None] = None
    # Paper or library the method follows, shown by `bench list`.
    reference: ClassVar[str] = ""

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "parameters" in cls.__dict__:
            cls.parameters = declared(cls.parameters)
            cls.defaults = {k: p.default for k, p in cls.parameters.items()}
        elif "defaults" in cls.__dict__:
            cls.parameters = declared(cls.defaults)

    def __init__(self, *, batch_size: int = 256, **params: Any):
        owner = f"explainer {self.name!r}"
        self.params: dict[str, Any] = check_all(self.parameters, params, owner)
        # How many model evaluations go into one forward batch. A runtime knob, not a parameter:
        # results must not depend on it, so it stays out of `params` and the cache key.
        self.batch_size = BATCH_SIZE.check(batch_size, "batch_size", owner)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in sorted(self.params.items()))
        return f"{self.name}({args})"

    @property
    def params_hash(self) -> str:
        return params_hash(self.name, self.params)

    def cost(self, modality: str, features: float) -> tuple[float, float] | None:
        """Expected (forward, backward) model evaluations of one explanation, for `bench plan`:
        `features` is the sample's number of features (784 pixels, or its words). None where it
        is not known in advance (the planner then says so); the runner counts the real ones."""
        return None

    # ------------------------------------------------------------------ the contract

    def supports(self, model: nn.Module, task) -> str | None:
        """None when this explainer can explain `model` on `task`, else the reason it cannot."""
        if task.modality not in self.modalities:
            return f"{self.name} explains {'/'.join(sorted(self.modalities))} models, not {task.modality}"
        return None

    def explain(self, model: nn.Module, task, inputs: Tensor, targets: Tensor | None = None,
                *, seed: int = 0, sample_ids=None) -> Tensor:
        """Attributions (B, *task.feature_shape), float32, on the inputs' device (for
        `output = "examples"`, the explainer's example structure instead).

        `sample_ids` identify the samples (the runner passes their ids in the split); without
        them a sample is identified by its content. An `attribute` that takes `sample_ids` gets
        them, so a stochastic method can draw each sample's numbers from its own generator
        (`sample_generator(seed, sample_id)`): then a sample's explanation depends on its seed
        and id only, never on the other samples of its batch or chunk."""
        return self.explain_with_records(model, task, inputs, targets, seed=seed,
                                         sample_ids=sample_ids)[0]

    def explain_with_records(self, model: nn.Module, task, inputs: Tensor,
                             targets: Tensor | None = None, *, seed: int = 0,
                             sample_ids=None) -> tuple[Tensor, dict[str, Tensor]]:
        """(attributions as `explain` returns them, records): the per-sample tensors an
        explainer keeps beside its map (Anchor's rule: its features, precision and coverage),
        {name: tensor with one row per input}; empty for most explainers. An `attribute` that
        has records returns `(attributions, records)`."""
        reason = self.supports(model, task)
        if reason:
            raise BenchError(reason)
        if targets is None:
            targets = predicted_class(model, task, inputs, self.batch_size)
        targets = torch.as_tensor(targets, device=inputs.device).long().reshape(-1)
        if len(targets) != len(inputs):
            raise ValueError(f"{len(targets)} targets for {len(inputs)} inputs")
        extra = {}
        if "sample_ids" in inspect.signature(self.attribute).parameters:
            extra["sample_ids"] = sample_keys(inputs, sample_ids)
        try:
            attributions = self.attribute(model, task, inputs, targets, seed=seed, **extra)
        except (BenchError, ExplainerError):
            raise
        except Exception as exc:
            raise ExplainerError(f"explainer {self.name} failed: {type(exc).__name__}: {exc}") from exc
        records: dict[str, Tensor] = {}
        if isinstance(attributions, tuple):
            attributions, records = attributions
            records = self._checked_records(records, len(inputs), inputs.device)
        if self.output != "attribution":
            # explanation by example: its own structure, checked by its family
            return attributions, records
        return self._checked(attributions, task, inputs), records

    def _checked_records(self, records: dict, n: int, device) -> dict[str, Tensor]:
        out = {}
        for name, value in records.items():
            if not isinstance(value, Tensor) or value.dim() == 0 or len(value) != n:
                raise ExplainerError(f"explainer {self.name} returned record {name!r} without one "
                                     f"row per input ({n})")
            out[name] = value.detach().to(device)
        return out

    def _checked(self, attributions: Tensor, task, inputs: Tensor) -> Tensor:
        expected = (len(inputs), *task.feature_shape)
        if tuple(attributions.shape) != expected:
            raise ExplainerError(
                f"explainer {self.name} returned shape {tuple(attributions.shape)}, expected {expected}"
            )
        attributions = attributions.detach().to(device=inputs.device, dtype=torch.float32)
        bad = ~torch.isfinite(attributions).flatten(1).all(dim=1)
        if bad.any():
            rows = bad.nonzero().flatten().tolist()
            raise ExplainerError(
                f"explainer {self.name} produced non-finite attributions for the samples at "
                f"batch positions {rows}"
            )
        return attributions * task.feature_mask(inputs)

    @abstractmethod
    def attribute(self, model: nn.Module, task, inputs: Tensor, targets: Tensor, *,
                  seed: int) -> Tensor:
        """The method itself; `explain` adds the contract around it. Returns the attributions,
        or `(attributions, records)` for an explainer that keeps per-sample records."""


def params_hash(name: str, params: dict[str, Any]) -> str:
    blob = json.dumps({"explainer": name, "params": params}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


def predicted_class(model: nn.Module, task, inputs: Tensor, batch_size: int = 256) -> Tensor:
    return task.probabilities(model, inputs, batch_size).argmax(dim=-1)


def seeded_generator(seed: int) -> torch.Generator:
    """A CPU generator: the same seed gives the same draws on every device (draw, then move)."""
    return torch.Generator().manual_seed(int(seed))


def sample_keys(inputs: Tensor, sample_ids=None) -> list[int]:
    """One integer per sample: its id where given, else a digest of its content (so the Python
    API without ids still gives a sample the same numbers whatever batch it comes in)."""
    if sample_ids is not None:
        keys = [int(i) for i in (sample_ids.tolist() if hasattr(sample_ids, "tolist") else sample_ids)]
        if len(keys) != len(inputs):
            raise ValueError(f"{len(keys)} sample ids for {len(inputs)} inputs")
        return keys
    rows = inputs.detach().cpu().contiguous().numpy()
    return [int.from_bytes(hashlib.sha256(row.tobytes()).digest()[:8], "little") >> 1
            for row in rows]


def sample_seed(seed: int, sample_key: int) -> int:
    """The seed of one sample's own random numbers, from the cell's seed and the sample's key."""
    digest = hashlib.sha256(f"explainbench/{int(seed)}/{int(sample_key)}".encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


def sample_generator(seed: int, sample_key: int) -> torch.Generator:
    """A CPU generator for one sample (see `sample_seed`)."""
    return seeded_generator(sample_seed(seed, sample_key))
