"""A multi-component generator (beyond the paper): K hypernetworks trained as one.

Pooling independently trained generators was the one change that made their ensembles more
diverse (docs/results_history.md, "What moves the ensemble"); this method buys that inside one training
run. The noise batch of a step is split among the K components (row i to component i mod K)
and one entropy term (eq. 14) covers all their networks, so a step costs what one
generator's step costs in target passes. Sampling draws from the components in turn.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from ..errors import WeightgenError, check_value
from ..models.hypernet import MultiHyperNetwork
from ..symmetry import gauge_fix
from .hypernetwork import HypernetworkMethod, eval_mode


@dataclass(frozen=True)
class MultiHypernetworkSettings:
    """The config section ``multi_hypernetwork:``."""

    components: int = 4  # K independently initialised generators
    share_extractor: bool = False  # True: one extractor, K sets of weight generators (heads)

    def __post_init__(self) -> None:
        check_value("multi_hypernetwork.components", self.components, ">= 1")


class MultiHypernetworkMethod(HypernetworkMethod):
    """Trained on the hypernetwork's objective (``objective:`` and ``train:`` sections) with
    G replaced by a :class:`~weightgen.models.hypernet.MultiHyperNetwork`."""

    name = "multi_hypernetwork"
    label = "weightgen multi-component hypernetwork"
    settings = MultiHypernetworkSettings
    distributed = False  # a component owns rows by their place in the whole batch

    def __init__(self, config, device="cpu"):
        self.check_components(config)
        super(HypernetworkMethod, self).__init__(config, device)
        own = config.multi_hypernetwork
        torch.manual_seed(config.seed)  # component 0 starts as the one-generator run's G
        self.hypernet = MultiHyperNetwork(
            self.spec, config.hypernet, own.components, own.share_extractor
        ).to(self.device)

    @staticmethod
    def check_components(config) -> None:
        """Each component needs a share of every noise batch big enough for batch norm."""
        k, n = config.multi_hypernetwork.components, config.train.noise_samples
        if n % k or n < 2 * k:
            raise WeightgenError(
                f"config: train.noise_samples ({n}) must be a multiple of "
                f"multi_hypernetwork.components ({k}) and at least twice it"
            )

    @classmethod
    def check_resources(cls, config, device: torch.device) -> None:
        cls.check_components(config)
        super().check_resources(config, device)

    def walk(self, t: Tensor, generator: torch.Generator) -> list[Tensor]:
        """S(G_1(t·z1 + (1−t)·z2)): the path through the first component's noise (Fig. 4)."""
        z = self.hypernet.sample_noise(2, generator)
        with eval_mode(self.hypernet), torch.no_grad():
            path = self.hypernet(t.view(-1, 1) * z[0] + (1 - t.view(-1, 1)) * z[1], component=0)
        return gauge_fix(self.spec, path)
