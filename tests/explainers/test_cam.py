"""Grad-CAM and Grad-CAM++ against closed forms on a global-average-pooling network.

With y_c = sum_k W[c, k] mean_ij A_k^ij (a convolution, ReLU, global average pooling and a
linear layer), d y_c / d A_k^ij = W[c, k] / (h w) everywhere, so:
- Grad-CAM's weights are W[c, k] / (h w): the map is CAM (Zhou et al. 2016) divided by h w;
- Grad-CAM++'s alphas are 1 / (2 + g_k sum_ab A_k^ab) with g_k = W[c, k] / (h w) (eq. 19 with
  constant gradients), so w_k = h w ReLU(g_k) / (2 + g_k sum A_k).
The maps are 28x28 already, so the upsampling is the identity.
"""

from __future__ import annotations

from collections import OrderedDict

import pytest
import torch
from torch import nn

from explainbench import explainers


class GapNet(nn.Sequential):
    gradcam_layer = "relu"

    def __init__(self):
        torch.manual_seed(0)
        super().__init__(OrderedDict(
            conv=nn.Conv2d(1, 6, 3, padding=1), relu=nn.ReLU(), pool=nn.AdaptiveAvgPool2d(1),
            flatten=nn.Flatten(), fc=nn.Linear(6, 10)))


@pytest.fixture
def gap_net():
    return GapNet().eval()


def _activations(model, x):
    with torch.no_grad():
        return model.relu(model.conv(x))  # (B, K, 28, 28)


def test_grad_cam_is_cam_on_a_gap_network(gap_net, images, image_task):
    targets = torch.arange(8) % 10
    out = explainers.get("grad_cam").explain(gap_net, image_task, images, targets)
    A = _activations(gap_net, images)
    w = gap_net.fc.weight.detach()[targets]  # (B, K)
    expected = torch.relu((w[:, :, None, None] * A).sum(1)) / (28 * 28)
    assert torch.allclose(out, expected, atol=1e-6 * float(expected.abs().max()))


def test_grad_cam_pp_matches_the_papers_weights_for_constant_gradients(gap_net, images, image_task):
    targets = torch.arange(8) % 10
    out = explainers.get("grad_cam_pp").explain(gap_net, image_task, images, targets)
    A = _activations(gap_net, images).double()
    g = gap_net.fc.weight.detach().double()[targets] / (28 * 28)  # (B, K)
    weights = 28 * 28 * torch.relu(g) / (2 + g * A.sum(dim=(2, 3)))
    expected = torch.relu((weights[:, :, None, None] * A).sum(1)).float()
    assert torch.allclose(out, expected, rtol=1e-4, atol=1e-6 * float(expected.abs().max()))


def test_grad_cam_pp_alpha_is_zero_where_the_gradient_is(images):
    from explainbench.explainers.cam import grad_cam_pp_maps

    A = torch.rand(2, 3, 5, 5)
    dS = torch.zeros(2, 3, 5, 5)
    assert torch.equal(grad_cam_pp_maps(A, dS), torch.zeros(2, 1, 5, 5))


def test_cams_refuse_models_without_a_conv_layer(logreg, image_task):
    for name in ("grad_cam", "grad_cam_pp"):
        assert "convolutional layer" in explainers.get(name).supports(logreg, image_task)


def test_cams_read_the_rectified_maps_of_the_last_convolution(tiny_cnn):
    from explainbench.explainers.cam import cam_layer

    assert cam_layer(tiny_cnn) is tiny_cnn.relu2  # the ReLU after gradcam_layer = "conv2"


def test_cams_on_the_trained_cnn_are_never_blank(ci_model):
    """On the pre-ReLU conv2 output a quarter of the maps were all zero (see explainers.cam)."""
    from explainbench.core import slices, tasks

    model, task = ci_model("mnist_cnn"), tasks.get("mnist")
    x = task.inputs(slices.load(slices.named("mnist-test", size=32)))
    for name in ("grad_cam", "grad_cam_pp"):
        maps = explainers.get(name).explain(model, task, x)
        assert (maps.flatten(1).amax(1) > 0).all(), name
