"""MNFG, the paper's baseline (model in :mod:`weightgen.models.mnfg`): trained on
CE + KL bound / N, networks drawn explicitly through the flow."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..data import Split, training_batch_indices
from ..distributed import Context
from ..memory import require
from ..models.mnfg import MNFG, MNFGConfig
from ..networks import GeneratedNetworks
from ..rng import derive_seed
from ..symmetry import gauge_fix
from .base import Method, StepResult


class MNFGMethod(Method):
    name = "mnfg"
    label = "weightgen MNFG baseline"
    section = "mnfg"
    settings = MNFGConfig

    def __init__(self, config, device="cpu"):
        super().__init__(config, device)
        torch.manual_seed(config.seed)
        self.model = MNFG(self.spec, config.mnfg).to(self.device)

    @property
    def module(self) -> nn.Module:
        return self.model

    def passes_per_step(self) -> int:
        """One sampled network on each image of the batch (the flows' cost is not counted)."""
        return self.config.mnfg.batch_size

    def training_step(
        self, step: int, model: nn.Module, train: Split | None, ctx: Context
    ) -> StepResult:
        """loss = CE + KL bound / N, N the training-set size."""
        config = self.config
        torch.manual_seed(derive_seed(config.seed, "mnfg-noise", step))  # exact resume
        idx = training_batch_indices(step, 1, config.mnfg.batch_size, len(train), config.seed)[
            0
        ].to(self.device)
        ce = F.cross_entropy(model(train.images[idx]), train.labels[idx])
        kl = self.model.kl_bound()
        loss = ce + kl / len(train)
        return StepResult(loss, loss, {"loss": loss, "cross_entropy": ce, "kl": kl})

    def draw(
        self,
        n: int,
        generator: torch.Generator | None,
        gauge: bool = True,
        batch_norm: str = "running",
    ) -> GeneratedNetworks:
        self.check_batch_norm(batch_norm)
        require(
            3 * 4 * n * self.spec.num_weights, f"sampling {n} MNFG networks at once", "sample fewer"
        )
        filters = self.model.sample_filters(n, generator)
        return GeneratedNetworks(self.spec, gauge_fix(self.spec, filters) if gauge else filters)

    def walk(self, t: Tensor, generator: torch.Generator) -> list[Tensor]:
        """Each layer's Gaussian noise interpolated, its flow masks the first draw's (Fig. 5)."""
        return gauge_fix(self.spec, self.model.interpolated_path(t, generator))
