"""Shared fixtures: tiny seeded models of the real architectures, synthetic inputs, and access to
the real data with short-profile (`ci`) models for integration tests.

The whole test session runs with BENCH_TRAIN_PROFILE=ci and its own BENCH_CACHE_DIR (a temporary
folder, or BENCH_TEST_CACHE_DIR to keep trained ci models between local runs), so tests never
touch or depend on the user's cache.
"""

from __future__ import annotations

import os
import tempfile

import pytest
import torch

SENTENCES = [
    "a wonderful film with a great cast and a moving story",
    "the plot was dull and the acting was terrible",
    "i loved every minute of it , truly great",
    "boring , predictable and far too long",
    "an average movie with some good moments",
    "the worst film i have seen this year",
    "brilliant direction , superb music , great acting",
    "not good , not bad , just forgettable",
]


def pytest_configure(config):
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["BENCH_TRAIN_PROFILE"] = "ci"
    cache = os.environ.get("BENCH_TEST_CACHE_DIR") or tempfile.mkdtemp(prefix="bench-test-cache-")
    os.environ["BENCH_CACHE_DIR"] = cache
    # each task's fixed forward batch: tests compare runs with each other and with golden files,
    # which a batch measured on the machine of the day would make machine-dependent (the tuning's
    # own tests switch it on)
    os.environ["BENCH_TUNE_BATCH"] = "0"
    torch.set_num_threads(min(2, torch.get_num_threads()))


# ----------------------------------------------------------------------------- real data


def _data_available() -> bool:
    from explainbench.core import data, paths

    for relpath in data.FILES:
        if not any((d / relpath).is_file() for d in paths.data_dirs()):
            return False
    return True


@pytest.fixture(scope="session")
def real_data():
    """Skips (with the reason) when the real data is not in BENCH_DATA_DIR; CI always has it."""
    if not _data_available():
        pytest.skip("real MNIST/IMDB files not found: set BENCH_DATA_DIR (e.g. ../shared/data)")


@pytest.fixture(scope="session")
def ci_model(real_data):
    """Loads a model of the short `ci` training profile (trained once per test cache)."""
    from explainbench import models

    loaded = {}

    def load(name: str):
        if name not in loaded:
            loaded[name] = models.load(name, device="cpu", profile="ci")
        return loaded[name]

    return load


# ----------------------------------------------------------------------------- synthetic, tiny


@pytest.fixture(scope="session")
def image_task():
    from explainbench.core.tasks import ImageTask

    return ImageTask()


@pytest.fixture
def images():
    """Eight synthetic 'digits': a bright stroke on a dark background plus a little noise."""
    g = torch.Generator().manual_seed(0)
    x = 0.1 * torch.rand(8, 1, 28, 28, generator=g)
    for i in range(8):
        x[i, 0, 6 + i : 22, 10 + (i % 4) : 14 + (i % 4)] = 0.9
    return x


@pytest.fixture
def tiny_cnn():
    """The real MnistCNN architecture with seeded random weights (no training)."""
    from explainbench.models.architectures import MnistCNN

    torch.manual_seed(0)
    return MnistCNN().eval()


@pytest.fixture
def logreg():
    """MnistLogReg with seeded weights scaled so that the softmax is not flat."""
    from explainbench.models.architectures import MnistLogReg

    torch.manual_seed(0)
    model = MnistLogReg().eval()
    with torch.no_grad():
        model.linear.weight.mul_(20.0)
    return model


@pytest.fixture(scope="session")
def tiny_tokenizer():
    from explainbench.core.tokenizer import WordTokenizer, train_tokenizer

    backend = train_tokenizer(SENTENCES * 2, vocab_size=200)
    return WordTokenizer(backend, sha256="tiny", max_len=24)


@pytest.fixture(scope="session")
def text_task(tiny_tokenizer):
    from explainbench.core.tasks import TextTask

    return TextTask(tokenizer=tiny_tokenizer)


@pytest.fixture
def text_inputs(tiny_tokenizer):
    """Token ids (8, 24) of sentences of different lengths, so every row has some padding."""
    return tiny_tokenizer.encode(SENTENCES)


@pytest.fixture
def tiny_transformer(tiny_tokenizer):
    from explainbench.models.architectures import TransformerClassifier

    torch.manual_seed(0)
    return TransformerClassifier(tiny_tokenizer.vocab_size, tiny_tokenizer.max_len,
                                 tiny_tokenizer.pad_id, hidden=16, layers=1, heads=2,
                                 intermediate=32).eval()


@pytest.fixture
def tiny_lstm(tiny_tokenizer):
    from explainbench.models.architectures import LSTMClassifier

    torch.manual_seed(0)
    return LSTMClassifier(tiny_tokenizer.vocab_size, tiny_tokenizer.pad_id, embed_dim=16,
                          hidden=8).eval()


@pytest.fixture
def tiny_attention_lstm(tiny_tokenizer):
    """Jain & Wallace's architecture, small and untrained (random weights give uneven attention),
    in float64 so that finite differences can check its gradients."""
    from explainbench.models.architectures import LSTMAttentionClassifier

    torch.manual_seed(0)
    return LSTMAttentionClassifier(tiny_tokenizer.vocab_size, tiny_tokenizer.pad_id, embed_dim=16,
                                   hidden=8).double().eval()
