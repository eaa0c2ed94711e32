"""weightgen: hypernetworks that generate whole neural networks (Deutsch, 2018)."""

from .api import GeneratedNetworks, Generator, load
from .config import Config, load_config
from .entropy import kl_entropy
from .errors import WeightgenError
from .exchange import load_networks, save_networks
from .hypernet import HypernetConfig, HyperNetwork
from .symmetry import gauge_fix, gauge_penalty
from .targets import LayerSpec, TargetSpec, forward, mnist_cnn, mnist_mlp

__version__ = "0.1.0"

__all__ = ["GeneratedNetworks", "Generator", "load", "Config", "HypernetConfig", "HyperNetwork", "LayerSpec", "TargetSpec",
           "WeightgenError", "forward", "gauge_fix", "gauge_penalty", "kl_entropy",
           "load_config", "load_networks", "mnist_cnn", "mnist_mlp", "save_networks"]
