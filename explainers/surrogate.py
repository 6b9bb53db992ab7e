"""The batched machinery of local surrogate explainers (LIME, Kernel SHAP): interpretable features,
coalition designs, one set of large forward passes, and one batched weighted least-squares solve.

A surrogate explainer switches interpretable features (superpixels, words) on and off, evaluates
the model on every pattern, and fits a weighted linear model of the output on the patterns. The
reference packages do this one input at a time; here a whole batch is explained at once:

- `feature_groups` (core/surrogate.py, shared with Anchor and the rule metrics): which
  interpretable feature every position belongs to, and how many each input has.
- `design_by_count`: the binary design (B, n, F). A design depends only on the seed and the input's
  feature count (as in the wrappers, which draw every input's patterns from a fresh generator
  seeded with `seed`), so it is built once per distinct count and shared.
- `evaluate` (core/surrogate.py): all inputs x all patterns through the model in forward
  batches, switched-off features removed by `task.remove`.
- `weighted_linear_fit`: sklearn's weighted least squares with an unpenalised intercept (weighted
  centring, then ridge or minimum-norm least squares), batched over inputs in float64.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor

from explainbench.explainers.base import Explainer
from explainbench.core.surrogate import evaluate, feature_groups, spread

# Elements of one float64 (inputs, patterns, features) block of the solve: bounds its memory
# (64 MiB per temporary) whatever the batch, so a 1,000-input chunk of 255-word reviews fits.
SOLVE_BLOCK = 2**23


def design_by_count(counts: Tensor, build: Callable[[int], Tensor]) -> Tensor:
    """The (B, n, F) bool design, F = the largest count (at least 1): input b gets `build(M_b)`
    ((n, M_b) bool) in its first M_b columns and False in the padding columns, which then get
    exactly zero coefficients in the fit."""
    counts_cpu = counts.cpu()
    width = max(int(counts_cpu.max()), 1) if len(counts_cpu) else 1
    design = None
    for m in counts_cpu.unique().tolist():
        rows = build(int(m))
        if design is None:
            design = torch.zeros(len(counts_cpu), rows.shape[0], width, dtype=torch.bool)
        design[counts_cpu == m, :, : int(m)] = rows
    return design.to(counts.device)


def weighted_linear_fit(design: Tensor, y: Tensor, weights: Tensor, *, alpha: float,
                        rcond: float = 1e-6) -> tuple[Tensor, Tensor]:
    """(coef (B, F), intercept (B,)), float64: for every input b, the weighted least-squares fit
    of y[b] on design[b] with weights[b] and an unpenalised intercept, as sklearn computes it:
    centre X and y at their weighted means, then
    - alpha > 0: Ridge, solve (Xc' W Xc + alpha I) coef = Xc' W yc (sklearn does not scale alpha
      by the weights);
    - alpha = 0: LinearRegression, the minimum-norm least-squares solution, singular values of
      sqrt(W) Xc below `rcond` times the largest dropped (scipy lstsq's `cond`, sklearn's `tol`):
      the pseudo-inverse of Xc' W Xc with eigenvalues below rcond^2 times the largest dropped.
    intercept = weighted mean of y - weighted mean of X . coef."""
    b_count, n, width = design.shape
    step = max(1, SOLVE_BLOCK // max(1, n * width))
    coefs, intercepts = [], []
    for s in range(0, b_count, step):
        x = design[s : s + step].double()
        w = weights[s : s + step].double()
        t = y[s : s + step].double()
        total = w.sum(dim=1, keepdim=True)
        x_mean = (w.unsqueeze(1) @ x)[:, 0] / total  # (b, F)
        y_mean = (w * t).sum(dim=1) / total[:, 0]
        xc = x - x_mean[:, None]
        xw = (xc * w[..., None]).transpose(1, 2)  # (b, F, n)
        gram = xw @ xc
        rhs = xw @ (t - y_mean[:, None])[..., None]
        if alpha > 0:
            # Cholesky, not torch.linalg.solve: the system is symmetric positive definite, and
            # batched LU (getrf) of torch 2.13's MKL fails or returns garbage with 2 threads on
            # (4, 255, 255) float64 systems ("Parameter 6 was incorrect on entry to DLASWP").
            eye = torch.eye(width, dtype=gram.dtype, device=gram.device)
            coef = torch.cholesky_solve(rhs, torch.linalg.cholesky(gram + alpha * eye))[..., 0]
        else:
            coef = (torch.linalg.pinv(gram, rtol=rcond**2, hermitian=True) @ rhs)[..., 0]
        coefs.append(coef)
        intercepts.append(y_mean - (x_mean * coef).sum(dim=1))
    return torch.cat(coefs), torch.cat(intercepts)


def ranks(values: Tensor, descending: bool = False) -> Tensor:
    """Rank (0 = first) of every entry along the last dimension."""
    order = torch.argsort(values, dim=-1, descending=descending, stable=True)
    return torch.argsort(order, dim=-1, stable=True)


class BatchedSurrogate(Explainer):
    """The shared flow of the batched surrogates: features, design, one set of forward passes,
    one batched weighted fit, every position given its feature's coefficient. A subclass says
    which quantity it explains (`output`), how it draws the patterns (`design`) and how it
    weights and regularises the fit (`fit`)."""

    output_kind: str = "probability"  # "probability" (LIME) or "logit" (Captum's Kernel SHAP)

    def cost(self, modality, features):
        return float(self.params["n_samples"]), 0.0

    def design(self, task, counts: Tensor, seed: int) -> Tensor:
        raise NotImplementedError

    def fit(self, design: Tensor, y: Tensor, counts: Tensor) -> Tensor:
        raise NotImplementedError

    def attribute(self, model, task, inputs, targets, *, seed):
        groups, counts = feature_groups(task, inputs, self.params["segmentation"])
        design = self.design(task, counts, seed).to(inputs.device)
        substrate = "zero" if task.modality == "image" else "mask"
        y = evaluate(model, task, inputs, targets, groups, design, substrate=substrate,
                     output=self.output_kind, batch_size=self.batch_size)
        return spread(self.fit(design, y, counts), groups, task.feature_shape)
