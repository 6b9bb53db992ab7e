"""Infidelity (Yeh et al. 2019, "On the (In)fidelity and Sensitivity of Explanations",
arXiv:1901.09392), as `captum.metrics.infidelity` computes it:

    INFD = E_I [ (beta sum_i a_i I_i - (f(x) - f(x - I)))^2 ]

over `n_perturb_samples` perturbations I, with f the target-class output and beta the optimal
scale of the attributions (the paper's definition, `normalize=True`; beta = 1 with
`normalize=False`, the raw score, which prefers smaller maps: measured on 16 mnist_cnn saliency
maps, the raw score of the maps x 7 was 27x that of the maps, and an all-zero map beat them).
Lower is better: the attribution predicts, linearly, what the perturbation does to the output.

Perturbations. Images: Gaussian noise I ~ N(0, noise_std^2) on every pixel, the perturbation of
Captum's documented example (std 0.003). Text: token ids admit no small continuous change, so I is
Yeh et al.'s removal perturbation: each word is removed ([MASK]) independently with probability
`mask_prob`, I_i = 1 on the removed words, and sum_i a_i I_i is the attribution of the removed
words (the [CLS] and [PAD] positions are never perturbed).
"""

from __future__ import annotations

import torch
from torch import Tensor

from explainbench.metrics.base import MetricResult
from explainbench.metrics.removal import check_fraction, evaluate_removals, batched_output, target_output


def _image_perturbed_outputs(model, task, inputs, targets, noise, batch_size, output):
    """f(x - I) for noise (B, n, C, H, W), sample-major like Captum's repeat_interleave."""
    B, n = noise.shape[:2]
    out = torch.empty(B * n, device=inputs.device)
    flat_noise = noise.flatten(0, 1)
    samples = torch.arange(B, device=inputs.device).repeat_interleave(n)
    with torch.inference_mode():
        for start in range(0, B * n, max(1, batch_size)):
            rows = slice(start, min(B * n, start + batch_size))
            b = samples[rows]
            out[rows] = target_output(model, task, inputs[b] - flat_noise[rows], targets[b], output)
    return out.view(B, n)


def infidelity(model, task, inputs: Tensor, attributions: Tensor, targets: Tensor, *,
               n_perturb_samples: int = 10, noise_std: float = 0.003, mask_prob: float = 0.1,
               normalize: bool = True, output: str = "logit", batch_size: int = 256,
               generator: torch.Generator | None = None) -> MetricResult:
    """Infidelity as captum.metrics.infidelity (see the module docstring). `output`: the logit
    (default: the quantity the explainers attribute, as Captum with forward_func=model) or the
    probability of the target. `normalize` (default): rescale the attributions optimally first,
    beta = E[dot * drop] / E[dot^2] per sample (Yeh et al.'s definition, their reference code, and
    captum's normalize=True), so the score does not depend on the attributions' scale: a map
    multiplied by 7 scores the same, an all-zero map scores E[drop^2], the worst a map can do.
    normalize=False is captum's default, the raw MSE, which ranks maps by their scale.
    extras: attr_dot_perturbation and output_drop (B, n)."""
    n = int(n_perturb_samples)
    if n < 1:
        raise ValueError(f"n_perturb_samples must be >= 1, got {n_perturb_samples}")
    B = len(inputs)
    if task.modality == "image":
        # noise (B, n, *input shape) drawn on the CPU, then moved: same draws on every device
        noise = torch.randn((B, n, *inputs.shape[1:]), generator=generator) * float(noise_std)
        noise = noise.to(inputs.device, inputs.dtype)
        perturbed = _image_perturbed_outputs(model, task, inputs, targets, noise, batch_size, output)
        # pixels: the attribution map (B, 28, 28) lines up with the single-channel input
        dot = (attributions.reshape(B, 1, -1).double() * noise.reshape(B, n, -1).double()).sum(-1)
    else:
        p = check_fraction("mask_prob", mask_prob)
        valid = task.feature_mask(inputs)
        draws = torch.rand((B, n, *valid.shape[1:]), generator=generator).to(inputs.device)
        removed = (draws < p) & valid.unsqueeze(1)  # (B, n, L)
        flat = removed.flatten(0, 1)
        samples = torch.arange(B, device=inputs.device).repeat_interleave(n)
        perturbed = evaluate_removals(model, task, inputs, targets, samples, lambda rows, b: ~flat[rows],
                                      substrate="mask", fill=None, batch_size=batch_size,
                                      output=output).view(B, n)
        dot = (removed * attributions.unsqueeze(1).double()).sum(-1)
    drop = (batched_output(model, task, inputs, targets, batch_size=batch_size, output=output)
            .unsqueeze(1) - perturbed).double()
    if normalize:
        # Captum: beta = E[dot * drop] / E[dot^2] (0 where E[dot^2] = 0), then the MSE of beta*dot
        num, den = (dot * drop).sum(1, keepdim=True), (dot * dot).sum(1, keepdim=True)
        beta = torch.where(den == 0, torch.zeros_like(den), num / torch.where(den == 0, 1.0, den))
        dot = beta * dot
    scores = ((dot - drop) ** 2).mean(dim=1)
    return MetricResult(scores, None, {"attr_dot_perturbation": dot, "output_drop": drop})
