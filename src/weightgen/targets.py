"""Target networks as data: a spec of ordered layers and a batched functional forward.

A target network T(x; θ) is described by a :class:`TargetSpec`. Its weights are kept, per layer,
as a *filter matrix* of shape (K, out, n) for K networks at once: row i is filter i of the layer,
its weights flattened followed by its bias, so n = fan_in + 1 (the paper's n_{l,i}, section 2.2).
For every layer the incoming columns of one input channel are a contiguous block (conv kernels
and NCHW-flattened linear inputs are both channel-major), which is what the gauge fixing uses.
"""

from __future__ import annotations

import json
import math
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .errors import WeightgenError
from .layers import LAYER_KINDS, LayerKind

Activation = Literal["relu", "leaky_relu", "none"]
ConvImpl = Literal["grouped", "per_network", "reference"]


@dataclass(frozen=True)
class LayerSpec:
    """One layer of a registered kind (:mod:`weightgen.layers`: "conv", stride 1, 'same'
    padding, then max-pool; "linear"), then its activation."""

    name: str
    kind: str  # a key of weightgen.layers.LAYER_KINDS
    in_size: int  # input channels (conv) or input features (linear)
    out_size: int  # filters (conv) or neurons (linear)
    kernel_size: int = 1
    activation: Activation = "relu"
    pool: int = 1  # max-pool kernel and stride; 1 means no pooling
    leaky_slope: float = 0.01

    @property
    def weight_shape(self) -> tuple[int, ...]:
        """Per-network shape of ``<name>.weight`` as in torch.nn.Conv2d / torch.nn.Linear."""
        return self.rule.weight_shape(self)

    @property
    def rule(self) -> LayerKind:
        """The registered :class:`~weightgen.layers.LayerKind` that computes this layer."""
        if self.kind not in LAYER_KINDS:
            raise WeightgenError(
                f"target spec: layer {self.name} has unknown kind {self.kind!r}; "
                f"choose one of {sorted(LAYER_KINDS)}"
            )
        return LAYER_KINDS[self.kind]

    @property
    def fan_in(self) -> int:
        return math.prod(self.weight_shape[1:])

    @property
    def filter_size(self) -> int:
        """n_{l,i}: elements of one filter including its bias."""
        return self.fan_in + 1

    @property
    def num_weights(self) -> int:
        return self.out_size * self.filter_size


@dataclass(frozen=True)
class TargetSpec:
    """An ordered stack of layers applied to inputs of shape ``input_shape`` (C, H, W)."""

    input_shape: tuple[int, int, int]
    layers: tuple[LayerSpec, ...]

    def __post_init__(self) -> None:
        self.validate()

    # ---- derived facts -------------------------------------------------------------------
    @property
    def num_classes(self) -> int:
        return self.layers[-1].out_size

    @property
    def num_weights(self) -> int:
        """Total trainable weights of one target network (20,018 for the paper's CNN)."""
        return sum(layer.num_weights for layer in self.layers)

    def channel_block(self, index: int) -> int:
        """Columns per input channel in layer ``index``'s filters (kernel area, or H*W after a
        flatten, or 1)."""
        channels = self.layers[index - 1].out_size if index > 0 else self.input_shape[0]
        layer = self.layers[index]
        return layer.rule.channel_block(layer, channels)

    def shapes(self) -> list[tuple[int, ...]]:
        """Per-image input shape of every layer, then the output shape: [(C, H, W), ...,
        (classes,)]."""
        shapes = [tuple(self.input_shape)]
        for layer in self.layers:
            shapes.append(layer.rule.output_shape(layer, shapes[-1]))
        return shapes

    def validate(self) -> None:
        if not self.layers:
            raise WeightgenError("target spec: needs at least one layer")
        names = [layer.name for layer in self.layers]
        if len(set(names)) != len(names):
            raise WeightgenError(f"target spec: layer names must be unique, got {names}")
        shape: tuple[int, ...] = tuple(self.input_shape)
        for i, layer in enumerate(self.layers):
            if layer.in_size <= 0 or layer.out_size <= 0:
                raise WeightgenError(f"target spec: layer {layer.name} has a non-positive size")
            if not isinstance(layer.pool, int) or layer.pool < 1 or layer.kernel_size < 1:
                raise WeightgenError(
                    f"target spec: layer {layer.name} needs pool >= 1 and "
                    f"kernel_size >= 1, got {layer.pool!r}, {layer.kernel_size!r}"
                )
            shape = layer.rule.output_shape(layer, shape)
            if layer.activation not in ("relu", "leaky_relu", "none"):
                raise WeightgenError(
                    f"target spec: layer {layer.name} has unknown activation {layer.activation!r}"
                )
            if i == len(self.layers) - 1 and (len(shape) != 1 or layer.activation != "none"):
                raise WeightgenError(
                    "target spec: the last layer must output class scores (one feature per "
                    "class, like a linear layer) with activation none"
                )

    # ---- (de)serialisation ---------------------------------------------------------------
    def to_dict(self) -> dict:
        return {
            "input_shape": list(self.input_shape),
            "layers": [asdict(layer) for layer in self.layers],
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict) -> TargetSpec:
        try:
            layers = tuple(LayerSpec(**layer) for layer in data["layers"])
            channels, height, width = (int(v) for v in data["input_shape"])
            return cls(input_shape=(channels, height, width), layers=layers)
        except (KeyError, TypeError, ValueError) as err:
            raise WeightgenError(f"target spec: malformed ({err})") from None

    # ---- weight layouts ------------------------------------------------------------------
    def state_dict_shapes(self) -> OrderedDict[str, tuple[int, ...]]:
        """Per-network names and shapes of a torch.nn state dict of this architecture."""
        shapes: OrderedDict[str, tuple[int, ...]] = OrderedDict()
        for layer in self.layers:
            shapes[f"{layer.name}.weight"] = layer.weight_shape
            shapes[f"{layer.name}.bias"] = (layer.out_size,)
        return shapes

    def to_state_dict(self, filters: Sequence[Tensor]) -> OrderedDict[str, Tensor]:
        """Filter matrices [(K, out, n)] -> stacked state dict {name: (K, *shape)}."""
        out: OrderedDict[str, Tensor] = OrderedDict()
        for layer, mat in zip(self.layers, filters):
            k = mat.shape[0]
            out[f"{layer.name}.weight"] = mat[..., :-1].reshape(k, *layer.weight_shape)
            out[f"{layer.name}.bias"] = mat[..., -1]
        return out

    def from_state_dict(self, state: dict[str, Tensor]) -> list[Tensor]:
        """Stacked state dict {name: (K, *shape)} -> filter matrices [(K, out, n)]."""
        filters = []
        for layer in self.layers:
            weight, bias = state[f"{layer.name}.weight"], state[f"{layer.name}.bias"]
            k = weight.shape[0]
            filters.append(
                torch.cat([weight.reshape(k, layer.out_size, -1), bias.unsqueeze(-1)], -1)
            )
        return filters

    def flatten(self, filters: Sequence[Tensor]) -> Tensor:
        """Filter matrices -> flat weight vectors θ of shape (K, num_weights)."""
        return torch.cat([mat.reshape(mat.shape[0], -1) for mat in filters], dim=1)

    def unflatten(self, theta: Tensor) -> list[Tensor]:
        """Flat θ (K, num_weights) -> filter matrices [(K, out, n)]."""
        sizes = [layer.num_weights for layer in self.layers]
        return [
            chunk.reshape(theta.shape[0], layer.out_size, layer.filter_size)
            for chunk, layer in zip(theta.split(sizes, dim=1), self.layers)
        ]

    def build_module(self) -> nn.Sequential:
        """A plain torch.nn.Sequential of this architecture (the exchange format's reader)."""
        modules: OrderedDict[str, nn.Module] = OrderedDict()
        for layer, shape in zip(self.layers, self.shapes()):
            for suffix, module in layer.rule.modules(layer, shape):
                modules[layer.name + suffix] = module
            if layer.activation == "relu":
                modules[f"{layer.name}_relu"] = nn.ReLU()
            elif layer.activation == "leaky_relu":
                modules[f"{layer.name}_relu"] = nn.LeakyReLU(layer.leaky_slope)
            for suffix, module in layer.rule.modules_after_activation(layer):
                modules[layer.name + suffix] = module
        return nn.Sequential(modules)


# ---- presets -------------------------------------------------------------------------------


def mnist_cnn() -> TargetSpec:
    """The paper's Table 1: conv 5x5x32, pool, conv 5x5x16, pool, fc 8, fc 10 (20,018 weights)."""
    return TargetSpec(
        input_shape=(1, 28, 28),
        layers=(
            LayerSpec("conv1", "conv", 1, 32, kernel_size=5, pool=2),
            LayerSpec("conv2", "conv", 32, 16, kernel_size=5, pool=2),
            LayerSpec("fc1", "linear", 16 * 7 * 7, 8),
            LayerSpec("fc2", "linear", 8, 10, activation="none"),
        ),
    )


def mnist_mlp(hidden: Sequence[int] = (64, 32)) -> TargetSpec:
    """A fully connected MNIST classifier 784 -> hidden... -> 10."""
    sizes = [28 * 28, *hidden, 10]
    layers = tuple(
        LayerSpec(
            f"fc{i + 1}",
            "linear",
            sizes[i],
            sizes[i + 1],
            activation="relu" if i < len(sizes) - 2 else "none",
        )
        for i in range(len(sizes) - 1)
    )
    return TargetSpec(input_shape=(1, 28, 28), layers=layers)


PRESETS = {"mnist_cnn": mnist_cnn, "mnist_mlp": mnist_mlp}


def preset(name: str) -> TargetSpec:
    if name not in PRESETS:
        raise WeightgenError(f"unknown target preset {name!r}; choose one of {sorted(PRESETS)}")
    return PRESETS[name]()


# ---- batched forward -----------------------------------------------------------------------


def _activate(h: Tensor, layer: LayerSpec) -> Tensor:
    if layer.activation == "relu":
        return F.relu(h)
    if layer.activation == "leaky_relu":
        return F.leaky_relu(h, layer.leaky_slope)
    return h


def default_conv_impl(device: torch.device | str) -> ConvImpl:
    """One grouped convolution on accelerators; on CPU oneDNN runs per-network convolutions
    faster than grouped ones (measured: 0.13 s vs 0.29 s per paper-sized step, 2 cores)."""
    return "grouped" if torch.device(device).type == "cuda" else "per_network"


def forward(
    spec: TargetSpec, filters: Sequence[Tensor], x: Tensor, conv_impl: ConvImpl | None = None
) -> Tensor:
    """Logits of K target networks at once ("reference": the slow module loop, for
    comparisons).

    filters: per-layer filter matrices [(K, out, n)].
    x: (K, B, C, H, W), each network its own images, or (B, C, H, W), images shared by all.
    Returns (K, B, num_classes).
    """
    impl = conv_impl or default_conv_impl(x.device)
    if impl == "reference":
        return reference_forward(spec, filters, x)
    if impl == "per_network":
        # unbind, not indexing: the backward of K selects would write K full-size zero tensors
        per_network = list(zip(*(mat.unbind(0) for mat in filters)))
        first = spec.layers[0]
        shared = (
            first.rule.forward_shared(first, x, [mats[0] for mats in per_network])
            if x.dim() == 4
            else None
        )
        if shared is not None:  # the first layer's work on the common images done once
            return torch.stack(
                [
                    _single_forward(spec, mats[1:], _activate(h, first), start=1)
                    for mats, h in zip(per_network, shared)
                ]
            )
        inputs = [x] * len(per_network) if x.dim() == 4 else x.unbind(0)
        return torch.stack(
            [_single_forward(spec, mats, xi) for mats, xi in zip(per_network, inputs)]
        )
    if impl != "grouped":
        raise ValueError(f"unknown conv_impl {impl!r}")
    return _grouped_forward(spec, filters, x)


def _single_forward(
    spec: TargetSpec, filters: Sequence[Tensor], x: Tensor, start: int = 0
) -> Tensor:
    """One network from layer ``start`` on: filters [(out, n)], x (B, C, H, W) -> (B, classes)."""
    h = x
    for layer, mat in zip(spec.layers[start:], filters):
        # max-pool commutes with the monotone activation: activating after pooling is cheaper
        h = _activate(layer.rule.forward(layer, h, mat[:, :-1], mat[:, -1]), layer)
    return h


def _grouped_forward(spec: TargetSpec, filters: Sequence[Tensor], x: Tensor) -> Tensor:
    """All K networks in one grouped convolution / batched matmul per layer."""
    shared = x.dim() == 4
    h = x
    for layer, mat in zip(spec.layers, filters):
        # weights (K, out, fan_in), biases (K, out)
        h = _activate(
            layer.rule.forward_grouped(layer, h, mat[..., :-1], mat[..., -1], shared), layer
        )
        shared = False
    return h


def reference_forward(spec: TargetSpec, filters: Sequence[Tensor], x: Tensor) -> Tensor:
    """Plain loop over networks through torch.nn modules: the ground truth for tests
    (differentiable: the weights enter through torch.func.functional_call)."""
    state = spec.to_state_dict(filters)
    module = spec.build_module().to(x.device, x.dtype)
    outputs = []
    for i in range(filters[0].shape[0]):
        params = {name: tensor[i] for name, tensor in state.items()}
        outputs.append(torch.func.functional_call(module, params, (x if x.dim() == 4 else x[i],)))
    return torch.stack(outputs)
