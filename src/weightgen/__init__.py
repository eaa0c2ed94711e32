"""weightgen: hypernetworks that generate whole neural networks (Deutsch, 2018)."""

from .api import Generator, load
from .config import Config, load_config
from .data import DATASETS, Dataset, load_dataset
from .entropy import kl_entropy
from .errors import WeightgenError
from .exchange import load_networks, save_networks
from .hypernet import HypernetConfig, HyperNetwork
from .loop import train
from .methods import METHODS, Method
from .networks import GeneratedNetworks
from .symmetry import gauge_fix, gauge_penalty
from .targets import LayerSpec, TargetSpec, forward, mnist_cnn, mnist_mlp

__version__ = "0.1.0"

__all__ = ["Config", "DATASETS", "Dataset", "GeneratedNetworks", "Generator", "HypernetConfig",
           "HyperNetwork", "LayerSpec", "METHODS", "Method", "TargetSpec", "WeightgenError",
           "forward", "gauge_fix", "gauge_penalty", "kl_entropy", "load", "load_config",
           "load_dataset", "load_networks", "mnist_cnn", "mnist_mlp", "save_networks", "train"]
