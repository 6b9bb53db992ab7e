"""Sanity checks (Adebayo et al. 2018, arXiv:1810.03292): does the explanation depend on the model?

Model-parameter randomisation cascades from the output layer down: at depth d the top d layers
(modules with parameters) are re-initialised, cumulatively, and the explanation of the randomised
model is compared with the trained model's. The randomisation follows Quantus's
`get_random_layer_generator(order="top_down", seed)` exactly (named_modules order reversed,
`torch.manual_seed(seed + 1)` then `reset_parameters()` per layer), so the scores are comparable
with quantus.MPRT. Similarities (per sample), the paper's three: Spearman of absolute attributions
(`_spearman`, as Quantus), Spearman of the signed attributions (`_spearman_signed`, the paper's
"without absolute values") and, for images, SSIM of the attribution maps normalised by their
maximum absolute value (Quantus's abs + normalise); and ours, `_spearman_untied`: the absolute
Spearman in expectation over random tie orders (similarity.spearman_untied), because maps that are
0 on most pixels look alike to an average-rank Spearman through their shared zeros alone.
"""

from __future__ import annotations

import copy
import re
from typing import Iterator

import torch
from torch import Tensor, nn

from explainbench.metrics import similarity

SANITY_METRICS = {f"{prefix}_{measure}": False  # lower = the map changed more
                  for prefix in ("mprt", "random_logit")
                  for measure in ("spearman", "spearman_signed", "spearman_untied", "ssim")}
_BLOCK = re.compile(r"^(.*?\.layer\.\d+|.*?\.(?:embeddings|pooler))(?:\.|$)")


def randomisable_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    return [(name, m) for name, m in model.named_modules() if hasattr(m, "reset_parameters")]


def _blocks(layers: list[tuple[str, nn.Module]]) -> list[tuple[str, list[nn.Module]]]:
    """Groups a transformer's layers into blocks (embeddings, each encoder layer, pooler) so the
    cascade has a handful of steps; other models keep one layer per step."""
    grouped: list[tuple[str, list[nn.Module]]] = []
    for name, module in layers:
        m = _BLOCK.match(name)
        key = m.group(1) if m else name
        if grouped and grouped[-1][0] == key:
            grouped[-1][1].append(module)
        else:
            grouped.append((key, [module]))
    return grouped


def cascading_randomisation(model: nn.Module, seed: int = 42, granularity: str = "layer"
                            ) -> Iterator[tuple[int, str, nn.Module]]:
    """Yields (depth, layer or block name, randomised copy), depth 1 = output layer only. The same
    copy is randomised further at each step: use it before advancing the iterator."""
    if granularity not in ("layer", "block"):
        raise ValueError(f"unknown granularity {granularity!r}; valid: layer, block")
    randomised = copy.deepcopy(model)
    layers = randomisable_layers(randomised)[::-1]
    steps = [(n, [m]) for n, m in layers] if granularity == "layer" else _blocks(layers)
    with torch.no_grad():
        for depth, (name, modules) in enumerate(steps, start=1):
            for module in modules:
                torch.manual_seed(seed + 1)
                module.reset_parameters()
            yield depth, name, randomised


def _normalised_abs(a: Tensor) -> Tensor:
    flat = a.abs().flatten(1)
    return (flat / flat.amax(1, keepdim=True).clamp(min=1e-300)).view_as(a)


def explanation_similarity(original: Tensor, other: Tensor, valid: Tensor, modality: str,
                           prefix: str) -> dict[str, Tensor]:
    """{prefix_spearman, prefix_spearman_signed, prefix_spearman_untied, prefix_ssim (images)}:
    per-sample similarity of two explanations (module docstring)."""
    out = {f"{prefix}_spearman": similarity.spearman(original.abs(), other.abs(), valid),
           f"{prefix}_spearman_signed": similarity.spearman(original, other, valid),
           f"{prefix}_spearman_untied": similarity.spearman_untied(original.abs(), other.abs(), valid)}
    if modality == "image":
        out[f"{prefix}_ssim"] = similarity.ssim(_normalised_abs(original).double(),
                                                _normalised_abs(other).double())
    return out


def random_other_class(targets: Tensor, num_classes: int, generator: torch.Generator) -> Tensor:
    """A uniformly drawn class different from each target (drawn on the CPU, then moved)."""
    shift = torch.randint(1, num_classes, targets.shape, generator=generator)
    return (targets.cpu() + shift).remainder(num_classes).to(targets.device)
