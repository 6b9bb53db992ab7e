"""The model zoo: specs, deterministic training, and the checkpoint cache with model cards.

A model is identified by its name and training profile: `full` (the benchmark's models, with the
accuracy targets) or `ci` (short training on a stratified part of the data, for tests). The cache
folder of a model is keyed by a hash of everything that determines its weights (architecture,
training config, seed, data digests, tokenizer digest), so a change to any of them trains a new
model instead of loading a stale one. Checkpoints are safetensors; the card is JSON.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import platform
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import torch
from torch import nn

from explainbench.core import data, paths
from explainbench.core.errors import BenchError, PluginError, UnknownNameError
from explainbench.core.tasks import dataset_tensors
from explainbench.models import user
from explainbench.models.training import TrainConfig, accuracy, train_classifier

PROFILES = ("full", "ci")


@dataclass(frozen=True)
class ModelSpec:
    name: str
    task: str  # "mnist" or "imdb"
    architecture: str  # class name in models.architectures
    arch_kwargs: dict = field(default_factory=dict)
    configs: dict[str, TrainConfig] = field(default_factory=dict)  # per profile
    min_accuracy: float = 0.0  # the target for the full profile
    description: str = ""
    # the published model this one reproduces (source, its test accuracy): written on the card
    # beside ours, never part of the identity (it changes no weight)
    reference: dict | None = None


BUILTIN_SPECS: dict[str, ModelSpec] = {
    s.name: s
    for s in [
        ModelSpec(
            "mnist_cnn", "mnist", "MnistCNN",
            configs={
                "full": TrainConfig(epochs=3, batch_size=128, lr=2e-3),
                "ci": TrainConfig(epochs=1, batch_size=64, lr=2e-3, max_train=6000, max_test=2000),
            },
            min_accuracy=0.99,
            description="2-conv CNN (32/64 channels, 128 hidden), raw pixels in [0, 1]",
        ),
        ModelSpec(
            "mnist_logreg", "mnist", "MnistLogReg",
            configs={
                "full": TrainConfig(epochs=10, batch_size=128, lr=2e-3),
                "ci": TrainConfig(epochs=1, batch_size=64, lr=2e-3, max_train=6000, max_test=2000),
            },
            min_accuracy=0.91,
            description="multinomial logistic regression on raw pixels (closed-form reference)",
        ),
        ModelSpec(
            "imdb_transformer", "imdb", "TransformerClassifier",
            arch_kwargs=dict(hidden=128, layers=2, heads=2, intermediate=512),
            configs={
                "full": TrainConfig(epochs=1, batch_size=32, lr=1e-3, weight_decay=0.01,
                                    token_dropout=0.1, eval_batch_size=32),
                "ci": TrainConfig(epochs=1, batch_size=32, lr=3e-3, weight_decay=0.01,
                                  token_dropout=0.1, max_train=3000, max_test=500),
            },
            min_accuracy=0.85,
            description="2-layer, 128-wide BERT-style encoder from a config, eager attention",
        ),
        ModelSpec(
            "imdb_lstm", "imdb", "LSTMClassifier",
            arch_kwargs=dict(embed_dim=128, hidden=128),
            configs={
                "full": TrainConfig(epochs=1, batch_size=32, lr=2e-3, token_dropout=0.1,
                                    eval_batch_size=256),
                "ci": TrainConfig(epochs=1, batch_size=32, lr=3e-3, token_dropout=0.1,
                                  max_train=3000, max_test=500),
            },
            min_accuracy=0.85,
            description="bidirectional LSTM (128 units per direction) on the same tokenizer",
        ),
        ModelSpec(
            "imdb_bilstm_attention", "imdb", "LSTMAttentionClassifier",
            arch_kwargs=dict(embed_dim=300, hidden=128),
            configs={
                "full": TrainConfig(epochs=2, batch_size=32, lr=2e-3, token_dropout=0.1,
                                    eval_batch_size=256),
                "ci": TrainConfig(epochs=1, batch_size=32, lr=3e-3, token_dropout=0.1,
                                  max_train=3000, max_test=500),
            },
            min_accuracy=0.85,
            description=("Jain & Wallace 2019's BiLSTM (128 units per direction) with additive "
                         "tanh attention; its 300-wide embedding is trained from scratch here "
                         "(theirs starts from pretrained vectors, not downloadable here), rows "
                         "padded not packed, two logits instead of one"),
            reference={"source": "Jain & Wallace 2019, github.com/successar/AttentionExplanation "
                                 "graph_outputs/evaluate/imdb+lstm+tanh.json",
                       "test_accuracy": 0.8981, "test_samples": 4356,
                       "note": "their IMDB test split (reviews their preprocessing kept), "
                               "pretrained embeddings"},
        ),
    ]
}


_entry_points_loaded = False


def all_specs() -> dict:
    """The built-in specs and the users' (explainbench.models.user); the installed plugins of the
    entry-point group `explainbench.models` are imported on first use."""
    global _entry_points_loaded
    if not _entry_points_loaded:
        _entry_points_loaded = True
        from explainbench.core import plugins

        for ep, _ in plugins.entry_point_objects("explainbench.models"):
            if ep.name not in user.USER_SPECS:
                raise PluginError(f"plugin entry point {ep.name} = {ep.value}: importing it "
                                  f"registered no model named {ep.name!r}; call "
                                  f"explainbench.models.register({ep.name!r}, ...) in it")
    return {**BUILTIN_SPECS, **user.USER_SPECS}


def register(name: str, *, task: str, builder, checkpoint, sha256: str,
             description: str = "") -> user.UserModelSpec:
    """Add a user's model: a builder and a safetensors checkpoint with its SHA-256, checked every
    time it is loaded, never trained (see explainbench.models.user)."""
    return user.register(name, task=task, builder=builder, checkpoint=checkpoint, sha256=sha256,
                         description=description, reserved=BUILTIN_SPECS)


def names() -> list[str]:
    return sorted(all_specs())


def spec(name: str) -> ModelSpec | user.UserModelSpec:
    specs = all_specs()
    if name not in specs:
        raise UnknownNameError("model", name, list(specs))
    return specs[name]


def is_user_model(name: str) -> bool:
    return name not in BUILTIN_SPECS and name in all_specs()


def task_of(name: str):
    """The task (`explainbench.core.tasks`) a model is trained and explained on."""
    from explainbench.core import tasks

    return tasks.get(spec(name).task)


def default_profile() -> str:
    profile = os.environ.get("BENCH_TRAIN_PROFILE", "full")
    if profile not in PROFILES:
        raise UnknownNameError("training profile (BENCH_TRAIN_PROFILE)", profile, list(PROFILES))
    return profile


# ----------------------------------------------------------------------------- building and data


def build(name: str) -> nn.Module:
    """An untrained instance of the architecture (deterministic given torch's global seed)."""
    from explainbench.models import architectures

    s = spec(name)
    if is_user_model(name):
        return s.builder()
    cls = getattr(architectures, s.architecture)
    if s.task == "imdb":
        from explainbench.core.tokenizer import load_tokenizer

        tok = load_tokenizer()
        kwargs = dict(vocab_size=tok.vocab_size, pad_id=tok.pad_id, **s.arch_kwargs)
        if s.architecture == "TransformerClassifier":
            kwargs["max_len"] = tok.max_len
        return cls(**kwargs)
    return cls(**s.arch_kwargs)


def _data_digests(task: str) -> dict[str, str]:
    prefix = "mnist/" if task == "mnist" else "imdb/"
    return {k: f.sha256 for k, f in data.FILES.items() if k.startswith(prefix)}


def _identity(name: str, profile: str) -> dict:
    s = spec(name)
    ident = {
        "name": name,
        "profile": profile,
        "architecture": s.architecture,
        "arch_kwargs": s.arch_kwargs,
        "train_config": s.configs[profile].to_dict(),
        "data_sha256": _data_digests(s.task),
        "format": 1,
    }
    if s.task == "imdb":
        from explainbench.core.tokenizer import load_tokenizer

        ident["tokenizer_sha256"] = load_tokenizer().sha256
    return ident


def _digest(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()


# ----------------------------------------------------------------------------- the cache


def model_dir(name: str, profile: str | None = None) -> Path:
    profile = profile or default_profile()
    ident = _identity(name, profile)
    return paths.cache_dir() / "models" / name / f"{profile}-{_digest(ident)[:12]}"


@contextlib.contextmanager
def _locked(path: Path):
    """One trainer per model folder: a second process waits, then finds the checkpoint."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(path.name + ".lock"), "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _valid_card(folder: Path, announce: bool = False) -> dict | None:
    """The card of an intact cached checkpoint, else None; with `announce`, a damaged one (which
    the caller is about to train again) is one line on stderr."""
    card_path, ckpt = folder / "card.json", folder / "model.safetensors"
    if not (card_path.is_file() and ckpt.is_file()):
        return None
    try:
        card = json.loads(card_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        return _damaged(folder, f"its card.json is unreadable ({type(exc).__name__})", announce)
    if not isinstance(card, dict):
        return _damaged(folder, "its card.json is not a JSON object", announce)
    if data.file_digest(ckpt) != card.get("checkpoint_sha256"):
        # corrupted or tampered with: retrain, never load
        return _damaged(folder, "its checkpoint does not match the card's checksum", announce)
    return card


def _damaged(folder: Path, why: str, announce: bool) -> None:
    if announce:  # the caller retrains under the folder's lock, replacing both files
        print(f"cached model {folder.parent.name} ({folder.name}): {why}; training it again",
              file=sys.stderr)
    return None


# Seconds to train each built-in model's `full` profile on the reference machine (2 CPU cores,
# alone; the cards' training_wall_time_s): what `bench run` and `bench plan` announce before
# training a model that is not cached yet.
REFERENCE_TRAINING_S = {"mnist_cnn": 44.0, "mnist_logreg": 2.3, "imdb_transformer": 248.0,
                        "imdb_lstm": 83.0,  # the four measured alone on a fresh clone, 2026-12-05
                        "imdb_bilstm_attention": 1230.0}  # with other jobs on the cores


def untrained(names, profile: str | None = None) -> list[str]:
    """The built-in models among `names` with no intact cached checkpoint (to be trained first)."""
    return sorted(n for n in set(names) if not is_user_model(n) and card(n, profile) is None)


def training_forecast(names, profile: str | None = None) -> tuple[list[str], float | None]:
    """(the models among `names` to train first, their reference seconds in all; None where a
    profile other than `full` or a model without a reference time makes it unknown)."""
    missing = untrained(names, profile)
    known = [REFERENCE_TRAINING_S.get(n) for n in missing]
    if (profile or default_profile()) != "full" or None in known:
        return missing, None
    return missing, float(sum(known))


def card(name: str, profile: str | None = None) -> dict | None:
    """The model card of a cached, intact checkpoint, or None."""
    if is_user_model(name):
        try:
            return user.card(spec(name))
        except BenchError:
            return None
    return _valid_card(model_dir(name, profile))


def train(name: str, profile: str | None = None, *, force: bool = False) -> dict:
    """Train `name` unless an intact checkpoint is cached; returns its model card. A user's model
    is never trained: its checkpoint is verified and its card returned."""
    if is_user_model(name):
        return user.card(spec(name))
    profile = profile or default_profile()
    folder = model_dir(name, profile)
    with _locked(folder):
        if not force and (existing := _valid_card(folder, announce=True)) is not None:
            return existing
        return _train_and_save(name, profile, folder)


def _train_and_save(name: str, profile: str, folder: Path) -> dict:
    from safetensors.torch import save_file

    s = spec(name)
    config = s.configs[profile]
    torch.manual_seed(config.seed)
    model = build(name)
    x, y = dataset_tensors(s.task, "train", config.max_train)
    extra = {}
    if s.task == "imdb":
        from explainbench.core.tokenizer import load_tokenizer

        tok = load_tokenizer()
        extra = dict(mask_id=tok.mask_id, pad_id=tok.pad_id, cls_id=tok.cls_id)
    wall = train_classifier(model, x, y, config, description=name, **extra)
    x_test, y_test = dataset_tensors(s.task, "test", config.max_test)
    eval_start = time.perf_counter()
    acc = accuracy(model, x_test, y_test, config.eval_batch_size)
    eval_wall = time.perf_counter() - eval_start

    folder.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    tmp = folder / "model.safetensors.tmp"
    save_file(state, str(tmp))
    tmp.replace(folder / "model.safetensors")
    ident = _identity(name, profile)
    card = {
        **ident,
        "description": s.description,
        "task": s.task,
        "parameters": sum(p.numel() for p in model.parameters()),
        "test_accuracy": acc,
        "test_samples": len(y_test),
        "accuracy_target": s.min_accuracy if profile == "full" else None,
        **({"reference": s.reference} if s.reference else {}),
        "meets_target": bool(acc >= s.min_accuracy) if profile == "full" else None,
        "train_samples": len(y),
        "training_wall_time_s": round(wall, 2),
        "evaluation_wall_time_s": round(eval_wall, 2),
        "torch_threads": torch.get_num_threads(),
        "machine": platform.machine(),
        "packages": _package_versions(),
        "identity_sha256": _digest(ident),
        "checkpoint_sha256": data.file_digest(folder / "model.safetensors"),
        "created_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    tmp = folder / "card.json.tmp"
    tmp.write_text(json.dumps(card, indent=2, sort_keys=True))
    tmp.replace(folder / "card.json")
    return card


def _package_versions() -> dict[str, str]:
    from importlib import metadata

    out = {"python": platform.python_version()}
    for pkg in ("torch", "transformers", "tokenizers", "numpy"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            pass
    return out


def load(name: str, device: str | torch.device = "cpu", profile: str | None = None) -> nn.Module:
    """The trained model in eval mode on `device` (trained first if needed). Its card is
    attached as `model.card`; its forward returns logits (B, classes)."""
    from safetensors.torch import load_file

    if is_user_model(name):
        return user.load(spec(name), resolve_device(device))
    card = train(name, profile)
    folder = model_dir(name, profile)
    model = build(name)
    state = load_file(str(folder / "model.safetensors"))
    missing, unexpected = model.load_state_dict(state, strict=False)
    # BERT ties nothing here, but transformers may list non-persistent buffers as missing.
    real_missing = [k for k in missing if not k.endswith("position_ids")]
    if real_missing or unexpected:
        raise BenchError(f"checkpoint of {name} does not fit its architecture: "
                         f"missing {real_missing}, unexpected {unexpected}")
    model.eval().requires_grad_(False)
    model.card = card
    model.name = name
    return model.to(resolve_device(device))


def resolve_device(device: str | torch.device) -> torch.device:
    if isinstance(device, torch.device):
        return device
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device not in ("cpu", "cuda") and not device.startswith("cuda:"):
        raise UnknownNameError("device", device, ["auto", "cpu", "cuda"])
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise BenchError(f"device {device!r} requested but CUDA is not available; use --device cpu")
    return torch.device(device)
