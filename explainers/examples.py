"""Explanation by example: the training samples the model "sees" as most similar to the input.

ExMatchina (Jeyakumar et al. 2020, NeurIPS, "How can I explain this to you?"): the k training
examples whose last-hidden-layer activations have the highest cosine similarity with the input's.
The last hidden layer is `relu3` for the CNN, the flattened pixels for the logistic regression
(it has no hidden layer, so the "activations" are the input itself), and `model.hidden(ids)`
for the text models (the transformer's pooled [CLS], the LSTM's pooled states).

The activations of the whole training split are computed once per checkpoint, in batches, and
cached as safetensors under BENCH_CACHE_DIR/examples/, keyed by the checkpoint digest and a digest
of the training inputs. Models without a model card (tests' tiny models) are not cached.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from explainbench.core.errors import ExplainerError
from explainbench.core.params import Int
from explainbench.explainers.base import Explainer
from explainbench.explainers.gradients import chunks


@dataclass(frozen=True)
class ExampleExplanation:
    """For each of B inputs, the ids (positions in `task.train_split()`, i.e. training-set
    indices) of its k nearest training examples, most similar first, and their similarities."""

    ids: Tensor  # (B, k) long
    similarity: Tensor  # (B, k) float32

    def __len__(self) -> int:
        return len(self.ids)


def hidden_activations(model: nn.Module, task, inputs: Tensor, batch_size: int) -> Tensor:
    """Last-hidden-layer activations (N, D), float32, computed in batches without gradients."""
    out = []
    with torch.no_grad():
        for part in chunks(len(inputs), batch_size):
            out.append(_hidden(model, inputs[part]).flatten(1).float())
    return torch.cat(out) if out else torch.zeros(0, 0)


def _hidden(model: nn.Module, x: Tensor) -> Tensor:
    if hasattr(model, "hidden"):
        return model.hidden(x)
    layer = model.get_submodule(model.hidden_layer)
    captured = {}

    def keep(_module, _inputs, output):
        captured["h"] = output

    handle = layer.register_forward_hook(keep)
    try:
        model(x)
    finally:
        handle.remove()
    return captured["h"]


def _cache_path(model, task, train_inputs: Tensor):
    card = getattr(model, "card", None)
    if not card or "checkpoint_sha256" not in card:
        return None
    from explainbench.core import paths

    digest = hashlib.sha256(train_inputs.detach().cpu().contiguous().numpy().tobytes()).hexdigest()
    name = f"{card['checkpoint_sha256'][:16]}-{task.name}-train-{digest[:16]}.safetensors"
    return paths.cache_dir() / "examples" / name


def train_activations(model: nn.Module, task, batch_size: int) -> Tensor:
    """Activations of the whole training split (N, D) on the model's device, cached per checkpoint."""
    from safetensors.torch import load_file, save_file

    device = next(model.parameters()).device
    train_inputs, _ = task.train_split()
    path = _cache_path(model, task, train_inputs)
    if path is not None and path.is_file():
        try:
            return load_file(str(path))["activations"].to(device)
        except Exception:
            pass  # a damaged entry is recomputed
    activations = hidden_activations(model, task, train_inputs.to(device), batch_size)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        save_file({"activations": activations.cpu().contiguous()}, str(tmp))
        os.replace(tmp, path)
    return activations


def nearest(queries: Tensor, keys: Tensor, k: int, block: int = 4096) -> tuple[Tensor, Tensor]:
    """Top-k cosine similarities of each query (B, D) among the keys (N, D), scanning the keys in
    blocks so that memory stays B x block. Ties go to the lower index."""
    q = nn.functional.normalize(queries.float(), dim=1)
    best_sim = torch.full((len(q), 0), float("-inf"), device=q.device)
    best_ids = torch.zeros((len(q), 0), dtype=torch.long, device=q.device)
    for start in range(0, len(keys), block):
        kb = nn.functional.normalize(keys[start : start + block].float(), dim=1)
        sim = q @ kb.T
        ids = torch.arange(start, start + len(kb), device=q.device).expand(len(q), -1)
        sims, idx = torch.cat([best_sim, sim], 1), torch.cat([best_ids, ids], 1)
        top = torch.topk(sims, min(k, sims.shape[1]), dim=1, sorted=True)
        best_sim, best_ids = top.values, idx.gather(1, top.indices)
    return best_ids, best_sim


class NearestExamples(Explainer):
    """The `k` nearest training examples by cosine similarity of last-hidden-layer activations.
    Returns an `ExampleExplanation`, not an attribution map; the target class is not used."""

    name = "nearest_examples"
    output = "examples"
    parameters = {"k": Int(5, 1, 1000, doc="training examples per input")}
    reference = "Jeyakumar et al. 2020 (ExMatchina)"

    def cost(self, modality, features):
        # the training split's activations are computed once per checkpoint and cached
        return 1.0, 0.0

    def attribute(self, model, task, inputs, targets, *, seed):
        k = int(self.params["k"])
        keys = train_activations(model, task, self.batch_size)
        if not 0 < k <= len(keys):
            raise ExplainerError(f"nearest_examples: k must be in 1..{len(keys)}, got {k}")
        queries = hidden_activations(model, task, inputs, self.batch_size)
        ids, similarity = nearest(queries, keys, k)
        if not torch.isfinite(similarity).all():
            rows = (~torch.isfinite(similarity).all(1)).nonzero().flatten().tolist()
            raise ExplainerError(f"explainer {self.name} produced non-finite similarities for the "
                                 f"samples at batch positions {rows}")
        return ExampleExplanation(ids.to(inputs.device), similarity.to(inputs.device))
