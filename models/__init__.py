"""The model zoo: architectures, deterministic training, cached checkpoints, and users' models.

    from explainbench import models
    model = models.load("mnist_cnn", device="cpu")   # trained on first use, then cached
    logits = model(images)                            # (B, 10)

    models.register("my_cnn", task="mnist", builder=MyCNN, checkpoint="my_cnn.safetensors",
                    sha256="...")                     # a user's model: verified, never trained
"""

from explainbench.models import user
from explainbench.models.zoo import (PROFILES, card, load, model_dir, names, register,
                                     resolve_device, spec, task_of, train,
                                     training_forecast)

__all__ = ["PROFILES", "card", "load", "model_dir", "names", "register",
           "resolve_device", "spec", "task_of", "train", "training_forecast", "user"]
