"""The method interface: everything the training loop, ``sample``, ``evaluate``, ``report`` and
the Python API need of a way to get networks (a hypernetwork, MNFG, directly trained networks,
the toy generator). A new method subclasses :class:`Method` and is registered in
``weightgen.methods.METHODS`` under the name a config's ``method:`` gives.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from ..data import Split
from ..distributed import Context
from ..errors import WeightgenError
from ..evaluate import ensemble_metrics, predict
from ..networks import GeneratedNetworks
from ..rng import seeded_generator
from ..symmetry import gauge_fix
from ..targets import TargetSpec

BATCH_NORM_MODES = ("running", "batch")


def warmup_cosine(step: int, peak: float, warmup: int, total: int, min_ratio: float) -> float:
    """Linear warm-up from peak/warmup to ``peak`` over ``warmup`` steps, then a cosine down to
    peak · min_ratio at step ``total`` (and held there after it)."""
    if step < warmup:
        return peak * (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return peak * (min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress)))


@dataclass
class StepResult:
    """One training step: ``loss`` is back-propagated, ``value`` is the loss of the whole
    (global) batch checked for finiteness, ``record`` the scalars logged to metrics.jsonl."""

    loss: Tensor
    value: Tensor
    record: dict[str, Tensor | float]


class Method(ABC):
    """A trainable source of target networks, built from a config.

    Subclasses set the class attributes (``settings``: their own config section, if any),
    build their modules in ``__init__`` (seeded by the config, so a rebuilt method matches a
    checkpoint's parameters) and implement :meth:`training_step` and :meth:`draw`."""

    name: ClassVar[str]  # the config's ``method:``
    label: ClassVar[str]  # what exchange files name as their source
    section: ClassVar[str]  # the config section with steps, lr and (optionally) lr_decay
    distributed: ClassVar[bool] = False  # trains under torchrun (data-parallel)
    batch_norm: ClassVar[bool] = False  # has batch norm, so --batch-norm batch applies
    needs_data: ClassVar[bool] = True  # False: the toy problem needs no dataset
    # the dataclass of the method's own config section, written under the method's name
    # (``mnfg:``) and read as ``config.<name>``; None: the method has no section of its own
    settings: ClassVar[type | None] = None

    def __init__(self, config: Any, device: torch.device | str = "cpu"):
        self.config, self.device = config, torch.device(device)
        self.spec: TargetSpec | None = config.spec() if self.needs_data else None
        self.step = 0  # of the loaded checkpoint

    # ---- training --------------------------------------------------------------------------
    @classmethod
    def check_resources(cls, config: Any, device: torch.device) -> None:
        """Refuse, before anything is built or written, a config this machine cannot train
        (one-line error); warn about settings that run slowly here."""

    @property
    def module(self) -> nn.Module:
        """The module holding every trained parameter (wrapped by DDP under torchrun)."""
        raise NotImplementedError

    def passes_per_step(self) -> int:
        """The (network, image) pairs whose forward and backward pass one training step
        computes: the step's counted training cost (:mod:`weightgen.cost`); 0 for a method
        without target networks."""
        return 0

    @property
    def steps(self) -> int:
        return getattr(self.config, self.section).steps

    def learning_rate(self, step: int) -> float:
        """The learning rate of ``step``: lr · lr_decay^step (a constant without lr_decay), or
        with ``lr_schedule: warmup_cosine`` a linear warm-up over ``warmup_steps`` to lr, then
        a cosine to lr · lr_min_ratio at the section's last step."""
        section = getattr(self.config, self.section)
        if getattr(section, "lr_schedule", "exponential") == "warmup_cosine":
            return warmup_cosine(
                step, section.lr, section.warmup_steps, section.steps, section.lr_min_ratio
            )
        return section.lr * getattr(section, "lr_decay", 1.0) ** step

    def make_optimizer(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.module.parameters(), lr=self.learning_rate(0))

    @abstractmethod
    def training_step(
        self, step: int, model: nn.Module, train: Split | None, ctx: Context
    ) -> StepResult:
        """The loss of step ``step`` (a function of the seed and the step only). ``model`` is
        :attr:`module`, or its DDP wrapper under torchrun."""

    def validate(self, split: Split) -> dict[str, float] | None:
        """Metrics of the validation networks (the same draw every time) on ``split``; None
        for a method without networks."""
        tc = self.config.train
        count = tc.validation_networks if self.size is None else self.size
        networks = self.draw(count, seeded_generator(self.config.seed, "validation"), gauge=False)
        return ensemble_metrics(predict(self.spec, networks.filters, split.images), split.labels)

    def state(self) -> dict[str, Any]:
        """The trained state as checkpoint entries (tensors only)."""
        return {"model": self.module.state_dict()}

    def load_state(self, payload: dict[str, Any]) -> None:
        self.module.load_state_dict(payload["model"])

    # ---- networks --------------------------------------------------------------------------
    @property
    def noise_dim(self) -> int | None:
        """The length of the noise vector a network is generated from (None: no such noise)."""
        return None

    @property
    def size(self) -> int | None:
        """How many networks the method holds when it is a fixed set; None for a generator."""
        return None

    @abstractmethod
    def draw(
        self,
        n: int,
        generator: torch.Generator | None,
        gauge: bool = True,
        batch_norm: str = "running",
    ) -> GeneratedNetworks:
        """n networks drawn with ``generator`` (a fixed set: its first n), gauge-fixed
        (eq. 12) unless ``gauge`` is False."""

    def sample(
        self,
        n: int,
        seed: int = 0,
        chunk: int = 1000,
        gauge: bool = True,
        batch_norm: str = "running",
        ctx: Context | None = None,
    ) -> Iterator[GeneratedNetworks]:
        """The n networks ``weightgen sample --seed seed`` writes, ``chunk`` at a time (every
        rank of a torchrun ``ctx`` receives all of them)."""
        networks = self.draw(n, seeded_generator(seed, "sample"), gauge, batch_norm)
        for lo in range(0, n, chunk):
            yield GeneratedNetworks(
                networks.spec,
                [f[lo : lo + chunk] for f in networks.filters],
                None if networks.z is None else networks.z[lo : lo + chunk],
            )

    def walk(self, t: Tensor, generator: torch.Generator) -> list[Tensor] | None:
        """Gauge-fixed networks at the points t of the interpolated path between two fresh
        draws (t = 1 the first, t = 0 the second; Figs. 4-5); None when the method has no
        noise to interpolate."""
        return None

    # ---- helpers for subclasses ------------------------------------------------------------
    def check_batch_norm(self, batch_norm: str) -> None:
        if batch_norm != "running" and not self.batch_norm:
            raise WeightgenError(f"--batch-norm {batch_norm}: a {self.name} run has no batch norm")

    def fixed(self, filters: list[Tensor], n: int, gauge: bool) -> GeneratedNetworks:
        """The first n of a fixed set of networks, gauge-fixed unless ``gauge`` is False."""
        if n > filters[0].shape[0]:
            raise WeightgenError(f"the run holds {filters[0].shape[0]} trained networks, not {n}")
        first = [f[:n].to(self.device) for f in filters]
        return GeneratedNetworks(self.spec, gauge_fix(self.spec, first) if gauge else first)
