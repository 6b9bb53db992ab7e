"""Models a user brings: a builder (an untrained instance of the architecture) and a safetensors
checkpoint, checked against its declared SHA-256 like the zoo's own. A user model is never trained
or retrained here: a missing or changed checkpoint is an error.

    from explainbench import models

    models.register("my_cnn", task="mnist", builder=MyCNN, checkpoint="my_cnn.safetensors",
                    sha256="9f2c...")

A relative checkpoint path is taken from the folder of the builder's module, so a plugin package
can ship its weights beside its code. Installed packages can declare the registration module as an
entry point in the group `explainbench.models`.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch
from torch import nn

from explainbench.core import data, plugins
from explainbench.core.errors import BenchError, PluginError

TASKS = ("mnist", "imdb")


@dataclass(frozen=True)
class UserModelSpec:
    name: str
    task: str
    builder: Callable[[], nn.Module]
    checkpoint: Path
    sha256: str
    description: str = ""
    plugin: str = ""
    configs: dict = field(default_factory=dict)  # no training profiles: never trained here


USER_SPECS: dict[str, UserModelSpec] = {}


def register(name: str, *, task: str, builder: Callable[[], nn.Module], checkpoint: str | Path,
             sha256: str, description: str = "", reserved=()) -> UserModelSpec:
    """Add a user's model of an existing task; see the module docstring. `reserved`: the
    built-in models' names, which a user's model may not take."""
    plugin = plugins.label_for(builder)
    if not isinstance(name, str) or not name.isidentifier():
        raise PluginError(f"plugin {plugin}: model name must be an identifier, got {name!r}")
    if name in reserved:
        raise PluginError(f"plugin {plugin}: model name {name!r} is taken by the built-in model; "
                          "choose another name")
    if task not in TASKS:
        raise PluginError(f"plugin {plugin}: model {name!r} has task {task!r}; valid tasks: "
                          f"{', '.join(TASKS)}")
    if not callable(builder):
        raise PluginError(f"plugin {plugin}: the builder of model {name!r} is not callable")
    if not (isinstance(sha256, str) and len(sha256) == 64):
        raise PluginError(f"plugin {plugin}: model {name!r} needs the checkpoint's SHA-256 "
                          "(64 hex digits)")
    path = Path(checkpoint)
    if not path.is_absolute():
        try:
            path = Path(inspect.getfile(builder)).resolve().parent / path
        except TypeError:  # a builder without a source file: relative to the current folder
            path = Path.cwd() / path
    spec = UserModelSpec(name, task, builder, path, sha256.lower(), description, plugin)
    previous = USER_SPECS.get(name)
    if previous is not None and (previous.checkpoint, previous.sha256) != (path, spec.sha256):
        raise PluginError(f"plugin {plugin}: model {name!r} is already registered by plugin "
                          f"{previous.plugin}; choose another name")
    USER_SPECS[name] = spec
    return spec


def card(spec: UserModelSpec) -> dict:
    """The card of a user model whose checkpoint matches its declared digest."""
    if not spec.checkpoint.is_file():
        raise BenchError(f"model {spec.name}: checkpoint {spec.checkpoint} not found (user models "
                         "are never trained here)")
    actual = data.file_digest(spec.checkpoint)
    if actual != spec.sha256:
        raise BenchError(f"model {spec.name}: checkpoint {spec.checkpoint} has SHA-256 {actual}, "
                         f"expected {spec.sha256}; it is not loaded")
    return {"name": spec.name, "task": spec.task, "profile": "user", "description": spec.description,
            "checkpoint": str(spec.checkpoint), "checkpoint_sha256": actual,
            "identity_sha256": actual, "test_accuracy": None, "plugin": spec.plugin}


def load(spec: UserModelSpec, device: torch.device) -> nn.Module:
    from safetensors.torch import load_file

    model_card = card(spec)
    model = spec.builder()
    if not isinstance(model, nn.Module):
        raise PluginError(f"plugin {spec.plugin}: the builder of model {spec.name!r} returned "
                          f"{type(model).__name__}, not a torch.nn.Module")
    try:
        model.load_state_dict(load_file(str(spec.checkpoint)))
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[0]
        raise BenchError(f"model {spec.name}: checkpoint does not fit its builder's "
                         f"architecture ({first})") from None
    model.eval().requires_grad_(False)
    model.card = model_card
    model.name = spec.name
    return model.to(device)
