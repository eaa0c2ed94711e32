"""Diversity that respects every symmetry: gauge-fixed distance, permutation-aligned distance
(filters matched layer by layer with an assignment solver), functional disagreement, and the
paper's failure mode (section 4.2.2: diversity hidden in filters the next layer ignores).

All functions take gauge-fixed filter matrices [(K, out, n)] of K networks.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from scipy.optimize import linear_sum_assignment
from torch import Tensor

from ..evaluate import prediction_disagreement
from ..symmetry import permute_filters
from ..targets import TargetSpec


def align(spec: TargetSpec, reference: Sequence[Tensor], other: Sequence[Tensor]) -> list[Tensor]:
    """Permute ``other``'s filters (one network: [(1, out, n)]) layer by layer to best match
    ``reference`` in squared distance; the function computed by ``other`` is unchanged."""
    aligned = list(other)
    for index in range(len(spec.layers) - 1):
        a, b = reference[index][0], aligned[index][0]  # (out, n)
        cost = torch.cdist(a.double(), b.double()).square()
        _, columns = linear_sum_assignment(cost.numpy())
        aligned = permute_filters(spec, aligned, index, torch.as_tensor(columns))
    return aligned


def pairwise_distances(
    spec: TargetSpec, filters: Sequence[Tensor], permutation_aware: bool
) -> Tensor:
    """Euclidean distances between all pairs of the K networks -> (K, K)."""
    k = filters[0].shape[0]
    flat = spec.flatten(filters).double()
    if not permutation_aware:
        return torch.cdist(flat, flat)
    out = torch.zeros(k, k, dtype=torch.float64)
    for i in range(k):
        ref = [f[i : i + 1] for f in filters]
        for j in range(i + 1, k):
            moved = align(spec, ref, [f[j : j + 1] for f in filters])
            out[i, j] = out[j, i] = (spec.flatten(moved).double() - flat[i]).norm()
    return out


def diversity_summary(spec: TargetSpec, filters: Sequence[Tensor], logits: Tensor) -> dict:
    """Mean pairwise distance without and with permutation alignment, the share of distance
    that permutations explain (in [0, 1]), and the mean pairwise prediction disagreement.

    The layer-by-layer alignment is greedy and can end farther apart than no permutation at
    all; the identity is a permutation too, so each pair's aligned distance is the smaller of
    the two.

    logits: (K, N, C) of the same networks on shared images.
    """
    k = filters[0].shape[0]
    mask = ~torch.eye(k, dtype=torch.bool)
    plain_pairs = pairwise_distances(spec, filters, permutation_aware=False)
    aligned_pairs = torch.minimum(
        pairwise_distances(spec, filters, permutation_aware=True), plain_pairs
    )
    plain, aligned = plain_pairs[mask].mean().item(), aligned_pairs[mask].mean().item()
    return {
        "mean_gauge_fixed_distance": plain,
        "mean_permutation_aligned_distance": aligned,
        "share_explained_by_permutations": 1.0 - aligned / plain if plain > 0 else 0.0,
        "mean_prediction_disagreement": prediction_disagreement(logits),
    }


def filter_importance(spec: TargetSpec, filters: Sequence[Tensor]) -> list[dict[str, Tensor]]:
    """Per filter of layers 1..m-1: variance across samples (summed over its elements) and
    mean norm of the outgoing weights that read it in the next layer."""
    rows = []
    for index in range(len(spec.layers) - 1):
        variance = filters[index].double().var(0).sum(-1)  # (out,)
        nxt = filters[index + 1][..., :-1]
        k, rows_next, _ = nxt.shape
        channels = filters[index].shape[1]
        outgoing = nxt.reshape(k, rows_next, channels, -1).double()  # (K, out', C, block)
        norm = outgoing.square().sum((1, 3)).sqrt().mean(0)  # (C,)
        rows.append({"variance": variance, "outgoing_norm": norm})
    return rows


def failure_mode(spec: TargetSpec, filters: Sequence[Tensor], quantile: float = 0.25) -> dict:
    """Per layer: the share of across-sample variance held by the ``quantile`` of filters with
    the smallest outgoing weights (≈ quantile when diversity ignores importance; near 1 in the
    paper's failure mode), and the rank correlation of variance with outgoing norm."""
    result = {}
    for layer, stats in zip(spec.layers, filter_importance(spec, filters)):
        variance, norm = stats["variance"], stats["outgoing_norm"]
        count = max(1, int(round(quantile * len(norm))))
        weakest = norm.argsort()[:count]
        share = (variance[weakest].sum() / variance.sum()).item() if variance.sum() > 0 else 0.0
        result[layer.name] = {
            "variance_share_of_weakest": share,
            "weakest_fraction": count / len(norm),
            "spearman_variance_vs_outgoing_norm": _spearman(variance, norm),
        }
    return result


def _spearman(a: Tensor, b: Tensor) -> float:
    ra, rb = a.argsort().argsort().double(), b.argsort().argsort().double()
    ra, rb = ra - ra.mean(), rb - rb.mean()
    denominator = (ra.norm() * rb.norm()).item()
    return (ra @ rb).item() / denominator if denominator > 0 else 0.0
