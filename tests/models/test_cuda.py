"""The CUDA path: what a GPU computes agrees with the CPU. The tests marked `cuda` skip without a
CUDA device; the prepared GPU check (scripts/gpu_check.py) runs them first on a GPU machine
(`pytest -m cuda`). The LSTM's mode switch for cuDNN is also checked on the CPU, where it must
change nothing."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from explainbench import explainers, models
from explainbench.bench.run.forecast import calibration_inputs
from explainbench.models.architectures import run_lstm


@pytest.fixture
def cuda():
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA device")


def _model(name: str, device: str):
    torch.manual_seed(0)  # the same untrained weights on both devices
    return models.zoo.build(name).eval().to(device)


def _inputs(name: str, rows: int):
    return calibration_inputs(models.task_of(name), rows, "cpu")


def test_the_lstm_runs_in_eval_mode_as_before_on_the_cpu():
    model = _model("imdb_lstm", "cpu")
    embeds = model.embedding_layer(_inputs("imdb_lstm", 3)).detach().requires_grad_()
    out = run_lstm(model.lstm, embeds)
    assert torch.equal(out, model.lstm(embeds)[0]) and not model.lstm.training
    out.sum().backward()
    assert embeds.grad is not None and not model.training


@pytest.mark.cuda
@pytest.mark.parametrize("name", ["imdb_lstm", "imdb_bilstm_attention"])
def test_lstm_gradients_on_cuda_run_on_cudnn_and_match_the_cpu(cuda, name):
    ids = _inputs(name, 4)
    grads = {}
    for device in ("cpu", "cuda"):
        model = _model(name, device)
        embeds = model.embedding_layer(ids.to(device)).detach().requires_grad_()
        model.forward_embeds(embeds, model.attention_mask(ids.to(device)))[:, 1].sum().backward()
        grads[device] = embeds.grad.cpu()
        assert not model.training and not model.lstm.training  # eval mode restored
    assert torch.allclose(grads["cuda"], grads["cpu"], rtol=1e-3, atol=1e-5)


@pytest.mark.cuda
@pytest.mark.parametrize("model_name", ["mnist_cnn", "imdb_transformer", "imdb_lstm"])
@pytest.mark.parametrize("explainer", ["saliency", "integrated_gradients", "lime_batched", "rise"])
def test_explanations_on_cuda_match_the_cpu(cuda, model_name, explainer):
    if explainer == "rise" and not model_name.startswith("mnist"):
        pytest.skip("RISE explains images")
    x = _inputs(model_name, 3)
    task = models.task_of(model_name)
    maps = {}
    for device in ("cpu", "cuda"):
        model = _model(model_name, device)
        targets = task.forward(model, x.to(device)).argmax(1)
        found = explainers.get(explainer, batch_size=64).explain(
            model, task, x.to(device), targets, seed=0, sample_ids=np.arange(3))
        assert found.device.type == device
        maps[device] = found.cpu()
    # the same seeded draws on both devices (drawn on the CPU); float32 kernels round differently
    if explainer in ("lime_batched", "rise"):
        # a regression (or average) over outputs that an untrained model barely varies: rounding
        # of 1e-7 in a probability can move a small coefficient by 1e-2 of the largest, so the
        # maps are compared as directions
        cosine = torch.nn.functional.cosine_similarity(maps["cuda"].flatten(1).double(),
                                                       maps["cpu"].flatten(1).double())
        assert cosine.min() > 0.999
    else:
        scale = maps["cpu"].abs().max().clamp(min=1e-12)
        assert (maps["cuda"] - maps["cpu"]).abs().max() / scale < 1e-3
