"""The training objective: accuracy versus gauge-fixed diversity (paper, eqs. 10–14)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
import torch.distributed
import torch.nn.functional as F
from torch import Tensor

from .distributed import gather_rows, is_distributed, mean_over_ranks
from .entropy import kl_entropy
from .errors import check_config
from .models.hypernet import HyperNetwork
from .symmetry import canonical_order, gauge_fix, gauge_penalty
from .targets import ConvImpl, TargetSpec, forward


@dataclass(frozen=True)
class ObjectiveConfig:
    """L = λ·CE − Ĥ(S(G(z))) (eq. 11), or λ·CE + γ·𝒢 − Ĥ(G(z)) with the soft gauge (eq. 10)."""

    lam: float = 1e3  # written ``lambda`` in files
    gauge: Literal["exact", "soft", "none"] = "exact"
    gamma: float = 0.0
    entropy_metric: Literal["l1", "l2"] = "l1"
    entropy_dim: int | None = None  # d of eq. 14; None: the dimension of z
    # beyond the paper: the weight entropy of permutation-canonical weights (filters sorted)
    canonical_permutation: bool = False
    # beyond the paper: + β·Ĥ of the networks' class probabilities on shared training images
    function_weight: float = 0.0  # β; 0 switches the term off
    function_images: int = 16  # shared images per step (at most train.images_per_network)

    def __post_init__(self) -> None:
        check_config(self.lam > 0, "objective.lambda", "must be > 0")
        check_config(self.gamma >= 0, "objective.gamma", "must be >= 0")
        check_config(
            self.entropy_dim is None or self.entropy_dim > 0, "objective.entropy_dim", "must be > 0"
        )
        check_config(self.function_weight >= 0, "objective.function_weight", "must be >= 0")
        check_config(self.function_images >= 1, "objective.function_images", "must be >= 1")


@dataclass
class ObjectiveTerms:
    """The loss and its parts for one noise batch (all scalars).

    ``loss`` is what this process back-propagates; ``value`` is the loss of the whole global
    batch (the same number on every rank, equal to ``loss`` in a single process). The other
    terms are detached global values too.
    """

    loss: Tensor
    value: Tensor
    cross_entropy: Tensor
    entropy: Tensor
    gauge_penalty: Tensor
    accuracy: Tensor
    function_entropy: Tensor


def objective(
    hypernet: HyperNetwork | torch.nn.Module,
    z: Tensor,
    images: Tensor,
    labels: Tensor,
    cfg: ObjectiveConfig,
    conv_impl: ConvImpl | None = None,
    shared_images: Tensor | None = None,
    precision: str = "float32",
) -> ObjectiveTerms:
    """λ·CE(T(x; G(z))) − Ĥ(S(G(z))) (eq. 11 with eqs. 12–14), or with cfg.gauge == "soft"
    λ·CE + γ·𝒢(G(z)) − Ĥ(G(z)) (eq. 10).

    z: (K, noise_dim); images: (K, B, C, H, W), network k's own images; labels: (K, B).
    CE is the mean over all K·B (network, image) pairs. The target is evaluated on the
    gauge-fixed weights, which compute the same function.

    Beyond the paper: with ``cfg.canonical_permutation`` the weight entropy is taken of
    permutation-canonical weights (:func:`canonical_order`); with ``cfg.function_weight`` β > 0
    the loss subtracts β·Ĥ_f, the entropy estimate of the networks' class probabilities on
    ``shared_images`` (M, C, H, W), the same images for every network (and every rank), which
    is invariant to every symmetry of the weights.

    ``precision`` "bfloat16" runs the target networks' forward and backward under autocast
    (mixed precision); the hypernetwork, gauge, entropy and loss stay float32.
    """
    generator = getattr(hypernet, "module", hypernet)  # unwrap DistributedDataParallel
    spec = generator.spec
    filters = hypernet(z)
    if cfg.gauge == "exact":
        filters = gauge_fix(spec, filters)
    with torch.autocast(images.device.type, dtype=torch.bfloat16, enabled=precision == "bfloat16"):
        logits = forward(spec, filters, images, conv_impl).float()  # (K, B, classes)
    ce = F.cross_entropy(logits.flatten(0, 1), labels.flatten())
    d = cfg.entropy_dim or generator.cfg.noise_dim
    entropy = weight_entropy(spec, filters, cfg, d)
    function_entropy = ce.new_zeros(())
    if cfg.function_weight > 0:
        if shared_images is None:
            raise ValueError("objective.function_weight > 0 needs shared_images")
        function_entropy = output_entropy(spec, filters, shared_images, cfg, d, conv_impl)
    penalty = gauge_penalty(spec, filters).mean() if cfg.gauge == "soft" else ce.new_zeros(())
    # DDP averages gradients over W ranks: the per-rank means of CE and 𝒢 average to the
    # global means, while Ĥ's gradient is a sum over ranks' rows, hence the factor W
    world = torch.distributed.get_world_size() if is_distributed() else 1
    diversity = entropy + cfg.function_weight * function_entropy
    loss = cfg.lam * ce + cfg.gamma * penalty - world * diversity
    with torch.no_grad():
        accuracy = mean_over_ranks((logits.argmax(-1) == labels).float().mean())
        ce_all, penalty_all = mean_over_ranks(ce), mean_over_ranks(penalty)
        value = combined_loss(cfg, ce_all, penalty_all, entropy, function_entropy)
    return ObjectiveTerms(
        loss,
        value.detach(),
        ce_all,
        entropy.detach(),
        penalty_all,
        accuracy,
        function_entropy.detach(),
    )


def combined_loss(
    cfg: ObjectiveConfig,
    ce: Tensor | float,
    penalty: Tensor | float,
    entropy: Tensor | float,
    function_entropy: Tensor | float,
) -> Tensor | float:
    """λ·CE + γ·𝒢 − Ĥ − β·Ĥ_f: eq. 11 (eq. 10 with the soft gauge), with the function-space
    term beyond the paper."""
    return cfg.lam * ce + cfg.gamma * penalty - (entropy + cfg.function_weight * function_entropy)


def weight_entropy(
    spec: TargetSpec, filters: list[Tensor], cfg: ObjectiveConfig, d: int, gather: bool = True
) -> Tensor:
    """Ĥ of the networks' weights (eq. 14): of the filters as given, or of their
    permutation-canonical form; over every rank's rows when ``gather``."""
    diverse = canonical_order(spec, filters) if cfg.canonical_permutation else filters
    rows = spec.flatten(diverse)
    return kl_entropy(gather_rows(rows) if gather else rows, cfg.entropy_metric, d)


def output_entropy(
    spec: TargetSpec,
    filters: list[Tensor],
    images: Tensor,
    cfg: ObjectiveConfig,
    d: int,
    conv_impl: ConvImpl | None = None,
    gather: bool = True,
) -> Tensor:
    """Ĥ_f: the entropy estimate of the networks' class probabilities on shared images
    (M, C, H, W), invariant to every weight-space symmetry."""
    probs = forward(spec, filters, images, conv_impl).softmax(-1)  # (K, M, classes)
    rows = probs.flatten(1)
    return kl_entropy(gather_rows(rows) if gather else rows, cfg.entropy_metric, d)
