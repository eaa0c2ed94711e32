"""Directly trained target networks (one, or a deep ensemble of independent copies; model and
initialisation in :mod:`weightgen.models.direct`): a fixed set of networks."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..data import Split, training_batch_indices
from ..distributed import Context
from ..models.direct import DirectConfig, init_filters
from ..networks import GeneratedNetworks
from ..targets import forward
from .base import Method, StepResult


class DirectMethod(Method):
    name = "direct"
    label = "weightgen directly trained networks"
    section = "direct"
    settings = DirectConfig

    def __init__(self, config, device="cpu"):
        super().__init__(config, device)
        self.filters = nn.ParameterList(
            nn.Parameter(f.to(self.device))
            for f in init_filters(self.spec, config.direct, config.seed)
        )

    @property
    def module(self) -> nn.Module:
        return self.filters

    def passes_per_step(self) -> int:
        return self.config.direct.copies * self.config.direct.batch_size

    def training_step(
        self, step: int, model: nn.Module, train: Split | None, ctx: Context
    ) -> StepResult:
        """The sum over copies of each copy's mean cross-entropy on its own images: since
        Adam acts elementwise, the copies train exactly independently in one graph."""
        cfg = self.config.direct
        idx = training_batch_indices(
            step, cfg.copies, cfg.batch_size, len(train), self.config.seed
        ).to(self.device)
        logits = forward(
            self.spec, list(self.filters), train.images[idx]
        )  # (copies, batch, classes)
        loss = (
            F.cross_entropy(logits.flatten(0, 1), train.labels[idx].flatten(), reduction="sum")
            / cfg.batch_size
        )
        return StepResult(loss, loss, {"loss": loss.detach() / cfg.copies})

    def state(self) -> dict:
        return {"filters": [p.detach().cpu() for p in self.filters]}

    def load_state(self, payload: dict) -> None:
        with torch.no_grad():
            for p, saved in zip(self.filters, payload["filters"]):
                p.copy_(saved)

    @property
    def size(self) -> int:
        return self.config.direct.copies

    def draw(
        self,
        n: int,
        generator: torch.Generator | None,
        gauge: bool = True,
        batch_norm: str = "running",
    ) -> GeneratedNetworks:
        self.check_batch_norm(batch_norm)
        return self.fixed([p.detach() for p in self.filters], n, gauge)
