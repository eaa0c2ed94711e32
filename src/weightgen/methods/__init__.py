"""The registry of methods: ``METHODS[config.method]`` is the :class:`Method` class a config
trains. A new method is one module with a :class:`Method` subclass and one entry here."""

from __future__ import annotations

import torch

from .base import BATCH_NORM_MODES, Method, StepResult
from .direct import DirectMethod
from .hypergan import HyperGANMethod
from .hypernetwork import HypernetworkMethod
from .mnfg import MNFGMethod
from .multi_hypernetwork import MultiHypernetworkMethod
from .toy import ToyMethod

METHODS: dict[str, type[Method]] = {
    cls.name: cls
    for cls in (
        HypernetworkMethod,
        MultiHypernetworkMethod,
        HyperGANMethod,
        MNFGMethod,
        DirectMethod,
        ToyMethod,
    )
}


def build_method(config, device: torch.device | str = "cpu") -> Method:
    """The untrained method a config describes, its parameters initialised from the seed."""
    return METHODS[config.method](config, device)


__all__ = ["BATCH_NORM_MODES", "METHODS", "Method", "StepResult", "build_method"]
