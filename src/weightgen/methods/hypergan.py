"""HyperGAN (Ratzlaff & Li, ICML 2019; model in :mod:`weightgen.models.hypergan`) on the
shared loop: networks from Gaussian noise through a mixer and per-layer generators, kept
diverse by a discriminator on the mixed codes instead of an entropy estimate."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..data import Split, training_batch_indices
from ..distributed import Context
from ..models.hypergan import HyperGAN, HyperGANConfig
from ..networks import GeneratedNetworks
from ..rng import seeded_generator
from ..symmetry import gauge_fix
from ..targets import forward
from .base import Method, StepResult


class HyperGANMethod(Method):
    """Trained on CE + β·(mixer's adversarial loss) + (D's loss), one Adam over both halves
    with D's learning rate scaled by ``hypergan.discriminator_lr_scale``; ``train:`` gives
    steps, learning rate, its decay and the batch (noise samples × images per network)."""

    name = "hypergan"
    label = "weightgen HyperGAN (Ratzlaff & Li 2019)"
    section = "train"
    settings = HyperGANConfig

    def __init__(self, config, device="cpu"):
        super().__init__(config, device)
        torch.manual_seed(config.seed)
        self.model = HyperGAN(self.spec, config.hypergan).to(self.device)

    @property
    def module(self) -> nn.Module:
        return self.model

    @property
    def noise_dim(self) -> int:
        return self.config.hypergan.noise_dim

    def passes_per_step(self) -> int:
        tc = self.config.train
        return tc.noise_samples * tc.images_per_network

    def make_optimizer(self) -> torch.optim.Optimizer:
        tc, own = self.config.train, self.config.hypergan
        discriminator = list(self.model.discriminator.parameters())
        held = {id(p) for p in discriminator}
        rest = [p for p in self.model.parameters() if id(p) not in held]
        return torch.optim.Adam(
            [
                {"params": rest, "lr_scale": 1.0},
                {"params": discriminator, "lr_scale": own.discriminator_lr_scale},
            ],
            lr=tc.lr,
            betas=tc.adam_betas,
            eps=tc.adam_eps,
        )

    def training_step(
        self, step: int, model: nn.Module, train: Split | None, ctx: Context
    ) -> StepResult:
        config, tc = self.config, self.config.train
        noise = seeded_generator(config.seed, "noise", step)
        s = self.model.sample_noise(tc.noise_samples, noise)
        prior = torch.randn(
            tc.noise_samples, self.model.mixer[-1].out_features, generator=noise
        ).to(self.device)
        idx = training_batch_indices(
            step, tc.noise_samples, tc.images_per_network, len(train), config.seed
        ).to(self.device)
        codes = self.model.codes(s)
        logits = forward(self.spec, self.model.filters(codes), train.images[idx])
        labels = train.labels[idx]
        ce = F.cross_entropy(logits.flatten(0, 1), labels.flatten())
        mixer_loss, d_loss = self.model.adversarial_losses(codes, prior)
        loss = ce + config.hypergan.beta * mixer_loss + d_loss
        accuracy = (logits.argmax(-1) == labels).float().mean()
        return StepResult(
            loss,
            loss.detach(),
            {
                "loss": loss.detach(),
                "cross_entropy": ce.detach(),
                "accuracy": accuracy,
                "mixer_adversarial": mixer_loss.detach(),
                "discriminator": d_loss.detach(),
            },
        )

    @torch.no_grad()
    def draw(
        self,
        n: int,
        generator: torch.Generator | None,
        gauge: bool = True,
        batch_norm: str = "running",
    ) -> GeneratedNetworks:
        self.check_batch_norm(batch_norm)
        s = self.model.sample_noise(n, generator)
        filters = self.model(s)
        return GeneratedNetworks(self.spec, gauge_fix(self.spec, filters) if gauge else filters, s)

    @torch.no_grad()
    def walk(self, t: Tensor, generator: torch.Generator) -> list[Tensor]:
        """S(G(t·s1 + (1−t)·s2)) (Fig. 4)."""
        s = self.model.sample_noise(2, generator)
        return gauge_fix(self.spec, self.model(t.view(-1, 1) * s[0] + (1 - t.view(-1, 1)) * s[1]))
