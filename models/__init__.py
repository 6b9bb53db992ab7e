"""The model zoo: architectures, the word-level tokenizer, deterministic training, cached checkpoints.

    import models
    model = models.load("mnist_cnn", device="cpu")   # trained on first use, then cached
    logits = model(images)                            # (B, 10)
"""

from models.zoo import PROFILES, SPECS, card, load, model_dir, names, resolve_device, spec, train

__all__ = ["PROFILES", "SPECS", "card", "load", "model_dir", "names", "resolve_device", "spec", "train"]
