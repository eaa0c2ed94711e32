"""The hypernetwork G(z; φ) of section 2.4: an extractor E and one weight generator per layer.

E maps z to one code per filter of layers 1..m-1 and one code for the whole last layer; the
weight generator W_l, shared by all filters of layer l, maps a code to one filter (weights and
bias). All sub-networks are bias-free MLPs with leaky ReLU and batch norm after the activation
on hidden layers (implementation notes).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import cast

import torch
from torch import Tensor, nn

from ..distributed import all_reduce_sum, is_distributed
from ..errors import WeightgenError
from ..targets import TargetSpec


@dataclass(frozen=True)
class HypernetConfig:
    """Sizes and numerics of G; defaults are the paper's Table 2 for its MNIST CNN."""

    noise_dim: int = 300
    code_dim: int = 15
    extractor_hidden: tuple[int, ...] = (300, 300)
    # hidden widths of each layer's weight generator, in target-layer order; None: derived
    # from the target (default_generator_hidden), which gives Table 2's for the paper's CNN
    generator_hidden: tuple[tuple[int, ...], ...] | None = None
    leaky_slope: float = 0.05
    bn_eps: float = 1e-7
    bn_momentum: float = 0.02  # TF decay 0.98
    init_scale: float = 0.01  # variance scaling on fan-in

    def __post_init__(self) -> None:
        sizes = [
            self.noise_dim,
            self.code_dim,
            *self.extractor_hidden,
            *(w for hidden in self.generator_hidden or () for w in hidden),
        ]
        if any(size < 1 for size in sizes):
            raise WeightgenError("config: hypernet sizes must all be >= 1")
        if not 0 <= self.leaky_slope < 1:
            raise WeightgenError("config: hypernet.leaky_slope must be in [0, 1)")
        if self.bn_eps <= 0 or not 0 < self.bn_momentum <= 1 or self.init_scale <= 0:
            raise WeightgenError(
                "config: hypernet.bn_eps and init_scale must be > 0 and bn_momentum in (0, 1]"
            )


def default_generator_hidden(num_layers: int) -> tuple[tuple[int, ...], ...]:
    """Two hidden layers per weight generator: 40 wide for the first target layer, 100 for the
    middle ones, 60 for the last (the paper's Table 2 for its 4-layer CNN)."""
    if num_layers == 1:
        return ((60, 60),)
    return ((40, 40),) + ((100, 100),) * (num_layers - 2) + ((60, 60),)


def _truncated_normal_(weight: Tensor, scale: float) -> None:
    """TF variance scaling (fan-in, truncated normal): std = sqrt(scale / fan_in) / 0.8796."""
    fan_in = weight.shape[1]
    std = math.sqrt(scale / fan_in) / 0.87962566103423978
    nn.init.trunc_normal_(weight, std=std, a=-2 * std, b=2 * std)


class PooledBatchNorm1d(nn.BatchNorm1d):
    """BatchNorm1d whose training statistics pool over every process of a torchrun job, so a
    noise batch sharded over ranks is normalised exactly as the whole batch in one process
    (torch's SyncBatchNorm does this on GPUs only).

    The running statistics start from the first training batch's (not from mean 0, variance
    1): with momentum 0.02 the initial values would otherwise dominate them for hundreds of
    steps, and networks drawn in eval mode early in training would all be alike."""

    def forward(self, x: Tensor) -> Tensor:
        first = (
            self.training and not hasattr(self, "_started") and int(self.num_batches_tracked) == 0
        )
        if self.training:
            self._started = True
        if first:  # running statistics := this batch's, as if the momentum were 1
            saved, self.momentum = self.momentum, 1.0
            try:
                return self._normalise(x)
            finally:
                self.momentum = saved
        return self._normalise(x)

    def _normalise(self, x: Tensor) -> Tensor:
        if not (self.training and is_distributed()):
            return super().forward(x)
        width = x.shape[1]
        count = x.new_full((1,), float(x.shape[0]))
        totals = all_reduce_sum(torch.cat([x.sum(0), x.square().sum(0), count]))
        n = totals[-1]
        mean = totals[:width] / n
        var = totals[width : 2 * width] / n - mean.square()  # biased, as BatchNorm normalises
        with torch.no_grad():
            m = self.momentum
            self.running_mean.mul_(1 - m).add_(m * mean)
            self.running_var.mul_(1 - m).add_(m * var * n / (n - 1))
            self.num_batches_tracked.add_(1)
        return (x - mean) / torch.sqrt(var + self.eps) * self.weight + self.bias


class MLP(nn.Module):
    """Bias-free MLP: hidden layers BN(leaky_relu(x W)); output layer x W.

    Batch-norm statistics pool over every leading dimension: input (..., in) is reshaped to
    (prod(...), in), so a weight generator's statistics cover noise samples and filters alike.
    """

    def __init__(self, sizes: Sequence[int], cfg: HypernetConfig):
        super().__init__()
        self.linears = nn.ModuleList(nn.Linear(a, b, bias=False) for a, b in zip(sizes, sizes[1:]))
        self.norms = nn.ModuleList(
            PooledBatchNorm1d(width, eps=cfg.bn_eps, momentum=cfg.bn_momentum)
            for width in sizes[1:-1]
        )
        self.slope = cfg.leaky_slope
        for linear in cast("list[nn.Linear]", list(self.linears)):
            _truncated_normal_(linear.weight, cfg.init_scale)

    def forward(self, x: Tensor) -> Tensor:
        lead = x.shape[:-1]
        h = x.reshape(-1, x.shape[-1])  # (prod(lead), in)
        for linear, norm in zip(self.linears, self.norms):
            h = norm(nn.functional.leaky_relu(linear(h), self.slope))
        h = self.linears[-1](h)
        return h.reshape(*lead, h.shape[-1])


class HyperNetwork(nn.Module):
    """G(z): z (K, noise_dim) -> per-layer filter matrices [(K, out_l, n_l)] of the target."""

    extractor: MLP

    def __init__(self, spec: TargetSpec, cfg: HypernetConfig = HypernetConfig()):
        super().__init__()
        if cfg.generator_hidden is None:
            cfg = dataclasses.replace(
                cfg, generator_hidden=default_generator_hidden(len(spec.layers))
            )
        if len(cfg.generator_hidden) != len(spec.layers):
            raise WeightgenError(
                f"config: hypernet.generator_hidden has {len(cfg.generator_hidden)} entries, the "
                f"target has {len(spec.layers)} layers"
            )
        self.spec, self.cfg = spec, cfg
        # one code per filter of layers 1..m-1, one for the whole last layer
        self.codes_per_layer = [layer.out_size for layer in spec.layers[:-1]] + [1]
        num_codes = sum(self.codes_per_layer)
        self.extractor = MLP([cfg.noise_dim, *cfg.extractor_hidden, num_codes * cfg.code_dim], cfg)
        self.generators = nn.ModuleList()
        for index, (layer, hidden) in enumerate(zip(spec.layers, cfg.generator_hidden)):
            last = index == len(spec.layers) - 1
            out = layer.num_weights if last else layer.filter_size
            self.generators.append(MLP([cfg.code_dim, *hidden, out], cfg))

    def sample_noise(
        self,
        k: int,
        generator: torch.Generator | None = None,
        device: torch.device | str | None = None,
    ) -> Tensor:
        """z ~ U[-1, 1]^noise_dim, (k, noise_dim)."""
        z = torch.rand(k, self.cfg.noise_dim, generator=generator)
        return (2 * z - 1).to(device or next(self.parameters()).device)

    def forward(self, z: Tensor) -> list[Tensor]:
        return self.filters_from_codes(self.extractor(z))

    def filters_from_codes(self, codes: Tensor) -> list[Tensor]:
        """The weight generators' half of G: the extractor's output (K, num_codes·code_dim)
        -> per-layer filter matrices [(K, out_l, n_l)]."""
        k = codes.shape[0]
        codes = codes.reshape(k, -1, self.cfg.code_dim)  # (K, num_codes, code)
        filters = []
        for layer, generator, chunk in zip(
            self.spec.layers, self.generators, codes.split(self.codes_per_layer, dim=1)
        ):
            out = generator(chunk)  # (K, codes_l, generator output)
            filters.append(out.reshape(k, layer.out_size, layer.filter_size))
        return filters

    def num_parameters(self) -> dict[str, int]:
        """MLP weights and batch-norm parameters, as counted in the paper (631,240 + 2,400)."""
        mlp = sum(p.numel() for name, p in self.named_parameters() if "linears" in name)
        norm = sum(p.numel() for name, p in self.named_parameters() if "norms" in name)
        return {"mlp": mlp, "batch_norm": norm, "total": mlp + norm}


class MultiHyperNetwork(nn.Module):
    """K hypernetworks trained as one generator (beyond the paper): z (K', noise_dim) ->
    per-layer filter matrices [(K', out_l, n_l)], row i generated by component i mod K.

    Each component is a :class:`HyperNetwork` initialised independently; with
    ``share_extractor`` they share one extractor E (run once on every row) and keep their own
    weight generators (K heads on one extractor). Drawing noise batches of multiples of K
    gives every component an equal share.
    """

    def __init__(
        self, spec: TargetSpec, cfg: HypernetConfig, components: int, share_extractor: bool = False
    ):
        super().__init__()
        self.spec = spec
        self.components = nn.ModuleList(HyperNetwork(spec, cfg) for _ in range(components))
        self.cfg = self.heads[0].cfg
        self.shared_extractor: MLP | None = self.heads[0].extractor if share_extractor else None
        if share_extractor:  # the heads keep only their weight generators
            for component in self.heads[1:]:
                del component.extractor

    @property
    def heads(self) -> list[HyperNetwork]:
        """The K component generators, typed (a ModuleList yields plain Modules)."""
        return cast("list[HyperNetwork]", list(self.components))

    def sample_noise(
        self,
        k: int,
        generator: torch.Generator | None = None,
        device: torch.device | str | None = None,
    ) -> Tensor:
        """z ~ U[-1, 1]^noise_dim, (k, noise_dim), drawn as one HyperNetwork draws it."""
        return self.heads[0].sample_noise(k, generator, device)

    def forward(self, z: Tensor, component: int | None = None) -> list[Tensor]:
        """Row i by component i mod K, or every row by ``component`` when it is given."""
        if component is not None:
            head = self.heads[component]
            codes = (self.shared_extractor or head.extractor)(z)
            return head.filters_from_codes(codes)
        k, count = z.shape[0], len(self.components)
        if self.training and k < 2 * count:
            raise WeightgenError(
                f"batch-norm statistics of {count} components need at least "
                f"{2 * count} networks at once (2 per component), got {k}"
            )
        codes = self.shared_extractor(z) if self.shared_extractor is not None else None
        parts = []
        for c, head in enumerate(self.heads[:k]):  # component c: rows c, c + K, ...
            mine = codes[c::count] if codes is not None else head.extractor(z[c::count])
            parts.append(head.filters_from_codes(mine))
        owner_rows = torch.cat([torch.arange(c, k, count) for c in range(min(count, k))])
        order = owner_rows.argsort().to(z.device)  # rows grouped by component -> rows in order
        return [torch.cat(layer)[order] for layer in zip(*parts)]


@contextmanager
def batch_statistics(module: nn.Module) -> Iterator[None]:
    """Within the block, batch norm normalises with the statistics of each batch it is given
    (training mode), as the paper's original code samples networks; the running statistics
    are left as they were."""
    norms = [m for m in module.modules() if isinstance(m, nn.BatchNorm1d)]
    saved = [{name: buf.clone() for name, buf in m.named_buffers()} for m in norms]
    was_training = module.training
    module.train()
    try:
        yield
    finally:
        for norm, buffers in zip(norms, saved):
            for name, value in buffers.items():
                getattr(norm, name).copy_(value)
        module.train(was_training)
