"""RISE, batched (Petsiuk et al. 2018, arXiv:1806.07421).

Saliency S_c = sum_n P_c(x masked by M_n) M_n / (N p): the target class probability under N
random masks, each weighted by the mask and normalised by E[M] = p (eq. 4-6 of the paper).

Images: a binary s x s grid with cells kept with probability p, upsampled bilinearly to
(s + 1) * cell pixels and cropped at a random shift in [0, cell) (the paper's smooth masks);
masked images are x * M (the paper's black substrate). Text: each word token is kept with
probability p ("cells" of one token: there is no spatial smoothness to exploit), and dropped
words become [MASK] through `task.remove`, the same removal the metrics use.

The N masks come from a CPU generator seeded with `seed` and are shared by every sample (as in
the paper), so a sample's saliency does not depend on its batch. All masks x samples are evaluated
in forward batches of `batch_size`.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from explainbench.core.params import Float, Int
from explainbench.explainers.base import Explainer, seeded_generator


def image_masks(n: int, grid: int, p_keep: float, size: tuple[int, int],
                generator: torch.Generator) -> Tensor:
    """Smooth masks (n, H, W) in [0, 1]."""
    h, w = size
    cell_h, cell_w = math.ceil(h / grid), math.ceil(w / grid)
    cells = (torch.rand(n, 1, grid, grid, generator=generator) < p_keep).float()
    up = nn.functional.interpolate(cells, size=((grid + 1) * cell_h, (grid + 1) * cell_w),
                                   mode="bilinear", align_corners=False)[:, 0]
    dy = torch.randint(0, cell_h, (n,), generator=generator)
    dx = torch.randint(0, cell_w, (n,), generator=generator)
    rows = (dy[:, None] + torch.arange(h))[:, :, None]  # (n, H, 1)
    cols = (dx[:, None] + torch.arange(w))[:, None, :]  # (n, 1, W)
    return up[torch.arange(n)[:, None, None], rows, cols]


def token_masks(n: int, length: int, p_keep: float, generator: torch.Generator) -> Tensor:
    """Binary masks (n, L): which token positions are kept."""
    return (torch.rand(n, length, generator=generator) < p_keep).float()


class Rise(Explainer):
    """Randomized Input Sampling for Explanation (Petsiuk et al. 2018), see the module docstring."""

    name = "rise"
    stochastic = True
    parameters = {"n_masks": Int(1000, 1, 100_000), "grid": Int(7, 1, 28),
                  "p_keep": Float(0.5, 0, 1, low_open=True)}
    reference = "Petsiuk et al. 2018"

    def cost(self, modality, features):
        return float(self.params["n_masks"]), 0.0

    def masks(self, task, seed: int) -> Tensor:
        g = seeded_generator(seed)
        n, p = int(self.params["n_masks"]), float(self.params["p_keep"])
        if task.modality == "image":
            return image_masks(n, int(self.params["grid"]), p, task.feature_shape, g)
        return token_masks(n, task.feature_shape[0], p, g)

    def perturb(self, task, x: Tensor, masks: Tensor) -> Tensor:
        """Every sample of x (b, ...) under every mask (m, ...) -> (b * m, ...)."""
        b, m = len(x), len(masks)
        if task.modality == "image":
            return (x[:, None] * masks[None, :, None]).reshape(b * m, *x.shape[1:])
        repeated = x.repeat_interleave(m, dim=0)
        keep = masks.bool().repeat(b, 1)
        return task.remove(repeated, keep, "mask")

    def attribute(self, model, task, inputs, targets, *, seed):
        masks = self.masks(task, seed).to(inputs.device)
        n = len(masks)
        masks_per_eval = min(n, self.batch_size)
        samples_per_eval = max(1, self.batch_size // masks_per_eval)
        saliency = torch.zeros(len(inputs), *masks.shape[1:], device=inputs.device)
        with torch.no_grad():
            for s in range(0, len(inputs), samples_per_eval):
                x, t = inputs[s : s + samples_per_eval], targets[s : s + samples_per_eval]
                for start in range(0, n, masks_per_eval):
                    m = masks[start : start + masks_per_eval]
                    probs = torch.softmax(task.forward(model, self.perturb(task, x, m)), dim=-1)
                    p_target = probs.view(len(x), len(m), -1).gather(
                        2, t.view(-1, 1, 1).expand(-1, len(m), 1))[..., 0]  # (b, m)
                    saliency[s : s + len(x)] += torch.einsum("bm,m...->b...", p_target, m)
        return saliency / (n * float(self.params["p_keep"]))
