"""A fully connected layer; feature maps (C, H, W) are flattened channel-major first."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .base import LayerKind, Shape, refuse


class Linear(LayerKind):
    name = "linear"

    def weight_shape(self, layer) -> Shape:
        return (layer.out_size, layer.in_size)

    def output_shape(self, layer, shape: Shape) -> Shape:
        features = math.prod(shape)
        if layer.in_size != features:
            raise refuse(layer, f"expects {layer.in_size} input features, gets {features}")
        if layer.pool != 1:
            raise refuse(layer, "is linear and cannot pool")
        return (layer.out_size,)

    def multiply_adds(self, layer, shape: Shape) -> int:
        return layer.out_size * layer.fan_in

    def forward(self, layer, h: Tensor, weight: Tensor, bias: Tensor) -> Tensor:
        return F.linear(h.flatten(1), weight, bias)

    def forward_grouped(
        self, layer, h: Tensor, weight: Tensor, bias: Tensor, shared: bool
    ) -> Tensor:
        if shared:  # (B, F) @ (K, F, out) -> (K, B, out)
            return torch.matmul(h.flatten(1), weight.transpose(1, 2)) + bias.unsqueeze(1)
        # (K, B, C, H, W) or (K, B, F) -> (K, B, out)
        return torch.baddbmm(bias.unsqueeze(1), h.flatten(2), weight.transpose(1, 2))

    def modules(self, layer, shape: Shape) -> list[tuple[str, nn.Module]]:
        flatten = [("_flatten", nn.Flatten())] if len(shape) > 1 else []
        return flatten + [("", nn.Linear(layer.in_size, layer.out_size))]
