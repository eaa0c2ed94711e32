"""Accuracy of many generated networks on shared images, and of their ensembles."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor
from tqdm import tqdm

from .data import Split
from .distributed import Context, gather_shards, split
from .errors import WeightgenError
from .interrupts import check as check_interrupt
from .targets import ConvImpl, TargetSpec, default_conv_impl, forward

# Arithmetic of evaluation. bfloat16 rounds weights and activations to 8 significant bits and
# runs about 2x faster on CPUs with AVX512-BF16 and on GPUs; logits come back as float32.
PRECISIONS = {"float32": torch.float32, "bfloat16": torch.bfloat16}


def warn_if_slow_bfloat16(precision: str, device: torch.device | str) -> None:
    """One line on stderr when bfloat16 is asked for on a CPU without bfloat16 arithmetic
    (AVX512-BF16 or AMX), where it runs 10-16x slower than float32 (BENCHMARKS.md)."""
    if precision != "bfloat16" or torch.device(device).type != "cpu":
        return
    try:
        with open("/proc/cpuinfo") as f:
            flags = f.read()
    except OSError:
        return
    if "avx512_bf16" not in flags and "amx_bf16" not in flags:
        import sys

        print(
            "weightgen: warning: this CPU has no bfloat16 arithmetic (AVX512-BF16 or AMX); "
            "bfloat16 runs about 10x slower than float32 here",
            file=sys.stderr,
        )


def precision_dtype(name: str) -> torch.dtype:
    if name not in PRECISIONS:
        raise WeightgenError(f"unknown precision {name!r}; choose one of {sorted(PRECISIONS)}")
    return PRECISIONS[name]


@torch.no_grad()
def predict(
    spec: TargetSpec,
    filters: Sequence[Tensor],
    images: Tensor,
    chunk_network_images: int = 8192,
    image_chunk: int | None = None,
    conv_impl: ConvImpl | None = None,
    precision: str = "float32",
    on_progress: Callable[[int], None] | None = None,
) -> Tensor:
    """Logits of K networks on N shared images, (K, N, classes), in float32.

    Computed in chunks of ``image_chunk`` images and, for the grouped convolutions, of about
    ``chunk_network_images`` (network, image) pairs, which bounds the memory of the first
    layer's activations (about 100 kB per pair for the paper's CNN). By default 128 images a
    chunk for the per-network path (one network's activations then stay in cache: 1.4x the
    float32 rate of 1,024-image chunks on 2 CPU cores) and 1,024 for the grouped one.
    ``precision`` is the arithmetic of the forward pass ("float32" or "bfloat16").
    ``on_progress(passes)`` is called after each chunk with its (network, image) passes.
    """
    k = filters[0].shape[0]
    if k == 0:
        return images.new_zeros((0, len(images), spec.num_classes))
    dtype = precision_dtype(precision)
    if dtype != images.dtype:
        filters, images = [mat.to(dtype) for mat in filters], images.to(dtype)
    per_network = (conv_impl or default_conv_impl(images.device)) == "per_network"
    image_chunk = min(image_chunk or (128 if per_network else 1024), len(images))
    if per_network:
        network_chunk = k  # networks run one at a time anyway; all share one im2col per chunk
    else:
        network_chunk = max(1, chunk_network_images // image_chunk)
    rows = []
    for lo in range(0, k, network_chunk):
        chunk = [mat[lo : lo + network_chunk] for mat in filters]
        columns = []
        for i in range(0, len(images), image_chunk):
            columns.append(forward(spec, chunk, images[i : i + image_chunk], conv_impl))
            if on_progress is not None:
                on_progress(columns[-1].shape[0] * columns[-1].shape[1])
        rows.append(torch.cat(columns, dim=1))
    return torch.cat(rows).float()


def interleave(parts: Sequence[Sequence[Tensor]]) -> list[Tensor]:
    """Pool the networks of several sources, taking one of each source in turn (the rest of a
    longer source at the end), so that disjoint ensembles hold equal shares of every source:
    per source, per layer (K_s, ...) -> per layer (sum K_s, ...)."""
    counts = [part[0].shape[0] for part in parts]
    turn = torch.cat([torch.arange(n) * len(parts) + s for s, n in enumerate(counts)])
    order = turn.argsort()  # keys are unique: network i of source s has key i * S + s
    return [torch.cat(layer)[order.to(layer[0].device)] for layer in zip(*parts)]


def first_repeat(parts: Sequence[Sequence[Tensor]]) -> tuple[int, int, int, int] | None:
    """The first network of a pool that repeats one of an earlier source bit for bit, as
    (source, index, earlier source, earlier index); None when no two sources share a network.
    Pooling the same run twice, or a run with a networks file sampled from it, would count
    such networks twice. (Repeats within one source are the source's own business.)"""
    import hashlib

    seen: dict[bytes, tuple[int, int]] = {}
    for s, part in enumerate(parts):
        rows = torch.cat([layer.flatten(1) for layer in part], 1).float().cpu()  # (K, weights)
        for i, row in enumerate(rows):
            key = hashlib.sha1(row.numpy().tobytes()).digest()
            if key in seen and seen[key][0] != s:
                return (s, i, *seen[key])
            seen.setdefault(key, (s, i))
    return None


def majority_vote(logits: Tensor) -> Tensor:
    """Class with most votes among K networks, ties to the smallest label: (K, N, C) -> (N,)."""
    votes = F.one_hot(logits.argmax(-1), logits.shape[-1]).sum(0)  # (N, C)
    return votes.argmax(-1)  # argmax returns the first maximum: the smallest label


def prediction_disagreement(logits: Tensor) -> float:
    """Share of images on which two different members predict differently, averaged over all
    K(K-1) ordered pairs; exact, from each image's vote counts m_c (agreeing pairs are
    sum_c m_c (m_c - 1)): (K, N, C) -> float. 0 for a single network."""
    k = logits.shape[0]
    if k < 2:
        return 0.0
    votes = F.one_hot(logits.argmax(-1), logits.shape[-1]).sum(0).double()  # (N, C)
    agreeing = (votes * (votes - 1)).sum(-1) / (k * (k - 1))  # (N,)
    return 1.0 - agreeing.mean().item()


def mean_probability(logits: Tensor) -> Tensor:
    """Class of the averaged softmax: (K, N, C) -> (N,)."""
    return logits.softmax(-1).mean(0).argmax(-1)


def most_confident(logits: Tensor) -> Tensor:
    """Prediction of the member with the highest top probability per image: -> (N,)."""
    probs = logits.softmax(-1)  # (K, N, C)
    top, label = probs.max(-1)  # (K, N)
    member = top.argmax(0)  # (N,)
    return label.gather(0, member.unsqueeze(0)).squeeze(0)


def ensemble_metrics(logits: Tensor, labels: Tensor) -> dict[str, float]:
    """Single-network accuracies and the three ensemble rules of the implementation notes, the
    ensemble's NLL (of the mean probability) and the members' prediction disagreement."""
    accuracies = (logits.argmax(-1) == labels).float().mean(-1)  # (K,)
    ce = F.cross_entropy(logits.flatten(0, 1), labels.repeat(logits.shape[0]))
    log_mean_probs = logits.log_softmax(-1).logsumexp(0) - math.log(logits.shape[0])  # (N, C)
    return {
        "accuracy_mean": accuracies.mean().item(),
        "accuracy_std": accuracies.std().item() if len(accuracies) > 1 else 0.0,
        "accuracy_min": accuracies.min().item(),
        "accuracy_max": accuracies.max().item(),
        "cross_entropy": ce.item(),
        "ensemble_majority_vote": (majority_vote(logits) == labels).float().mean().item(),
        "ensemble_mean_probability": (mean_probability(logits) == labels).float().mean().item(),
        "ensemble_most_confident": (most_confident(logits) == labels).float().mean().item(),
        "ensemble_nll": F.nll_loss(log_mean_probs, labels).item(),
        "prediction_disagreement": prediction_disagreement(logits),
    }


CURVE_SIZES = (1, 2, 5, 10, 20, 50, 100, 200)  # issue 26's ensemble sizes


def ensemble_size_curve(
    logits: Tensor,
    labels: Tensor,
    sizes: Sequence[int] = CURVE_SIZES,
    ood_logits: Tensor | None = None,
) -> list[dict]:
    """Ensemble metrics against ensemble size: for each size s <= K, the K // s disjoint
    ensembles of consecutive networks, and of each metric its mean, min and max over them.

    logits (K, N, C) on labelled images, ``ood_logits`` (K, M, C) on out-of-distribution
    ones. Metrics: majority vote, NLL and ECE of the mean probability, pairwise prediction
    disagreement, and (with ``ood_logits``) OOD AUROC by predictive entropy. One row per
    size: {"size", "ensembles", METRIC: {"mean", "min", "max"}, ...}."""
    from torchmetrics.functional.classification import multiclass_calibration_error

    from .uncertainty import ood_auroc, predictive_entropy  # scikit-learn: imported on use

    k, classes = logits.shape[0], logits.shape[-1]
    rows = []
    for size in sorted({s for s in sizes if 1 <= s <= k}):
        per_ensemble: dict[str, list[float]] = {}
        for lo in range(0, k // size * size, size):
            members = logits[lo : lo + size]  # (size, N, C)
            probs = members.softmax(-1).mean(0)  # (N, C)
            values = {
                "majority_vote": (majority_vote(members) == labels).float().mean().item(),
                "nll": F.nll_loss(
                    members.log_softmax(-1).logsumexp(0) - math.log(size), labels
                ).item(),
                "ece": float(
                    multiclass_calibration_error(
                        probs, labels, num_classes=classes, n_bins=15, norm="l1"
                    )
                ),
                "disagreement": prediction_disagreement(members),
            }
            if ood_logits is not None:
                out = ood_logits[lo : lo + size].softmax(-1)
                values["ood_auroc"] = ood_auroc(
                    predictive_entropy(members.softmax(-1)), predictive_entropy(out)
                )
            for key, value in values.items():
                per_ensemble.setdefault(key, []).append(value)
        rows.append(
            {
                "size": size,
                "ensembles": k // size,
                **{
                    key: {"mean": sum(v) / len(v), "min": min(v), "max": max(v)}
                    for key, v in per_ensemble.items()
                },
            }
        )
    return rows


def evaluate_networks(
    spec: TargetSpec,
    filters: Sequence[Tensor],
    data: Split,
    ensemble_size: int | None = None,
    conv_impl: ConvImpl | None = None,
    ctx: Context = Context(),
    precision: str = "float32",
    progress: bool = False,
    keep_first_logits: bool = False,
    ood_images: Tensor | None = None,
    curve_sizes: Sequence[int] | None = None,
) -> dict:
    """Metrics of K networks on a split. With ``ensemble_size`` the first
    K // ensemble_size * ensemble_size networks form disjoint ensembles, and ensemble figures
    are means over them; the networks left over count as ``dropped_networks`` there, while
    single-network figures always use all K.
    Under torchrun each rank predicts its share of every ensemble (``filters`` are the
    whole set on every rank). ``progress`` shows a bar over the networks;
    ``keep_first_logits`` adds the first ensemble's logits (size, N, classes) to the result
    as ``first_ensemble_logits``, for further analyses without predicting again.
    ``ood_images`` (out-of-distribution inputs) adds each ensemble's OOD AUROC by predictive
    entropy and mutual information (their mean over the ensembles), at the cost of a second
    pass of every network over those images. ``curve_sizes`` adds ``curve``, the
    :func:`ensemble_size_curve` of all K networks (their logits are then kept in memory)."""
    k = filters[0].shape[0]
    size = ensemble_size or k
    groups = max(k // size, 1)
    blocks = [(g * size, (g + 1) * size) for g in range(groups)]
    if k > groups * size:  # networks left over from the ensembles: single figures only
        blocks.append((groups * size, k))
    keep_all = curve_sizes is not None
    accuracies, cross_entropies, per_group, kept, kept_ood = [], [], [], [], []
    if ood_images is not None:
        from .uncertainty import ood_detection  # scikit-learn: imported on use only
    ood_count = 0 if ood_images is None else len(ood_images)
    passes = sum(
        (hi - lo) * (len(data) + (ood_count if hi - lo == size or keep_all else 0))
        for lo, hi in blocks
    )
    # this process's (network, image) passes, shown as networks done by all processes
    scale = k * ctx.world_size / max(passes, 1)
    bar = tqdm(
        total=k,
        desc="networks",
        unit="network",
        leave=False,
        bar_format="{l_bar}{bar}| {n:.1f}/{total} networks [{elapsed}<{remaining}]",
        disable=not (progress and ctx.is_main),
    )

    def advance(count: int) -> None:
        bar.update(count * scale)

    for lo, hi in blocks:
        check_interrupt()
        mine = split(hi - lo, ctx)
        chunk = [mat[lo:hi][mine] for mat in filters]
        logits = gather_shards(
            predict(
                spec,
                chunk,
                data.images,
                conv_impl=conv_impl,
                precision=precision,
                on_progress=advance,
            ),
            hi - lo,
            ctx,
        )
        accuracies.append((logits.argmax(-1) == data.labels).float().mean(-1))
        cross_entropies.append(
            -logits.log_softmax(-1)
            .gather(-1, data.labels.expand(hi - lo, -1).unsqueeze(-1))
            .mean((1, 2))
        )  # (networks,)
        grouped = hi - lo == size
        ood_logits = None
        if ood_images is not None and (grouped or keep_all):
            ood_logits = gather_shards(
                predict(
                    spec,
                    chunk,
                    ood_images,
                    conv_impl=conv_impl,
                    precision=precision,
                    on_progress=advance,
                ),
                hi - lo,
                ctx,
            )
        if grouped:
            if lo == 0 and keep_first_logits:
                first_logits = logits
            per_group.append(ensemble_metrics(logits, data.labels))
            if ood_logits is not None:
                per_group[-1].update(ood_detection(logits, ood_logits))
        if keep_all:
            kept.append(logits)
            kept_ood.append(ood_logits)
    bar.close()
    acc = torch.cat(accuracies)
    result: dict[str, Any] = {
        "networks": int(acc.numel()),
        "images": len(data),
        "accuracy_mean": acc.mean().item(),
        "accuracy_std": acc.std().item() if acc.numel() > 1 else 0.0,
        "accuracy_min": acc.min().item(),
        "accuracy_max": acc.max().item(),
        "accuracies": acc.tolist(),
        "cross_entropy": torch.cat(cross_entropies).mean().item(),
        "ensembles": groups,
        "ensemble_size": size,
        "dropped_networks": k - groups * size,
    }
    ensemble_keys = [
        "ensemble_majority_vote",
        "ensemble_mean_probability",
        "ensemble_most_confident",
        "ensemble_nll",
        "prediction_disagreement",
    ]
    if ood_images is not None:
        ensemble_keys += ["ood_auroc_predictive_entropy", "ood_auroc_mutual_information"]
    for key in ensemble_keys:
        result[key] = sum(m[key] for m in per_group) / groups
    if groups > 1:
        result["ensemble_majority_vote_per_ensemble"] = [
            m["ensemble_majority_vote"] for m in per_group
        ]
    if keep_first_logits:
        result["first_ensemble_logits"] = first_logits
    if keep_all:
        result["curve"] = ensemble_size_curve(
            torch.cat(kept),
            data.labels,
            curve_sizes,
            None if ood_images is None else torch.cat(kept_ood),
        )
    return result
