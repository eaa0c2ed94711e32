"""Kozachenko–Leonenko nearest-neighbour estimate of differential entropy (paper, eq. 14)."""

from __future__ import annotations

import math
from typing import Literal

import torch
from torch import Tensor

Metric = Literal["l1", "l2"]
LOG_EPS = 1e-8  # log(ε + LOG_EPS): duplicate samples (ε = 0) stay finite


def nearest_neighbour_distances(samples: Tensor, metric: Metric = "l1") -> Tensor:
    """Distance from each of the N rows of ``samples`` (N, D) to its nearest other row -> (N,).

    The N x N distances only pick the neighbours (without autograd); the N chosen distances
    are then recomputed differentiably, which has the gradient of the minimum at a fraction
    of the cost of back-propagating through all N² distances."""
    if samples.shape[0] < 2:
        raise ValueError("entropy needs at least two samples")
    if metric not in ("l1", "l2"):
        raise ValueError(f"unknown metric {metric!r}; use 'l1' or 'l2'")
    with torch.no_grad():
        # the matmul expansion of squared distances is inaccurate for near-duplicates
        dist = torch.cdist(
            samples,
            samples,
            p=1.0 if metric == "l1" else 2.0,
            compute_mode="donot_use_mm_for_euclid_dist",
        )
        nearest = dist.fill_diagonal_(float("inf")).argmin(dim=1)  # (N,)
    difference = samples - samples.index_select(0, nearest)  # (N, D); deterministic backward
    return (
        difference.abs().sum(1) if metric == "l1" else torch.linalg.vector_norm(difference, dim=1)
    )


def log_unit_ball_volume(dim: int, metric: Metric) -> float:
    """log V_d of the unit ball: L1 (cross-polytope) 2^d/d!, L2 π^{d/2}/Γ(d/2+1)."""
    if metric == "l1":
        return dim * math.log(2.0) - math.lgamma(dim + 1)
    return 0.5 * dim * math.log(math.pi) - math.lgamma(0.5 * dim + 1)


def kl_entropy(
    samples: Tensor, metric: Metric = "l1", dim: int | None = None, full: bool = False
) -> Tensor:
    """Ĥ = ψ(N) + (d/N) Σ log ε_i (eq. 14), ε_i the nearest-neighbour distance.

    samples: (N, D). ``dim`` is the paper's d (it takes the dimension of z; default D).
    ``full`` adds the constants the paper omits, −ψ(1) + log V_d, giving the consistent
    estimator of the differential entropy in nats (for d = D).
    """
    n = samples.shape[0]
    d = samples.shape[1] if dim is None else dim
    eps = nearest_neighbour_distances(samples, metric)
    estimate = torch.special.digamma(
        torch.tensor(float(n), dtype=samples.dtype, device=samples.device)
    )
    estimate = estimate + d * torch.log(eps + LOG_EPS).mean()
    if full:
        euler_gamma = 0.5772156649015329  # −ψ(1)
        estimate = estimate + euler_gamma + log_unit_ball_volume(d, metric)
    return estimate
