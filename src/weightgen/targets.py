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

Activation = Literal["relu", "leaky_relu", "none"]
ConvImpl = Literal["grouped", "per_network", "reference"]


@dataclass(frozen=True)
class LayerSpec:
    """One conv (stride 1, 'same' padding) or linear layer, then activation, then max-pool."""

    name: str
    kind: Literal["conv", "linear"]
    in_size: int  # input channels (conv) or input features (linear)
    out_size: int  # filters (conv) or neurons (linear)
    kernel_size: int = 1
    activation: Activation = "relu"
    pool: int = 1  # max-pool kernel and stride; 1 means no pooling
    leaky_slope: float = 0.01

    @property
    def weight_shape(self) -> tuple[int, ...]:
        """Per-network shape of ``<name>.weight`` as in torch.nn.Conv2d / torch.nn.Linear."""
        if self.kind == "conv":
            return (self.out_size, self.in_size, self.kernel_size, self.kernel_size)
        return (self.out_size, self.in_size)

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
        return self.layers[index].fan_in // channels

    def validate(self) -> None:
        if not self.layers:
            raise WeightgenError("target spec: needs at least one layer")
        names = [layer.name for layer in self.layers]
        if len(set(names)) != len(names):
            raise WeightgenError(f"target spec: layer names must be unique, got {names}")
        channels, height, width = self.input_shape
        flat: int | None = None  # features once flattened
        for i, layer in enumerate(self.layers):
            if layer.in_size <= 0 or layer.out_size <= 0:
                raise WeightgenError(f"target spec: layer {layer.name} has a non-positive size")
            if not isinstance(layer.pool, int) or layer.pool < 1 or layer.kernel_size < 1:
                raise WeightgenError(
                    f"target spec: layer {layer.name} needs pool >= 1 and "
                    f"kernel_size >= 1, got {layer.pool!r}, {layer.kernel_size!r}"
                )
            if layer.kind == "conv":
                if flat is not None:
                    raise WeightgenError(f"target spec: conv layer {layer.name} after a linear one")
                if layer.in_size != channels:
                    raise WeightgenError(
                        f"target spec: layer {layer.name} expects {layer.in_size} input channels, "
                        f"gets {channels}"
                    )
                if layer.kernel_size % 2 != 1:
                    raise WeightgenError(
                        f"target spec: layer {layer.name} needs an odd kernel_size"
                    )
                if height % layer.pool or width % layer.pool:
                    raise WeightgenError(
                        f"target spec: layer {layer.name} pools {height}x{width} by {layer.pool}"
                    )
                channels, height, width = layer.out_size, height // layer.pool, width // layer.pool
            elif layer.kind == "linear":
                features = flat if flat is not None else channels * height * width
                if layer.in_size != features:
                    raise WeightgenError(
                        f"target spec: layer {layer.name} expects {layer.in_size} input features, "
                        f"gets {features}"
                    )
                if layer.pool != 1:
                    raise WeightgenError(f"target spec: linear layer {layer.name} cannot pool")
                flat = layer.out_size
            else:
                raise WeightgenError(
                    f"target spec: layer {layer.name} has unknown kind {layer.kind!r}"
                )
            if layer.activation not in ("relu", "leaky_relu", "none"):
                raise WeightgenError(
                    f"target spec: layer {layer.name} has unknown activation {layer.activation!r}"
                )
            if i == len(self.layers) - 1 and (layer.kind != "linear" or layer.activation != "none"):
                raise WeightgenError(
                    "target spec: the last layer must be linear with activation none"
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
            return cls(input_shape=tuple(int(v) for v in data["input_shape"]), layers=layers)
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
        flattened = False
        for layer in self.layers:
            if layer.kind == "conv":
                modules[layer.name] = nn.Conv2d(
                    layer.in_size, layer.out_size, layer.kernel_size, padding=layer.kernel_size // 2
                )
            else:
                if not flattened:
                    modules["flatten"] = nn.Flatten()
                    flattened = True
                modules[layer.name] = nn.Linear(layer.in_size, layer.out_size)
            if layer.activation == "relu":
                modules[f"{layer.name}_relu"] = nn.ReLU()
            elif layer.activation == "leaky_relu":
                modules[f"{layer.name}_relu"] = nn.LeakyReLU(layer.leaky_slope)
            if layer.pool > 1:
                modules[f"{layer.name}_pool"] = nn.MaxPool2d(layer.pool)
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


# Without autograd, a conv with at most this fan-in, followed by max-pooling, is computed as
# pool² strided convolutions and an elementwise max: its large pre-pool map is never written
# (measured on 2 CPU cores for the paper's first layer: 2x faster; for its second layer 5x
# slower). With autograd the backward of the elementwise max (masks, where, masked_fill)
# costs more than it saves: a training step of the paper's configuration took 0.78 s this way
# and 0.60 s with conv + max-pool (1 thread, profiled).
SMALL_FAN_IN = 75


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
        if (
            x.dim() == 4
            and first.kind == "conv"
            and first.pool > 1
            and first.fan_in <= SMALL_FAN_IN
        ):
            # shared images: the first layer's im2col is computed once for all networks
            cols = _window_columns(x, first)
            return torch.stack(
                [
                    _single_forward(spec, mats[1:], _window_conv(cols, mats[0], x, first), start=1)
                    for mats in per_network
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
        weight, bias = mat[:, :-1], mat[:, -1]
        if layer.kind == "conv":
            # channels-last weights make oneDNN write channels-last outputs, whose max-pool is
            # ~10x faster on CPU than NCHW's (the training step: 0.29 -> 0.19 s on 1 thread)
            weight = weight.reshape(layer.weight_shape).contiguous(
                memory_format=torch.channels_last
            )
            if layer.pool > 1 and layer.fan_in <= SMALL_FAN_IN and not torch.is_grad_enabled():
                h = _pooled_conv(h, weight, bias, layer)
            else:
                h = F.conv2d(h, weight, bias, padding=layer.kernel_size // 2)
                if layer.pool > 1:
                    h = F.max_pool2d(h, layer.pool)
        else:
            h = F.linear(h.flatten(1), weight, bias)
        # max-pool commutes with the monotone activation: activating after pooling is cheaper
        h = _activate(h, layer)
    return h


def _pooled_conv(x: Tensor, weight: Tensor, bias: Tensor, layer: LayerSpec) -> Tensor:
    """max_pool(conv(x, 'same'), p) as the max over p² convolutions of stride p, one per
    position in the pooling window. x: (B, C, H, W) -> (B, out, H/p, W/p)."""
    p, pad = layer.pool, layer.kernel_size // 2
    padded = F.pad(x, (pad, pad, pad, pad))
    rows, cols = x.shape[-2] + 2 * pad - p + 1, x.shape[-1] + 2 * pad - p + 1
    out = None
    for dy in range(p):
        for dx in range(p):
            y = F.conv2d(padded[..., dy : dy + rows, dx : dx + cols], weight, bias, stride=p)
            out = y if out is None else torch.maximum(out, y)
    return out


def _window_columns(x: Tensor, layer: LayerSpec) -> Tensor:
    """im2col of x grouped by position in the pooling window, with a column of ones for the
    bias: (p², B·H'·W', fan_in + 1)."""
    p, k = layer.pool, layer.kernel_size
    b, _, height, width = x.shape
    cols = F.unfold(x, k, padding=k // 2)  # (B, fan_in, H*W)
    cols = cols.reshape(b, layer.fan_in, height // p, p, width // p, p)  # (B, F, H', p, W', p)
    cols = cols.permute(3, 5, 0, 2, 4, 1).reshape(p * p, -1, layer.fan_in)
    return torch.cat([cols, cols.new_ones(p * p, cols.shape[1], 1)], dim=-1)


def _window_conv(cols: Tensor, mat: Tensor, x: Tensor, layer: LayerSpec) -> Tensor:
    """max_pool(conv(x)) of one network from shared window columns -> (B, out, H', W').

    The bias rides in the ones column (max_w(a_w + b) = max_w(a_w) + b); without autograd the
    running maximum is kept in place, which halves this layer's memory traffic. The result is
    a channels-last view, which the next convolution reads directly."""
    windows = cols.unbind(0)  # p² x (B·H'·W', fan_in + 1)
    out = windows[0] @ mat.t()  # (B·H'·W', out)
    in_place = not (torch.is_grad_enabled() and (cols.requires_grad or mat.requires_grad))
    for window in windows[1:]:
        y = window @ mat.t()
        out = torch.maximum(out, y, out=out) if in_place else torch.maximum(out, y)
    p = layer.pool
    out = out.reshape(x.shape[0], x.shape[2] // p, x.shape[3] // p, layer.out_size)
    return _activate(out.permute(0, 3, 1, 2), layer)


def _grouped_forward(spec: TargetSpec, filters: Sequence[Tensor], x: Tensor) -> Tensor:
    """All K networks in one grouped convolution / batched matmul per layer."""
    k = filters[0].shape[0]
    shared = x.dim() == 4
    h = x
    for layer, mat in zip(spec.layers, filters):
        weight, bias = mat[..., :-1], mat[..., -1]  # (K, out, fan_in), (K, out)
        if layer.kind == "conv":
            weight = weight.reshape(k, *layer.weight_shape)
            pad = layer.kernel_size // 2
            if shared:  # all K kernels as one bank of K*out filters on the common images
                y = F.conv2d(h, weight.flatten(0, 1), bias.flatten(), padding=pad)
            else:  # (K, B, C, H, W) -> (B, K*C, H, W); groups=K keeps networks apart
                y = F.conv2d(
                    h.transpose(0, 1).flatten(1, 2),
                    weight.flatten(0, 1),
                    bias.flatten(),
                    padding=pad,
                    groups=k,
                )
            if layer.pool > 1:
                y = F.max_pool2d(y, layer.pool)
            h = y.unflatten(1, (k, layer.out_size)).transpose(0, 1)  # (K, B, out, H', W')
            shared = False
        elif shared:  # (B, F) @ (K, F, out) -> (K, B, out)
            h = torch.matmul(h.flatten(1), weight.transpose(1, 2)) + bias.unsqueeze(1)
            shared = False
        else:  # (K, B, C, H, W) or (K, B, F) -> (K, B, out)
            h = torch.baddbmm(bias.unsqueeze(1), h.flatten(2), weight.transpose(1, 2))
        h = _activate(h, layer)
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
