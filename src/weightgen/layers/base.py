"""The layer-kind interface: what a target network needs of one kind of layer.

A :class:`~weightgen.targets.LayerSpec` names its kind (``"conv"``, ``"linear"``, ...); the
registered :class:`LayerKind` of that name owns everything that depends on it: the weight
shape, the shape it maps inputs to (and the checks), its forward pass for one network and for
K networks at once, the torch.nn modules of the exchange format's reader, its FLOPs, the
activations it writes (memory estimate) and the column layout the gauge fix scales.
Activations are applied by the caller; pooling belongs to the kind that supports it.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, ClassVar

from torch import Tensor, nn

from ..errors import WeightgenError

if TYPE_CHECKING:
    from ..targets import LayerSpec

Shape = tuple[int, ...]  # per image: (C, H, W) feature maps or (F,) features


class LayerKind:
    """One kind of target layer. Weights arrive as (out, fan_in) per network, or
    (K, out, fan_in) for K networks; biases as (out,) or (K, out)."""

    name: ClassVar[str]

    def weight_shape(self, layer: LayerSpec) -> Shape:
        """Per-network shape of ``<name>.weight`` in the torch.nn module (exchange format)."""
        raise NotImplementedError

    def output_shape(self, layer: LayerSpec, shape: Shape) -> Shape:
        """The per-image output shape for input ``shape``; a mismatch is a WeightgenError."""
        raise NotImplementedError

    def multiply_adds(self, layer: LayerSpec, shape: Shape) -> int:
        """Multiply-adds of the forward pass for one image of input ``shape``."""
        raise NotImplementedError

    def activation_floats(self, layer: LayerSpec, shape: Shape) -> int:
        """Floats the layer writes for one image (every intermediate map the backward keeps)."""
        return math.prod(self.output_shape(layer, shape))

    def channel_block(self, layer: LayerSpec, in_channels: int) -> int:
        """The gauge rule: incoming weight columns per input channel. The columns reading one
        channel are contiguous, so rescaling a channel of the previous layer (section 2.2) is
        undone by scaling this block; valid for a kind whose output is positively homogeneous
        in each input channel."""
        return math.prod(self.weight_shape(layer)[1:]) // in_channels

    def forward(self, layer: LayerSpec, h: Tensor, weight: Tensor, bias: Tensor) -> Tensor:
        """One network: h (B, *shape) -> (B, *output_shape)."""
        raise NotImplementedError

    def forward_shared(
        self, layer: LayerSpec, x: Tensor, mats: list[Tensor]
    ) -> list[Tensor] | None:
        """Optional fast path for a first layer on images x (B, *shape) shared by networks
        with filter matrices ``mats`` [(out, fan_in + 1)]: their outputs, or None to run
        :meth:`forward` per network."""
        return None

    def forward_grouped(
        self, layer: LayerSpec, h: Tensor, weight: Tensor, bias: Tensor, shared: bool
    ) -> Tensor:
        """K networks in one call: h (K, B, *shape), or (B, *shape) images shared by all
        (``shared``) -> (K, B, *output_shape)."""
        raise NotImplementedError

    def modules(self, layer: LayerSpec, shape: Shape) -> list[tuple[str, nn.Module]]:
        """The torch.nn modules computing this layer before its activation, with name
        suffixes: "" is the module holding ``weight`` and ``bias``."""
        raise NotImplementedError

    def modules_after_activation(self, layer: LayerSpec) -> list[tuple[str, nn.Module]]:
        """Modules that follow the activation in the reader (pooling, which commutes with
        monotone activations), with name suffixes."""
        return []


def refuse(layer: LayerSpec, why: str) -> WeightgenError:
    """A spec error naming the layer: ``target spec: layer NAME WHY``."""
    return WeightgenError(f"target spec: layer {layer.name} {why}")
