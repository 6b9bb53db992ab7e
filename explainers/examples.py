"""Explanation by example, as ExMatchina does it (Jeyakumar et al. 2020, NeurIPS, "How can I
explain this to you?"; github.com/nesl/ExMatchina, exmatchina.py).

ExMatchina takes the activations of a chosen layer ("we recommend the layer immediately following
the last convolution (e.g. flatten layer)") for every training example and for the input, and
returns the k training examples of highest cosine similarity among those whose label equals the
input's predicted class, where an example's label is the model's own prediction for it
(`generate_labels`: argmax of model.predict over the examples). Here:

- `layer: flatten` (default), the layer after the last convolution: the CNN's `flatten` (the
  3,136 pooled conv2 activations). Models without a convolution take the layer that plays its
  part, the output of their feature extractor before the classification head: the logistic
  regression's flattened pixels (it has no hidden layer); the transformer's [CLS] state out of
  the last encoder block (its pooler, dense + tanh, is the first layer of the head, as the
  CNN's fc1 + relu3 is); the LSTM's masked mean + max pooled states, which feed its linear
  classifier directly (so for the LSTM both layers are the same).
  `layer: hidden`, the last hidden layer (the classifier's input: the CNN's 128-d `relu3`, the
  transformer's pooler output), is the earlier behaviour.
- `label_filter: predicted` (default) keeps the training examples the model predicts as the
  explained class (ExMatchina's labels); `label` keeps those whose true label it is; `none` keeps
  every example (the earlier behaviour). The explained class is the prediction unless a suite
  explains the true label.

Besides the k examples, each explanation carries the nearest training example without the filter
and its label (of the filter's kind; true labels for `none`): when that label is not the explained
class, the closest example the model knows disagrees with the prediction, which the filtered
examples cannot show.

The activations and predicted classes of the whole training split are computed once per
checkpoint and layer, in batches, and cached as safetensors under BENCH_CACHE_DIR/examples/,
keyed by the checkpoint digest, the layer and a digest of the training inputs (the CNN's flatten
layer is 60,000 x 3,136 float32, 750 MB). Each entry is sealed with a digest of its key and
contents and checked for its length and finite values on load; a damaged entry is set aside with
one line and computed again (core/sealed.py). Models without a model card (tests' tiny models)
are not cached.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from explainbench.core.errors import ExplainerError
from explainbench.core.params import Choice, Int
from explainbench.explainers.base import Explainer
from explainbench.explainers.gradients import chunks

LAYERS = ("flatten", "hidden")
LABEL_FILTERS = ("predicted", "label", "none")


@dataclass(frozen=True)
class ExampleExplanation:
    """For each of B inputs, the ids (positions in `task.train_split()`, i.e. training-set
    indices) of its k nearest training examples that pass the label filter, most similar first,
    and their similarities; and the nearest training example without the filter, its similarity
    and its label (the filter's kind of label)."""

    ids: Tensor  # (B, k) long
    similarity: Tensor  # (B, k) float32
    nearest_id: Tensor | None = None  # (B,) long
    nearest_similarity: Tensor | None = None  # (B,) float32
    nearest_label: Tensor | None = None  # (B,) long

    def __len__(self) -> int:
        return len(self.ids)


def representation(model: nn.Module, x: Tensor, layer: str = "hidden") -> tuple[Tensor, Tensor]:
    """(activations (B, D), logits (B, C)) of one batch, in one forward pass: text models say
    what their layers are (`example_representation`); other models name a module in
    `example_layers` (else `hidden_layer`), whose output a hook captures."""
    if hasattr(model, "example_representation"):
        activations, logits = model.example_representation(x, layer)
        return activations.flatten(1), logits
    name = getattr(model, "example_layers", {}).get(layer, getattr(model, "hidden_layer", None))
    captured = {}

    def keep(_module, _inputs, output):
        captured["h"] = output

    handle = model.get_submodule(name).register_forward_hook(keep)
    try:
        logits = model(x)
    finally:
        handle.remove()
    return captured["h"].flatten(1), logits


def activations_and_predictions(model: nn.Module, inputs: Tensor, batch_size: int,
                                layer: str = "hidden") -> tuple[Tensor, Tensor]:
    """(activations (N, D) float32, predicted classes (N,) long), in batches, without gradients."""
    acts, preds = [], []
    with torch.no_grad():
        for part in chunks(len(inputs), batch_size):
            a, logits = representation(model, inputs[part], layer)
            acts.append(a.float())
            preds.append(logits.argmax(dim=1))
    if not acts:
        return torch.zeros(0, 0), torch.zeros(0, dtype=torch.long)
    return torch.cat(acts), torch.cat(preds)


def hidden_activations(model: nn.Module, task, inputs: Tensor, batch_size: int,
                       layer: str = "hidden") -> Tensor:
    """Activations (N, D) of `layer`, float32, computed in batches without gradients."""
    return activations_and_predictions(model, inputs, batch_size, layer)[0]


def _cache_path(model, task, train_inputs: Tensor, layer: str):
    card = getattr(model, "card", None)
    if not card or "checkpoint_sha256" not in card:
        return None
    from explainbench.core import paths

    digest = hashlib.sha256(train_inputs.detach().cpu().contiguous().numpy().tobytes()).hexdigest()
    # "sealed": entries carry a digest of key and contents (core/sealed.py); older unsealed
    # entries have another name and are never read
    name = (f"{card['checkpoint_sha256'][:16]}-{task.name}-{layer}-train-{digest[:16]}"
            ".sealed.safetensors")
    return paths.cache_dir() / "examples" / name


_LOADED: dict = {}  # the last training split read from the cache: chunks of a run reuse it


def train_activations(model: nn.Module, task, batch_size: int,
                      layer: str = "hidden") -> tuple[Tensor, Tensor]:
    """(activations (N, D), predicted classes (N,)) of the whole training split on the model's
    device, cached per checkpoint and layer."""
    from explainbench.core import sealed

    device = next(model.parameters()).device
    train_inputs, _ = task.train_split()
    path = _cache_path(model, task, train_inputs, layer)
    if path is not None and (path, device) in _LOADED:
        return _LOADED[(path, device)]
    if path is not None and path.is_file():
        try:
            found = _checked(sealed.load(path, path.stem)[0], len(train_inputs))
            found = found[0].to(device), found[1].to(device)
            _LOADED.clear()
            _LOADED[(path, device)] = found
            return found
        except sealed.DamagedEntry as exc:
            sealed.set_aside(path, "activations cache entry", str(exc))
    found = activations_and_predictions(model, train_inputs.to(device), batch_size, layer)
    if path is not None:
        sealed.save(path, path.stem, {"activations": found[0], "predictions": found[1]})
        _LOADED.clear()
        _LOADED[(path, device)] = found
    return found


def _checked(stored: dict, n: int) -> tuple[Tensor, Tensor]:
    """The cached (activations, predictions) if they have the training split's length and finite
    values; DamagedEntry otherwise (a sealed file can still hold what the code does not expect)."""
    from explainbench.core.sealed import DamagedEntry

    acts, preds = stored.get("activations"), stored.get("predictions")
    if acts is None or preds is None:
        raise DamagedEntry("activations or predictions missing")
    if acts.ndim != 2 or len(acts) != n or preds.shape != (n,):
        raise DamagedEntry(f"activations {tuple(acts.shape)} and predictions {tuple(preds.shape)} "
                           f"for {n} training samples")
    if not torch.isfinite(acts).all():
        raise DamagedEntry("non-finite activations")
    return acts.float(), preds.long()


def nearest(queries: Tensor, keys: Tensor, k: int, block: int = 4096, *,
            query_labels: Tensor | None = None,
            key_labels: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """Top-k cosine similarities of each query (B, D) among the keys (N, D), scanning the keys in
    blocks so that memory stays B x block. With labels, a query sees only the keys of its own
    label (the others score -inf). Ties go to the lower index."""
    q = nn.functional.normalize(queries.float(), dim=1)
    best_sim = torch.full((len(q), 0), float("-inf"), device=q.device)
    best_ids = torch.zeros((len(q), 0), dtype=torch.long, device=q.device)
    for start in range(0, len(keys), block):
        kb = nn.functional.normalize(keys[start : start + block].float(), dim=1)
        sim = q @ kb.T
        if key_labels is not None:
            other = key_labels[start : start + block][None, :] != query_labels[:, None]
            sim = sim.masked_fill(other, float("-inf"))
        ids = torch.arange(start, start + len(kb), device=q.device).expand(len(q), -1)
        sims, idx = torch.cat([best_sim, sim], 1), torch.cat([best_ids, ids], 1)
        top = torch.topk(sims, min(k, sims.shape[1]), dim=1, sorted=True)
        best_sim, best_ids = top.values, idx.gather(1, top.indices)
    return best_ids, best_sim


class NearestExamples(Explainer):
    """ExMatchina: the `k` training examples of highest cosine similarity at `layer` among those
    `label_filter` keeps. Returns an `ExampleExplanation`, not an attribution map."""

    name = "nearest_examples"
    output = "examples"
    parameters = {
        "k": Int(5, 1, 1000, doc="training examples per input"),
        "layer": Choice("flatten", LAYERS, doc="flatten: after the last convolution (ExMatchina); "
                        "hidden: the last hidden layer"),
        "label_filter": Choice("predicted", LABEL_FILTERS,
                               doc="keep examples the model predicts as (predicted) or labelled "
                                   "(label) the explained class, or all (none)"),
    }
    reference = "Jeyakumar et al. 2020 (ExMatchina)"

    def cost(self, modality, features):
        # the training split's activations are computed once per checkpoint and cached
        return 1.0, 0.0

    def attribute(self, model, task, inputs, targets, *, seed):
        k, layer, kind = int(self.params["k"]), self.params["layer"], self.params["label_filter"]
        keys, predicted = train_activations(model, task, self.batch_size, layer)
        if not 0 < k <= len(keys):
            raise ExplainerError(f"nearest_examples: k must be in 1..{len(keys)}, got {k}")
        key_labels = predicted if kind == "predicted" else task.train_split()[1].to(keys.device)
        queries = hidden_activations(model, task, inputs, self.batch_size, layer)
        targets = targets.to(keys.device)
        if kind == "none":
            ids, similarity = nearest(queries, keys, k)
        else:
            available = torch.bincount(key_labels, minlength=task.num_classes)[targets]
            if (available < k).any():
                row = int((available < k).nonzero()[0])
                raise ExplainerError(
                    f"nearest_examples: only {int(available[row])} training examples pass the "
                    f"'{kind}' filter for class {int(targets[row])}; k is {k}")
            ids, similarity = nearest(queries, keys, k, query_labels=targets, key_labels=key_labels)
        if not torch.isfinite(similarity).all():
            rows = (~torch.isfinite(similarity).all(1)).nonzero().flatten().tolist()
            raise ExplainerError(f"explainer {self.name} produced non-finite similarities for the "
                                 f"samples at batch positions {rows}")
        first, first_sim = nearest(queries, keys, 1)
        device = inputs.device
        return ExampleExplanation(ids.to(device), similarity.to(device), first[:, 0].to(device),
                                  first_sim[:, 0].to(device), key_labels[first[:, 0]].to(device))
