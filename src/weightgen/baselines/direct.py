"""Conventional baselines: the target network trained directly, and a deep ensemble of copies
trained independently (implementation notes: Adam 1e-3 decaying ×0.9999 per step, batch 256,
weights truncated-normal with std 0.1, biases 0.1).

All copies train in one batched forward; each sees its own images, and since the loss is a sum
of per-copy losses and Adam acts elementwise, the copies are exactly independent.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from tqdm import tqdm

from ..checkpoint import load_latest, save_checkpoint
from ..data import MNIST, load_mnist, training_batch_indices
from ..errors import WeightgenError
from ..evaluate import ensemble_metrics, predict
from ..fileio import MetricsLog
from ..rng import seeded_generator
from ..targets import TargetSpec, forward


@dataclass(frozen=True)
class DirectConfig:
    copies: int = 1  # > 1: a deep ensemble
    steps: int = 4300  # about 20 epochs of 55,000 images at batch 256
    batch_size: int = 256
    lr: float = 1e-3
    lr_decay: float = 0.9999
    init_std: float = 0.1
    bias_init: float = 0.1

    def __post_init__(self) -> None:
        checks = {"direct.copies": self.copies >= 1, "direct.steps": self.steps >= 0,
                  "direct.batch_size": self.batch_size >= 1, "direct.lr": self.lr > 0,
                  "direct.lr_decay": 0 < self.lr_decay <= 1, "direct.init_std": self.init_std > 0}
        for key, ok in checks.items():
            if not ok:
                raise WeightgenError(f"config: {key} is out of range")


def init_filters(spec: TargetSpec, cfg: DirectConfig, seed: int) -> list[Tensor]:
    """Weights ~ truncated normal(0, std) within 2 std, biases = bias_init; (copies, out, n)."""
    g = seeded_generator(seed, "direct-init")
    filters = []
    for layer in spec.layers:
        weight = torch.empty(cfg.copies, layer.out_size, layer.fan_in)
        nn.init.trunc_normal_(weight, std=cfg.init_std, a=-2 * cfg.init_std, b=2 * cfg.init_std,
                              generator=g)
        bias = torch.full((cfg.copies, layer.out_size, 1), cfg.bias_init)
        filters.append(torch.cat([weight, bias], -1))
    return filters


def train_direct(config, run_dir: Path, device: torch.device, data: MNIST | None = None,
                 data_dir: str | None = None, progress: bool = True) -> dict[str, Any]:
    """Train (or resume) ``direct.copies`` target networks directly with Adam."""
    from ..train import descend

    cfg, tc = config.direct, config.train
    spec = config.target.build()
    data = data or load_mnist(data_dir)
    train, val = data.train.to(device), data.validation.to(device)
    params = [nn.Parameter(f.to(device)) for f in init_filters(spec, cfg, config.seed)]
    optimizer = torch.optim.Adam(params, lr=cfg.lr)
    step = 0
    checkpoint = load_latest(run_dir, map_location=device)
    if checkpoint is not None:
        with torch.no_grad():
            for p, saved in zip(params, checkpoint["filters"]):
                p.copy_(saved)
        optimizer.load_state_dict(checkpoint["optimizer"])
        step = int(checkpoint["step"])
    log = MetricsLog(run_dir / "metrics.jsonl")
    log.truncate_after(step)
    last: dict[str, Any] = {}
    for step in tqdm(range(step, cfg.steps), initial=step, total=cfg.steps, unit="step",
                     disable=not progress, desc=config.name):
        for group in optimizer.param_groups:
            group["lr"] = cfg.lr * cfg.lr_decay ** step
        idx = training_batch_indices(step, cfg.copies, cfg.batch_size, len(train),
                                     config.seed).to(device)
        logits = forward(spec, params, train.images[idx])  # (copies, batch, classes)
        # sum over copies of each copy's mean loss: independent trainings in one graph
        loss = F.cross_entropy(logits.flatten(0, 1), train.labels[idx].flatten(),
                               reduction="sum") / cfg.batch_size
        descend(optimizer, loss, step)
        done = step + 1
        if done % 50 == 0 or done == cfg.steps:
            log.write({"kind": "train", "step": done, "loss": loss.item() / cfg.copies})
        if done % tc.validate_every == 0 or done == cfg.steps:
            with torch.no_grad():
                last = {"kind": "validation", "step": done,
                        **ensemble_metrics(predict(spec, [p.detach() for p in params],
                                                   val.images), val.labels)}
            log.write(last)
        if done % tc.checkpoint_every == 0 or done == cfg.steps:
            save_checkpoint(run_dir, done, {"filters": [p.detach().cpu() for p in params],
                                            "optimizer": optimizer.state_dict(),
                                            "config": config.to_dict(),
                                            "target_spec": spec.to_dict()}, tc.keep_checkpoints)
    return last


def load_direct(run_dir: Path) -> tuple[Any, TargetSpec, list[Tensor], int]:
    """Config, spec, trained filter matrices [(copies, out, n)] and step of a direct run."""
    from ..train import latest_checkpoint

    checkpoint, config = latest_checkpoint(run_dir)
    return config, config.target.build(), list(checkpoint["filters"]), int(checkpoint["step"])

