"""MNFG: multiplicative normalising flows with a Gaussian posterior (Louizos & Welling 2017),
on any target spec — the paper's baseline.

Each layer's weights are W ~ N(z ⊙ μ, σ²) with one multiplicative z per output filter (conv)
or per input unit (dense). z comes from a Gaussian q0 pushed through a masked RealNVP flow;
the intractable KL(q(W) || p(W)) is bounded with an auxiliary model r(z | W), itself a Gaussian
behind a second flow (eq. 14 of Louizos & Welling):
KL ≤ KL(q(W|z) || p(W)) + log q(z) − log r(z | W), for a standard-normal prior p(W).
Training uses local reparameterisation; networks are sampled explicitly (z through the flow,
then W) and exported in the exchange format.

Facts from the authors' public code (not the paper): the flow masks are Bernoulli(1/2) drawn
at every application, gate biases start at 2, log-std starts at −9, q0's log-variance at
log 0.1, the weight std is clipped (0.5 here), and log q(z) uses the exact entropy of q0.
r's mean and precision read tanh(cᵀW) for conv and dense layers alike (the paper's form; the
authors' conv code leaves out the tanh).
"""

from __future__ import annotations

import functools
import math
import operator
from collections.abc import Sequence
from dataclasses import dataclass
from typing import cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import WeightgenError, check_value
from ..targets import LayerSpec, TargetSpec

LOG_2PI = math.log(2 * math.pi)


@dataclass(frozen=True)
class MNFGConfig:
    flows_q: int = 2
    flows_r: int = 2
    hidden_q: int = 50
    hidden_r: int = 100
    std_clip: float = 0.5
    batch_size: int = 100
    steps: int = 55000  # 100 epochs of 55,000 images
    lr: float = 1e-3

    def __post_init__(self) -> None:
        check_value("mnfg.flows_q", self.flows_q, ">= 0")
        check_value("mnfg.flows_r", self.flows_r, ">= 0")
        check_value("mnfg.hidden_q", self.hidden_q, ">= 1")
        check_value("mnfg.hidden_r", self.hidden_r, ">= 1")
        check_value("mnfg.std_clip", self.std_clip, "> 0")
        check_value("mnfg.batch_size", self.batch_size, ">= 1")
        check_value("mnfg.steps", self.steps, ">= 0")
        check_value("mnfg.lr", self.lr, "> 0")


def _glorot_(t: Tensor, fan_in: int, fan_out: int) -> Tensor:
    return nn.init.normal_(t, std=math.sqrt(4.0 / (fan_in + fan_out)))


class CouplingFlow(nn.Module):
    """Masked RealNVP in the MNF form: per step, with a mask m,
    z' = m⊙z + (1−m)⊙(g⊙z + (1−g)⊙μ), (μ, logit g) = MLP(m⊙z), log|det| = Σ (1−m) log g."""

    def __init__(self, dim: int, steps: int, hidden: int):
        super().__init__()
        self.dim = dim
        self.hidden = nn.ModuleList(nn.Linear(dim, hidden) for _ in range(steps))
        self.mean = nn.ModuleList(nn.Linear(hidden, dim) for _ in range(steps))
        self.gate = nn.ModuleList(nn.Linear(hidden, dim) for _ in range(steps))
        linears = cast("list[nn.Linear]", [*self.hidden, *self.mean, *self.gate])
        for lin in linears:
            _glorot_(lin.weight, lin.in_features, lin.out_features)
            nn.init.zeros_(lin.bias)
        for lin in linears[2 * steps :]:  # the gates
            nn.init.constant_(lin.bias, 2.0)

    def draw_masks(
        self, n: int, generator: torch.Generator | None = None, device: torch.device | None = None
    ) -> list[Tensor]:
        return [
            torch.bernoulli(torch.full((n, self.dim), 0.5), generator=generator).to(device)
            for _ in self.hidden
        ]

    def _step(self, index: int, masked: Tensor) -> tuple[Tensor, Tensor]:
        h = torch.tanh(self.hidden[index](masked))
        return self.mean[index](h), torch.sigmoid(self.gate[index](h))

    def forward(self, z: Tensor, masks: Sequence[Tensor] | None = None) -> tuple[Tensor, Tensor]:
        """z (n, dim) -> (z', log|det ∂z'/∂z| of shape (n,))."""
        masks = masks if masks is not None else self.draw_masks(z.shape[0], device=z.device)
        logdet = z.new_zeros(z.shape[0])
        for index, m in enumerate(masks):
            mu, g = self._step(index, m * z)
            z = m * z + (1 - m) * (g * z + (1 - g) * mu)
            logdet = logdet + ((1 - m) * torch.log(g)).sum(-1)
        return z, logdet

    def inverse(self, z: Tensor, masks: Sequence[Tensor]) -> Tensor:
        for index in reversed(range(len(masks))):
            m = masks[index]
            mu, g = self._step(index, m * z)  # m⊙z is unchanged by the step
            z = m * z + (1 - m) * (z - (1 - g) * mu) / g
        return z


@dataclass
class LayerNoise:
    """The random inputs of one MNF layer's sampled weights: q0's standard-normal noise
    (n, zdim), the flow's Bernoulli masks (one (n, zdim) per step) and the standard-normal
    weight and bias noise in filter-matrix layout (n, out, fan_in + 1)."""

    base: Tensor
    masks: list[Tensor]
    weights: Tensor

    def mix(self, other: LayerNoise, t: Tensor) -> LayerNoise:
        """Noise of the interpolated path, t·self + (1−t)·other for each t (points,); the
        Gaussian parts are mixed, the masks are this draw's (a path keeps one flow)."""

        def line(a: Tensor, b: Tensor) -> Tensor:
            w = t.to(a).view(-1, *[1] * (a.dim() - 1))
            return w * a + (1 - w) * b

        return LayerNoise(
            line(self.base, other.base),
            [m.expand(len(t), -1) for m in self.masks],
            line(self.weights, other.weights),
        )


MNF_KINDS = ("conv", "linear")  # the layer kinds with a multiplicative-normalising-flow form


class MNFLayer(nn.Module):
    """One conv or dense layer of the target with an MNF posterior over its weights."""

    def __init__(self, layer: LayerSpec, cfg: MNFGConfig):
        super().__init__()
        self.layer, self.cfg = layer, cfg
        if layer.kind not in MNF_KINDS:
            raise WeightgenError(
                f"mnfg: layer {layer.name} is of kind {layer.kind!r}; MNF layers exist for "
                f"{' and '.join(MNF_KINDS)} only"
            )
        self.conv = layer.kind == "conv"
        # z per output filter (conv) or per input unit (dense)
        self.zdim = layer.out_size if self.conv else layer.in_size
        shape = layer.weight_shape
        self.mu_w = nn.Parameter(_glorot_(torch.empty(shape), layer.fan_in, layer.out_size))
        self.log_std_w = nn.Parameter(-9.0 + 1e-3 * torch.randn(shape))
        self.mu_b = nn.Parameter(torch.zeros(layer.out_size))
        self.log_std_b = nn.Parameter(-9.0 + 1e-3 * torch.randn(layer.out_size))
        self.q0_mean = nn.Parameter(
            _glorot_(torch.empty(self.zdim), self.zdim, 1) + (1.0 if cfg.flows_q == 0 else 0.0)
        )
        self.q0_log_var = nn.Parameter(math.log(0.1) + 1e-3 * torch.randn(self.zdim))
        self.r_c = nn.Parameter(_glorot_(torch.empty(self.zdim), self.zdim, 1))
        self.r_mean = nn.Parameter(_glorot_(torch.empty(self.zdim), self.zdim, 1))
        self.r_log_precision = nn.Parameter(_glorot_(torch.empty(self.zdim), self.zdim, 1))
        self.flow_q = CouplingFlow(self.zdim, cfg.flows_q, cfg.hidden_q)
        self.flow_r = CouplingFlow(self.zdim, cfg.flows_r, cfg.hidden_r)

    # ---- posterior pieces ------------------------------------------------------------------
    def std_w(self) -> Tensor:
        return self.log_std_w.exp().clamp(max=self.cfg.std_clip)

    def std_b(self) -> Tensor:
        return self.log_std_b.exp().clamp(max=self.cfg.std_clip)

    def sample_z(self, n: int, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
        """z_T ~ q(z) = flow(N(q0_mean, exp(q0_log_var))): (n, zdim) and log|det| (n,)."""
        eps = torch.randn(n, self.zdim, generator=generator).to(self.q0_mean.device)
        z0 = self.q0_mean + (0.5 * self.q0_log_var).exp() * eps
        masks = self.flow_q.draw_masks(n, generator, self.q0_mean.device)
        return self.flow_q(z0, masks)

    def _scale_rows(self, z: Tensor) -> tuple[Tensor, Tensor]:
        """Mean weights and biases of q(W | z) for z (..., zdim): (..., *weight_shape) and
        (..., out)."""
        if self.conv:  # z scales whole output filters, bias included
            return self.mu_w * z[..., None, None, None], self.mu_b * z
        # z scales input columns, not the bias
        return self.mu_w * z.unsqueeze(-2), self.mu_b.expand(*z.shape[:-1], -1)

    def gaussian_kl(self, z: Tensor) -> Tensor:
        """KL(q(W | z) || N(0, I)) over weights and biases, in closed form."""
        mean_w, mean_b = self._scale_rows(z)
        var_w, var_b = self.std_w().square(), self.std_b().square()
        kl_w = (-0.5 * var_w.log() + 0.5 * (var_w + mean_w.square()) - 0.5).sum()
        kl_b = (-0.5 * var_b.log() + 0.5 * (var_b + mean_b.square()) - 0.5).sum()
        return kl_w + kl_b

    def kl_bound(self) -> Tensor:
        """One-sample estimate of the bound KL(q(W|z)||p) + log q(z) − log r(z|W) (nats)."""
        z, logdet_q = self.sample_z(1)
        z, logdet_q = z[0], logdet_q[0]
        mean_w, mean_b = self._scale_rows(z)
        var_w, var_b = self.std_w().square(), self.std_b().square()
        log_q = -0.5 * (LOG_2PI + self.q0_log_var + 1).sum() - logdet_q
        # r(z | W): a = tanh(cᵀW) over the z axis, W ~ q(W|z) by local reparameterisation
        if self.conv:  # (out, fan_in): z axis first
            mw, vw = mean_w.flatten(1), var_w.flatten(1)
            a_mean = (self.r_c @ mw) + (self.r_c * mean_b).sum()  # (fan_in,)
            a_var = (self.r_c.square() @ vw) + (self.r_c.square() * var_b).sum()
        else:  # (out, in): z axis last
            a_mean, a_var = mean_w @ self.r_c, var_w @ self.r_c.square()  # (out,)
        a = torch.tanh(a_mean + a_var.sqrt() * torch.randn_like(a_mean))
        r_mean = self.r_mean * a.mean()
        r_log_precision = self.r_log_precision * a.mean()
        z_r, logdet_r = self.flow_r(z.unsqueeze(0))
        log_r = (
            logdet_r[0]
            + (
                -0.5 * r_log_precision.exp() * (z_r[0] - r_mean).square()
                - 0.5 * LOG_2PI
                + 0.5 * r_log_precision
            ).sum()
        )
        return self.gaussian_kl(z) + log_q - log_r

    def forward(self, x: Tensor) -> Tensor:
        """Local reparameterisation with one z per example: pre-activations of x."""
        z, _ = self.sample_z(x.shape[0])
        var_w, var_b = self.std_w().square(), self.std_b().square()
        if self.conv:
            pad = self.layer.kernel_size // 2
            mean = (F.conv2d(x, self.mu_w, self.mu_b, padding=pad)) * z[:, :, None, None]
            var = F.conv2d(x.square(), var_w, var_b, padding=pad)
        else:
            mean = F.linear(x * z, self.mu_w, self.mu_b)
            var = F.linear(x.square(), var_w, var_b)
        return mean + var.clamp_min(1e-16).sqrt() * torch.randn_like(mean)

    # ---- explicit networks ---------------------------------------------------------------
    @torch.no_grad()
    def draw_noise(self, n: int, generator: torch.Generator | None = None) -> LayerNoise:
        """Everything random about n sampled weight sets of this layer."""
        device = self.q0_mean.device
        base = torch.randn(n, self.zdim, generator=generator).to(device)
        masks = self.flow_q.draw_masks(n, generator, device)
        weights = torch.stack(
            [
                torch.cat(
                    [  # per network: weight noise, then bias noise
                        torch.randn(self.mu_w.shape, generator=generator).flatten(1),
                        torch.randn(self.layer.out_size, generator=generator).unsqueeze(1),
                    ],
                    1,
                )
                for _ in range(n)
            ]
        ).to(device)  # (n, out, fan_in + 1)
        return LayerNoise(base, masks, weights)

    @torch.no_grad()
    def filters_from_noise(self, noise: LayerNoise) -> Tensor:
        """The weight sets a noise draw stands for, as filter matrices (n, out, fan_in + 1):
        z = flow(q0 mean + q0 std ⊙ base), then W = z-scaled means + std ⊙ weight noise."""
        z, _ = self.flow_q(
            self.q0_mean + (0.5 * self.q0_log_var).exp() * noise.base, noise.masks
        )  # (n, zdim)
        mean_w, mean_b = self._scale_rows(z)  # (n, *weight_shape), (n, out)
        mean = torch.cat([mean_w.flatten(2), mean_b.unsqueeze(2)], 2)  # (n, out, fan_in + 1)
        std = torch.cat([self.std_w().flatten(1), self.std_b().unsqueeze(1)], 1)
        return mean + std * noise.weights

    def sample_filters(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """n explicit weight sets as filter matrices (n, out, fan_in + 1)."""
        return self.filters_from_noise(self.draw_noise(n, generator))


class MNFG(nn.Module):
    """The target architecture of a spec with MNF layers."""

    def __init__(self, spec: TargetSpec, cfg: MNFGConfig = MNFGConfig()):
        super().__init__()
        self.spec = spec
        self.layers = nn.ModuleList(MNFLayer(layer, cfg) for layer in spec.layers)

    @property
    def mnf_layers(self) -> list[MNFLayer]:
        """The MNF layers, typed (a ModuleList yields plain Modules)."""
        return cast("list[MNFLayer]", list(self.layers))

    def forward(self, x: Tensor) -> Tensor:
        h = x
        for spec_layer, layer in zip(self.spec.layers, self.layers):
            if spec_layer.kind == "linear":
                h = h.flatten(1)
            h = layer(h)
            if spec_layer.pool > 1:
                h = F.max_pool2d(h, spec_layer.pool)
            if spec_layer.activation == "relu":
                h = F.relu(h)
            elif spec_layer.activation == "leaky_relu":
                h = F.leaky_relu(h, spec_layer.leaky_slope)
        return h

    def kl_bound(self) -> Tensor:
        return functools.reduce(operator.add, (layer.kl_bound() for layer in self.mnf_layers))

    def sample_filters(self, n: int, generator: torch.Generator | None = None) -> list[Tensor]:
        """n explicit networks, each layer's z drawn through its own flow."""
        return [layer.sample_filters(n, generator) for layer in self.mnf_layers]

    def interpolated_path(
        self, t: Tensor, generator: torch.Generator | None = None
    ) -> list[Tensor]:
        """Networks along the interpolated path between two fresh samples (Fig. 5): each
        layer's Gaussian noise is t·ε1 + (1−t)·ε2, its flow masks those of the first sample, so
        t = 1 and t = 0 are two ordinary MNFG samples. Filter matrices (points, out, fan_in+1)."""
        path = []
        for layer in self.mnf_layers:
            one, two = layer.draw_noise(1, generator), layer.draw_noise(1, generator)
            path.append(layer.filters_from_noise(one.mix(two, t)))
        return path
