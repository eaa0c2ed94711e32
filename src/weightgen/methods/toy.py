"""The toy problem of section 4.1 (Fig. 2; model in :mod:`weightgen.models.toy`): a
generator of 2-D points, not of networks."""

from __future__ import annotations

import torch
from torch import nn

from ..data import Split
from ..distributed import Context
from ..errors import WeightgenError
from ..models.toy import GaussianMixture, ToyConfig, ToyGenerator, toy_loss
from ..networks import GeneratedNetworks
from ..rng import seeded_generator
from .base import Method, StepResult


class ToyMethod(Method):
    name = "toy"
    label = "weightgen toy generator"
    section = "toy"
    settings = ToyConfig
    needs_data = False

    def __init__(self, config, device="cpu"):
        super().__init__(config, device)
        torch.manual_seed(config.seed)
        self.generator = ToyGenerator(config.toy.hidden)
        self.density = GaussianMixture(config.toy, config.seed)

    @property
    def module(self) -> nn.Module:
        return self.generator

    def training_step(
        self, step: int, model: nn.Module, train: Split | None, ctx: Context
    ) -> StepResult:
        cfg = self.config.toy
        z = (
            torch.rand(
                cfg.noise_samples, 1, generator=seeded_generator(self.config.seed, "noise", step)
            )
            * 2
            - 1
        )
        loss, stats = toy_loss(self.generator, self.density, z, cfg)
        return StepResult(loss, loss, {"loss": loss, **stats})

    def validate(self, split: Split) -> None:
        return None

    def draw(
        self,
        n: int,
        generator: torch.Generator | None,
        gauge: bool = True,
        batch_norm: str = "running",
    ) -> GeneratedNetworks:
        raise WeightgenError("the toy problem generates 2-D points, not target networks")
