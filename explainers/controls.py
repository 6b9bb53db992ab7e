"""Control explainers: baselines any real explanation method should beat.

`random` ignores model and input; `edge` looks at the input only. A metric that cannot separate
them from the real methods is not measuring faithfulness to the model (Adebayo et al. 2018,
arXiv:1810.03292, showed that some saliency maps are hard to tell from an edge detector).
"""

from __future__ import annotations

import torch
from torch import nn

from explainbench.explainers.base import Explainer, sample_generator


class RandomAttribution(Explainer):
    """Uniform noise in [0, 1) per feature, from each sample's own CPU generator (seeded with the
    cell's seed and the sample's id)."""

    name = "random"
    stochastic = True
    reference = "control"

    def cost(self, modality, features):
        return 0.0, 0.0

    def attribute(self, model, task, inputs, targets, *, seed, sample_ids):
        rows = [torch.rand(task.feature_shape, generator=sample_generator(seed, key))
                for key in sample_ids]
        return torch.stack(rows).to(inputs.device)


SOBEL_X = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]])


class EdgeDetector(Explainer):
    """Sobel gradient magnitude of the input image, sqrt(Gx^2 + Gy^2), with replicated borders so
    the frame of the image is not an edge. Independent of the model."""

    name = "edge"
    modalities = frozenset({"image"})
    reference = "control (Sobel; Adebayo et al. 2018)"

    def cost(self, modality, features):
        return 0.0, 0.0

    def attribute(self, model, task, inputs, targets, *, seed):
        kernels = torch.stack([SOBEL_X, SOBEL_X.T]).unsqueeze(1).to(inputs)  # (2, 1, 3, 3)
        padded = nn.functional.pad(inputs, (1, 1, 1, 1), mode="replicate")
        gradients = nn.functional.conv2d(padded, kernels)  # (B, 2, H, W)
        return gradients.pow(2).sum(dim=1).sqrt()
