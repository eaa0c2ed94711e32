"""Conventional baselines: the target network trained directly, and a deep ensemble of copies
trained independently (implementation notes: Adam 1e-3 decaying ×0.9999 per step, batch 256,
weights truncated-normal with std 0.1, biases 0.1).

All copies train in one batched forward; each sees its own images, and since the loss is a sum
of per-copy losses and Adam acts elementwise, the copies are exactly independent.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from ..errors import check_value
from ..rng import seeded_generator
from ..targets import TargetSpec


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
        check_value("direct.copies", self.copies, ">= 1")
        check_value("direct.steps", self.steps, ">= 0")
        check_value("direct.batch_size", self.batch_size, ">= 1")
        check_value("direct.lr", self.lr, "> 0")
        check_value("direct.lr_decay", self.lr_decay, "in (0, 1]")
        check_value("direct.init_std", self.init_std, "> 0")


def init_filters(spec: TargetSpec, cfg: DirectConfig, seed: int) -> list[Tensor]:
    """Weights ~ truncated normal(0, std) within 2 std, biases = bias_init; (copies, out, n)."""
    g = seeded_generator(seed, "direct-init")
    filters = []
    for layer in spec.layers:
        weight = torch.empty(cfg.copies, layer.out_size, layer.fan_in)
        nn.init.trunc_normal_(
            weight, std=cfg.init_std, a=-2 * cfg.init_std, b=2 * cfg.init_std, generator=g
        )
        bias = torch.full((cfg.copies, layer.out_size, 1), cfg.bias_init)
        filters.append(torch.cat([weight, bias], -1))
    return filters
