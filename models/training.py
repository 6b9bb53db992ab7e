"""Deterministic training: one seed fixes initialisation, shuffling, dropout and token masking."""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class TrainConfig:
    epochs: float = 1.0  # fractional epochs stop part-way through the last one
    batch_size: int = 128
    lr: float = 1e-3
    weight_decay: float = 0.0
    seed: int = 0
    max_train: int | None = None  # a stratified prefix of the train split (short profiles)
    max_test: int | None = None  # a stratified prefix of the test split for the accuracy
    token_dropout: float = 0.0  # text: share of word tokens replaced by [MASK] while training
    eval_batch_size: int = 512

    def to_dict(self) -> dict:
        return asdict(self)


def _progress():
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    return Progress(
        "[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
        TimeRemainingColumn(), "{task.fields[status]}", transient=True,
    )


def train_classifier(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    config: TrainConfig,
    *,
    description: str,
    mask_id: int | None = None,
    pad_id: int | None = None,
    cls_id: int | None = None,
) -> float:
    """Adam(W) with a linear warm-up and decay; returns the wall time in seconds."""
    generator = torch.Generator().manual_seed(config.seed)
    torch.manual_seed(config.seed)  # dropout draws from the global generator
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    steps_per_epoch = math.ceil(len(x) / config.batch_size)
    total = max(1, int(round(config.epochs * steps_per_epoch)))
    warmup = max(1, total // 20)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min((s + 1) / warmup, max(0.0, (total - s) / max(1, total - warmup)))
    )
    loss_fn = nn.CrossEntropyLoss()
    model.train()
    start, step, running = time.perf_counter(), 0, float("nan")
    with _progress() as progress:
        bar = progress.add_task(f"training {description}", total=total, status="")
        while step < total:
            order = torch.randperm(len(x), generator=generator)
            for i in range(0, len(x), config.batch_size):
                if step >= total:
                    break
                idx = order[i : i + config.batch_size]
                xb, yb = x[idx], y[idx]
                if config.token_dropout > 0:
                    xb = _mask_tokens(xb, config.token_dropout, generator, mask_id, pad_id, cls_id)
                loss = loss_fn(model(xb), yb)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                schedule.step()
                step += 1
                running = loss.item() if math.isnan(running) else 0.95 * running + 0.05 * loss.item()
                progress.update(bar, advance=1, status=f"loss {running:.3f}")
    model.eval()
    return time.perf_counter() - start


def _mask_tokens(ids, p, generator, mask_id, pad_id, cls_id):
    """Word dropout to [MASK]: the model learns what a masked word means, so the `mask`
    substrate of the removal metrics is an input it has seen rather than an untrained embedding."""
    hit = torch.rand(ids.shape, generator=generator) < p
    hit &= (ids != pad_id) & (ids != cls_id)
    return torch.where(hit, torch.full_like(ids, mask_id), ids)


@torch.no_grad()
def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 512) -> float:
    model.eval()
    correct = 0
    for i in range(0, len(x), batch_size):
        correct += (model(x[i : i + batch_size]).argmax(1) == y[i : i + batch_size]).sum().item()
    return correct / len(x)
