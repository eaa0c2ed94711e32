"""Trivial symmetries of a target network and the gauge that breaks them (paper, section 2.2).

All functions take and return per-layer filter matrices [(K, out, n)] (see :mod:`targets`);
they are derived from the spec, so any stack of conv/linear layers with piecewise-linear,
positively homogeneous activations (ReLU, leaky ReLU) and max-pooling is covered.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from .targets import TargetSpec


def _scale_incoming(spec: TargetSpec, index: int, mat: Tensor, scale: Tensor) -> Tensor:
    """Multiply the columns that read input channel c of layer ``index`` by scale[:, c].

    mat: (K, out, fan_in + 1); scale: (K, C) with C the previous layer's filters.
    """
    k, out, n = mat.shape
    channels = scale.shape[1]
    block = spec.channel_block(index)
    weight = mat[..., :-1].reshape(k, out, channels, block) * scale[:, None, :, None]
    return torch.cat([weight.reshape(k, out, n - 1), mat[..., -1:]], dim=-1)


def _filter_scale(mat: Tensor) -> Tensor:
    """sqrt(mean square) of each filter (K, out, n) -> (K, out); 1 for an all-zero filter.

    Exact for every other filter, however small: the mean square is taken of the filter
    divided by its largest magnitude, so it neither underflows nor overflows (the original code
    adds 1e-8 under the root, which gauges the small weights of an untrained generator
    inexactly). The gradient stays finite at zero.
    """
    peak = mat.abs().amax(dim=-1)  # (K, out)
    nonzero = peak > 0
    peak = torch.where(nonzero, peak, 1.0)
    relative = (mat / peak.unsqueeze(-1)).square().mean(dim=-1)  # in [1/n, 1] unless zero
    scale = torch.where(nonzero, relative, 1.0).sqrt() * peak
    return torch.where(nonzero, scale, 1.0)


def gauge_fix(spec: TargetSpec, filters: Sequence[Tensor]) -> list[Tensor]:
    """S(θ): the representative of θ's scaling and logit-shift class (section 2.2).

    Layers 1..m-1 in order: each filter (weights and bias) is divided by
    s = sqrt(Σθ²/n), so Σθ² = n afterwards (an all-zero filter keeps s = 1), and the next layer's incoming weights for that channel
    are multiplied by s. The last layer's biases are shifted to sum to zero (the paper's gauge).
    """
    fixed = list(filters)
    for index in range(len(fixed) - 1):
        scale = _filter_scale(fixed[index])  # (K, out)
        fixed[index] = fixed[index] / scale.unsqueeze(-1)
        fixed[index + 1] = _scale_incoming(spec, index + 1, fixed[index + 1], scale)
    last = fixed[-1]
    bias = last[..., -1:]
    fixed[-1] = torch.cat([last[..., :-1], bias - bias.mean(dim=1, keepdim=True)], dim=-1)
    return fixed


def gauge_penalty(spec: TargetSpec, filters: Sequence[Tensor]) -> Tensor:
    """𝒢(θ) of eq. 8 for each of the K networks: Σ_{l<m,i} (Σ_k θ² − n)² + (Σ_i b_m,i)²."""
    penalty = sum(
        ((mat.square().sum(dim=-1) - mat.shape[-1]) ** 2).sum(dim=-1) for mat in filters[:-1]
    )
    logit_bias_sum = filters[-1][..., -1].sum(dim=-1)
    return penalty + logit_bias_sum.square()


# ---- symmetry transforms: T(x; transform(θ)) == T(x; θ) ------------------------------------


def scale_filters(
    spec: TargetSpec, filters: Sequence[Tensor], index: int, factors: Tensor
) -> list[Tensor]:
    """Scale filter i of layer ``index`` by factors[..., i] > 0 and unscale the next layer.

    factors: (out,) or (K, out) positive.
    """
    if index >= len(spec.layers) - 1:
        raise ValueError("the last layer has no next layer to absorb a scaling")
    out = list(filters)
    factors = factors.expand(out[index].shape[0], -1)
    out[index] = out[index] * factors.unsqueeze(-1)
    out[index + 1] = _scale_incoming(spec, index + 1, out[index + 1], 1.0 / factors)
    return out


def shift_logits(filters: Sequence[Tensor], shift: Tensor | float) -> list[Tensor]:
    """Add the same number to every logit (per network: shift of shape (K,) or scalar)."""
    out = list(filters)
    last = out[-1]
    shift = torch.as_tensor(shift, dtype=last.dtype, device=last.device).reshape(-1, 1, 1)
    out[-1] = torch.cat([last[..., :-1], last[..., -1:] + shift], dim=-1)
    return out


def permute_filters(
    spec: TargetSpec, filters: Sequence[Tensor], index: int, permutation: Tensor
) -> list[Tensor]:
    """Reorder the filters of layer ``index`` and the matching input channels of the next.

    permutation: (out,) for every network alike, or (K, out), one order per network.
    """
    if index >= len(spec.layers) - 1:
        raise ValueError("permuting the last layer's neurons changes the class order")
    out = list(filters)
    k, filters_l, n_l = out[index].shape
    order = permutation.expand(k, filters_l)  # (K, out)
    out[index] = out[index].gather(1, order.unsqueeze(-1).expand(k, filters_l, n_l))
    nxt = out[index + 1]
    rows, n = nxt.shape[1:]
    block = spec.channel_block(index + 1)
    weight = nxt[..., :-1].reshape(k, rows, filters_l, block)
    weight = weight.gather(2, order[:, None, :, None].expand(k, rows, filters_l, block))
    out[index + 1] = torch.cat([weight.reshape(k, rows, n - 1), nxt[..., -1:]], dim=-1)
    return out


def canonical_order(spec: TargetSpec, filters: Sequence[Tensor]) -> list[Tensor]:
    """A representative of θ's permutation class: in every layer but the last, the filters
    sorted by the sum of their entries (weights and bias), the next layer's input channels
    permuted to match, layer by layer from the first.

    Permuted copies of one network map to the same point (ties aside), so an entropy of
    canonical weights does not count them as diverse. Apply after :func:`gauge_fix`. The order
    is chosen without gradient; the result is differentiable in θ wherever the order is strict.
    """
    out = list(filters)
    for index in range(len(out) - 1):
        with torch.no_grad():
            order = out[index].sum(dim=-1).argsort(dim=1)  # (K, out)
        out = permute_filters(spec, out, index, order)
    return out
