"""2-D convolution, stride 1 and 'same' padding, optionally followed by max-pooling."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .base import LayerKind, Shape, refuse


class Conv(LayerKind):
    name = "conv"

    def weight_shape(self, layer) -> Shape:
        return (layer.out_size, layer.in_size, layer.kernel_size, layer.kernel_size)

    def output_shape(self, layer, shape: Shape) -> Shape:
        if len(shape) != 3:
            raise refuse(layer, f"is a conv layer after a linear one (gets {shape[0]} features)")
        channels, height, width = shape
        if layer.in_size != channels:
            raise refuse(layer, f"expects {layer.in_size} input channels, gets {channels}")
        if layer.kernel_size % 2 != 1:
            raise refuse(layer, "needs an odd kernel_size")
        if height % layer.pool or width % layer.pool:
            raise refuse(layer, f"pools {height}x{width} by {layer.pool}")
        return (layer.out_size, height // layer.pool, width // layer.pool)

    def multiply_adds(self, layer, shape: Shape) -> int:
        return layer.out_size * layer.fan_in * shape[1] * shape[2]

    def activation_floats(self, layer, shape: Shape) -> int:
        before_pool = layer.out_size * shape[1] * shape[2]
        return before_pool + super().activation_floats(layer, shape)

    def forward(self, layer, h: Tensor, weight: Tensor, bias: Tensor) -> Tensor:
        # channels-last weights make oneDNN write channels-last outputs, whose max-pool is
        # ~10x faster on CPU than NCHW's (the training step: 0.29 -> 0.19 s on 1 thread)
        kernel = weight.reshape(self.weight_shape(layer)).contiguous(
            memory_format=torch.channels_last
        )
        if layer.pool > 1 and layer.fan_in <= SMALL_FAN_IN and not torch.is_grad_enabled():
            return _pooled_conv(h, kernel, bias, layer)
        h = F.conv2d(h, kernel, bias, padding=layer.kernel_size // 2)
        return F.max_pool2d(h, layer.pool) if layer.pool > 1 else h

    def forward_shared(self, layer, x: Tensor, mats: list[Tensor]) -> list[Tensor] | None:
        """Networks with filter matrices ``mats`` [(out, fan_in + 1)] on shared images x
        (B, C, H, W), sharing one im2col of x when the layer pools a small fan-in (the paper's
        first layer); None where that does not pay."""
        if layer.pool == 1 or layer.fan_in > SMALL_FAN_IN:
            return None
        cols = _window_columns(x, layer)
        return [_window_conv(cols, mat, x, layer) for mat in mats]

    def forward_grouped(
        self, layer, h: Tensor, weight: Tensor, bias: Tensor, shared: bool
    ) -> Tensor:
        k = weight.shape[0]
        kernels = weight.reshape(k, *self.weight_shape(layer)).flatten(0, 1)  # (K*out, C, k, k)
        pad = layer.kernel_size // 2
        if shared:  # all K kernels as one bank of K*out filters on the common images
            y = F.conv2d(h, kernels, bias.flatten(), padding=pad)
        else:  # (K, B, C, H, W) -> (B, K*C, H, W); groups=K keeps networks apart
            y = F.conv2d(
                h.transpose(0, 1).flatten(1, 2), kernels, bias.flatten(), padding=pad, groups=k
            )
        if layer.pool > 1:
            y = F.max_pool2d(y, layer.pool)
        return y.unflatten(1, (k, layer.out_size)).transpose(0, 1)  # (K, B, out, H', W')

    def modules(self, layer, shape: Shape) -> list[tuple[str, nn.Module]]:
        return [
            (
                "",
                nn.Conv2d(
                    layer.in_size, layer.out_size, layer.kernel_size, padding=layer.kernel_size // 2
                ),
            )
        ]

    def modules_after_activation(self, layer) -> list[tuple[str, nn.Module]]:
        return [("_pool", nn.MaxPool2d(layer.pool))] if layer.pool > 1 else []


# Without autograd, a conv with at most this fan-in, followed by max-pooling, is computed as
# pool² strided convolutions and an elementwise max: its large pre-pool map is never written
# (measured on 2 CPU cores for the paper's first layer: 2x faster; for its second layer 5x
# slower). With autograd the backward of the elementwise max (masks, where, masked_fill)
# costs more than it saves: a training step of the paper's configuration took 0.78 s this way
# and 0.60 s with conv + max-pool (1 thread, profiled).
SMALL_FAN_IN = 75


def _pooled_conv(x: Tensor, weight: Tensor, bias: Tensor, layer) -> Tensor:
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


def _window_columns(x: Tensor, layer) -> Tensor:
    """im2col of x grouped by position in the pooling window, with a column of ones for the
    bias: (p², B·H'·W', fan_in + 1)."""
    p, k = layer.pool, layer.kernel_size
    b, _, height, width = x.shape
    cols = F.unfold(x, k, padding=k // 2)  # (B, fan_in, H*W)
    cols = cols.reshape(b, layer.fan_in, height // p, p, width // p, p)  # (B, F, H', p, W', p)
    cols = cols.permute(3, 5, 0, 2, 4, 1).reshape(p * p, -1, layer.fan_in)
    return torch.cat([cols, cols.new_ones(p * p, cols.shape[1], 1)], dim=-1)


def _window_conv(cols: Tensor, mat: Tensor, x: Tensor, layer) -> Tensor:
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
    return out.permute(0, 3, 1, 2)
