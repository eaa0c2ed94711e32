"""The toy problem of section 4.1 (Fig. 2): a 1-D noise mapped onto a 2-D Gaussian mixture.

The generator G: z ∈ [-1, 1] -> R² is trained so that its outputs sit where the mixture f is
high, spread out (Kozachenko–Leonenko entropy with d = 1) and stay bounded (ℓ2):
L = −mean f(G(z)) − α·Ĥ(G(z)) + β·mean |G(z)|² (implementation notes).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from ..entropy import kl_entropy, nearest_neighbour_distances
from ..errors import check_config, check_value
from ..rng import seeded_generator


@dataclass(frozen=True)
class ToyConfig:
    components: int = 10
    mean_range: float = 5.0  # means uniform on [-r, r]^2
    sigma_range: tuple[float, float] = (1.0, 1.1)
    weight_range: tuple[float, float] = (1.0, 3.0)
    hidden: tuple[int, ...] = (30, 10, 10)
    entropy_weight: float = 2.2
    l2_weight: float = 0.05
    noise_samples: int = 5
    steps: int = 30000
    lr: float = 1e-3
    lr_decay: float = 0.99996
    path_points: int = 400  # evenly spaced z for the figure

    def __post_init__(self) -> None:
        check_value("toy.components", self.components, ">= 1")
        check_value("toy.steps", self.steps, ">= 0")
        check_value("toy.noise_samples", self.noise_samples, ">= 2")
        check_value("toy.lr", self.lr, "> 0")
        check_value("toy.lr_decay", self.lr_decay, "in (0, 1]")
        check_value("toy.path_points", self.path_points, ">= 2")
        check_value("toy.hidden", self.hidden, ">= 1")
        check_value("toy.sigma_range", self.sigma_range, "> 0")
        check_config(
            self.sigma_range[0] <= self.sigma_range[1],
            "toy.sigma_range",
            f"must be [low, high] with low <= high, got {list(self.sigma_range)}",
        )
        check_value("toy.weight_range", self.weight_range, "> 0")
        check_config(
            self.weight_range[0] <= self.weight_range[1],
            "toy.weight_range",
            f"must be [low, high] with low <= high, got {list(self.weight_range)}",
        )


class GaussianMixture:
    """f(y) = Σ_i p_i exp(−|y − μ_i|² / (2σ_i²)): each peak's height is its weight."""

    def __init__(self, cfg: ToyConfig, seed: int):
        g = seeded_generator(seed, "toy-mixture")
        n = cfg.components
        self.means = (torch.rand(n, 2, generator=g) * 2 - 1) * cfg.mean_range
        lo, hi = cfg.sigma_range
        self.sigmas = lo + (hi - lo) * torch.rand(n, generator=g)
        lo, hi = cfg.weight_range
        weights = lo + (hi - lo) * torch.rand(n, generator=g)
        self.weights = weights / weights.sum()

    def __call__(self, y: Tensor) -> Tensor:
        """Density at points y (..., 2) -> (...)."""
        sq = (y.unsqueeze(-2) - self.means).square().sum(-1)  # (..., n)
        return (self.weights * torch.exp(-sq / (2 * self.sigmas.square()))).sum(-1)


class ToyGenerator(nn.Module):
    """MLP 1 -> hidden... -> 2 with tanh and biases."""

    def __init__(self, hidden: tuple[int, ...]):
        super().__init__()
        sizes = [1, *hidden, 2]
        layers: list[nn.Module] = []
        for a, b in zip(sizes, sizes[1:]):
            layers += [nn.Linear(a, b), nn.Tanh()]
        self.net = nn.Sequential(*layers[:-1])

    def forward(self, z: Tensor) -> Tensor:
        return self.net(z)


def toy_loss(
    generator: ToyGenerator, density: GaussianMixture, z: Tensor, cfg: ToyConfig
) -> tuple[Tensor, dict[str, float]]:
    y = generator(z)
    value = density(y).mean()
    entropy = kl_entropy(y, "l2", dim=1)
    l2 = y.square().sum(-1).mean()
    loss = -value - cfg.entropy_weight * entropy + cfg.l2_weight * l2
    return loss, {"density": value.item(), "entropy": entropy.item(), "l2": l2.item()}


@torch.no_grad()
def toy_path(generator: ToyGenerator, density: GaussianMixture, points: int) -> dict[str, Tensor]:
    """Fig. 2's data: G of evenly spaced z, the density along it, nearest-neighbour distance."""
    z = torch.linspace(-1, 1, points).unsqueeze(1)
    y = generator(z)
    return {
        "z": z.squeeze(1),
        "y": y,
        "density": density(y),
        "nn_distance": nearest_neighbour_distances(y, "l2"),
    }
