"""The training objective: accuracy versus gauge-fixed diversity (paper, eqs. 10–14)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from .config import ObjectiveConfig
from .entropy import kl_entropy
from .hypernet import HyperNetwork
from .symmetry import gauge_fix, gauge_penalty
from .targets import ConvImpl, forward


@dataclass
class ObjectiveTerms:
    """The loss and its parts for one noise batch (all scalars)."""

    loss: Tensor
    cross_entropy: Tensor
    entropy: Tensor
    gauge_penalty: Tensor
    accuracy: Tensor


def objective(hypernet: HyperNetwork, z: Tensor, images: Tensor, labels: Tensor,
              cfg: ObjectiveConfig, conv_impl: ConvImpl | None = None) -> ObjectiveTerms:
    """λ·CE(T(x; G(z))) − Ĥ(S(G(z))) (eq. 11 with eqs. 12–14), or with cfg.gauge == "soft"
    λ·CE + γ·𝒢(G(z)) − Ĥ(G(z)) (eq. 10).

    z: (K, noise_dim); images: (K, B, C, H, W), network k's own images; labels: (K, B).
    CE is the mean over all K·B (network, image) pairs. The target is evaluated on the
    gauge-fixed weights, which compute the same function.
    """
    spec = hypernet.spec
    filters = hypernet(z)
    if cfg.gauge == "exact":
        filters = gauge_fix(spec, filters)
    logits = forward(spec, filters, images, conv_impl)  # (K, B, classes)
    ce = F.cross_entropy(logits.flatten(0, 1), labels.flatten())
    entropy = kl_entropy(spec.flatten(filters), cfg.entropy_metric,
                         cfg.entropy_dim or hypernet.cfg.noise_dim)
    penalty = gauge_penalty(spec, filters).mean() if cfg.gauge == "soft" else ce.new_zeros(())
    loss = cfg.lam * ce - entropy + cfg.gamma * penalty
    with torch.no_grad():
        accuracy = (logits.argmax(-1) == labels).float().mean()
    return ObjectiveTerms(loss, ce.detach(), entropy.detach(), penalty.detach(), accuracy)
