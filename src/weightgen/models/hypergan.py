"""HyperGAN (Ratzlaff & Li, ICML 2019), a peer method of the paper's hypernetwork.

Gaussian noise s goes through a mixer Q to one code per target layer; a generator per layer
turns its code into all of that layer's weights; a discriminator D on the mixed codes Q(s)
tells them from samples of a prior N(0, I), and the mixer is trained to fool it, which keeps
the codes, and with them the networks, from collapsing to one. The training loss is the
target networks' cross-entropy plus β times the mixer's adversarial loss; D learns from its
own loss only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import functional_call

from ..errors import check_value
from ..targets import TargetSpec


@dataclass(frozen=True)
class HyperGANConfig:
    """The config section ``hypergan:`` (steps, learning rate and batch sizes are ``train:``'s)."""

    noise_dim: int = 300  # s ~ N(0, I)
    code_dim: int = 128  # per target layer
    mixer_hidden: tuple[int, ...] = (512,)
    generator_hidden: tuple[int, ...] = (256,)
    discriminator_hidden: tuple[int, ...] = (512, 512)
    beta: float = 1.0  # weight of the mixer's adversarial loss against the cross-entropy
    discriminator_lr_scale: float = 1.0  # D's learning rate / the generator's
    leaky_slope: float = 0.2

    def __post_init__(self) -> None:
        for key in (
            "noise_dim",
            "code_dim",
            "mixer_hidden",
            "generator_hidden",
            "discriminator_hidden",
        ):
            check_value(f"hypergan.{key}", getattr(self, key), ">= 1")
        check_value("hypergan.beta", self.beta, ">= 0")
        check_value("hypergan.discriminator_lr_scale", self.discriminator_lr_scale, "> 0")
        check_value("hypergan.leaky_slope", self.leaky_slope, "in [0, 1)")


def _mlp(sizes: list[int], slope: float) -> nn.Sequential:
    """Linear layers (PyTorch's default initialisation) with leaky ReLU between them (none
    after the last)."""
    layers: list[nn.Module] = []
    for index, (a, b) in enumerate(zip(sizes, sizes[1:])):
        layers.append(nn.Linear(a, b))
        if index < len(sizes) - 2:
            layers.append(nn.LeakyReLU(slope))
    return nn.Sequential(*layers)


class HyperGAN(nn.Module):
    """Mixer, per-layer generators and the discriminator on the codes."""

    def __init__(self, spec: TargetSpec, cfg: HyperGANConfig = HyperGANConfig()):
        super().__init__()
        self.spec, self.cfg = spec, cfg
        layers = len(spec.layers)
        self.mixer = _mlp(
            [cfg.noise_dim, *cfg.mixer_hidden, layers * cfg.code_dim], cfg.leaky_slope
        )
        self.generators = nn.ModuleList(
            _mlp([cfg.code_dim, *cfg.generator_hidden, layer.num_weights], cfg.leaky_slope)
            for layer in spec.layers
        )
        for layer, generator in zip(spec.layers, self.generators):
            # He's scale over a unit-variance hidden layer; the default initialisation shrinks
            # the hidden activations, so the weights start at about a tenth of He's scale,
            # small as the paper's hypernetwork starts them (in a 40-step probe this learned
            # the fastest: cross-entropy 2.30 -> 1.35 where He's full scale stayed at 2.4)
            last = cast(nn.Linear, cast(nn.Sequential, generator)[-1])
            fan_in = layer.filter_size - 1
            nn.init.normal_(last.weight, std=math.sqrt(2.0 / fan_in / last.in_features))
            nn.init.zeros_(last.bias)
        self.discriminator = _mlp(
            [layers * cfg.code_dim, *cfg.discriminator_hidden, 1], cfg.leaky_slope
        )

    def sample_noise(self, k: int, generator: torch.Generator | None = None) -> Tensor:
        """s ~ N(0, I), (k, noise_dim)."""
        s = torch.randn(k, self.cfg.noise_dim, generator=generator)
        return s.to(next(self.mixer.parameters()).device)

    def codes(self, s: Tensor) -> Tensor:
        """Q(s): (k, noise_dim) -> (k, layers · code_dim), the layers' codes side by side."""
        return self.mixer(s)

    def filters(self, codes: Tensor) -> list[Tensor]:
        """Per-layer filter matrices [(k, out_l, n_l)] from the mixed codes."""
        k = codes.shape[0]
        per_layer = codes.split(self.cfg.code_dim, dim=1)  # layers x (k, code_dim)
        return [
            generator(code).reshape(k, layer.out_size, layer.filter_size)
            for layer, generator, code in zip(self.spec.layers, self.generators, per_layer)
        ]

    def forward(self, s: Tensor) -> list[Tensor]:
        return self.filters(self.codes(s))

    def adversarial_losses(self, codes: Tensor, prior: Tensor) -> tuple[Tensor, Tensor]:
        """(the mixer's loss, D's loss): the mixer wants D to take its codes for prior
        samples (non-saturating, −log D(Q(s))); D learns to tell them apart. The mixer's loss
        reaches D's parameters not at all, D's loss reaches the mixer not at all."""
        frozen = {name: p.detach() for name, p in self.discriminator.named_parameters()}
        fooled = functional_call(self.discriminator, frozen, (codes,))
        mixer_loss = F.binary_cross_entropy_with_logits(fooled, torch.ones_like(fooled))
        real, fake = self.discriminator(prior), self.discriminator(codes.detach())
        d_loss = F.binary_cross_entropy_with_logits(
            real, torch.ones_like(real)
        ) + F.binary_cross_entropy_with_logits(fake, torch.zeros_like(fake))
        return mixer_loss, d_loss
