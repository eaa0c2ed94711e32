"""weightgen: hypernetworks that generate whole neural networks (Deutsch, 2018).

The names below are imported on first use, so that ``weightgen --help`` does not wait for
PyTorch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.2.0"  # the only place the version is written (pyproject reads it)

_HOME = {  # public name -> the module that defines it
    "Generator": "api",
    "load": "api",
    "Config": "config",
    "load_config": "config",
    "DATASETS": "data",
    "Dataset": "data",
    "load_dataset": "data",
    "kl_entropy": "entropy",
    "WeightgenError": "errors",
    "load_networks": "exchange",
    "save_networks": "exchange",
    "HypernetConfig": "models.hypernet",
    "HyperNetwork": "models.hypernet",
    "train": "loop",
    "METHODS": "methods",
    "Method": "methods",
    "GeneratedNetworks": "networks",
    "gauge_fix": "symmetry",
    "gauge_penalty": "symmetry",
    "LayerSpec": "targets",
    "TargetSpec": "targets",
    "forward": "targets",
    "mnist_cnn": "targets",
    "mnist_mlp": "targets",
}

__all__ = sorted(_HOME)

if TYPE_CHECKING:
    from .api import Generator, load
    from .config import Config, load_config
    from .data import DATASETS, Dataset, load_dataset
    from .entropy import kl_entropy
    from .errors import WeightgenError
    from .exchange import load_networks, save_networks
    from .loop import train
    from .methods import METHODS, Method
    from .models.hypernet import HypernetConfig, HyperNetwork
    from .networks import GeneratedNetworks
    from .symmetry import gauge_fix, gauge_penalty
    from .targets import LayerSpec, TargetSpec, forward, mnist_cnn, mnist_mlp


_SUBMODULES = (
    "datasets",
    "uncertainty",
    "pretrained",
    "terms",
    "layers",
)  # weightgen.datasets.load


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES:
        return importlib.import_module(f".{name}", __name__)
    if name not in _HOME:
        raise AttributeError(f"module 'weightgen' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_HOME[name]}", __name__), name)
    globals()[name] = value  # later lookups skip this function
    return value
