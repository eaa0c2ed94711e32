"""Calibration and out-of-distribution detection of single networks and ensembles.

Metrics come from well-kept libraries: torchmetrics for the expected calibration error,
scikit-learn for the negative log-likelihood, the multiclass Brier score and ROC AUC.
"""

from __future__ import annotations

import numpy as np
import torch
from sklearn.metrics import brier_score_loss, log_loss, roc_auc_score
from torch import Tensor
from torchmetrics.functional.classification import multiclass_calibration_error


def calibration(probs: Tensor, labels: Tensor, bins: int = 15) -> dict[str, float]:
    """NLL, ECE (L1, equal-width bins) and multiclass Brier score of predictive
    probabilities (N, C) against labels (N,)."""
    classes = probs.shape[-1]
    clamped = probs.double().clamp_min(1e-12)
    p = (clamped / clamped.sum(-1, keepdim=True)).numpy()
    y = labels.numpy()
    return {
        "nll": float(log_loss(y, p, labels=list(range(classes)))),
        "ece": float(
            multiclass_calibration_error(
                probs.float(), labels, num_classes=classes, n_bins=bins, norm="l1"
            )
        ),
        "brier": float(brier_score_loss(y, p, labels=list(range(classes)), scale_by_half=False)),
    }


def predictive_entropy(probs: Tensor) -> Tensor:
    """H[E_θ p(y|x, θ)] of ensemble probabilities (K, N, C) -> (N,)."""
    mean = probs.mean(0)
    return -(mean * torch.log(mean.clamp_min(1e-12))).sum(-1)


def mutual_information(probs: Tensor) -> Tensor:
    """Epistemic part: H[E_θ p] − E_θ H[p] for probabilities (K, N, C) -> (N,)."""
    expected = -(probs * torch.log(probs.clamp_min(1e-12))).sum(-1).mean(0)
    return predictive_entropy(probs) - expected


def ood_auroc(in_scores: Tensor, out_scores: Tensor) -> float:
    """ROC AUC of telling out-of-distribution inputs (higher score) from in-distribution."""
    y = np.concatenate([np.zeros(len(in_scores)), np.ones(len(out_scores))])
    s = np.concatenate([in_scores.double().numpy(), out_scores.double().numpy()])
    return float(roc_auc_score(y, s))


def ood_detection(in_logits: Tensor, out_logits: Tensor) -> dict[str, float]:
    """ROC AUC of telling out-of-distribution images from in-distribution ones by the
    ensemble's predictive entropy and by its mutual information; logits (K, N, C), (K, M, C)."""
    in_probs, out_probs = in_logits.softmax(-1), out_logits.softmax(-1)
    return {
        "ood_auroc_predictive_entropy": ood_auroc(
            predictive_entropy(in_probs), predictive_entropy(out_probs)
        ),
        "ood_auroc_mutual_information": ood_auroc(
            mutual_information(in_probs), mutual_information(out_probs)
        ),
    }


def uncertainty_report(in_logits: Tensor, labels: Tensor, out_logits: Tensor | None) -> dict:
    """Calibration of the first network and of the ensemble, and OOD AUROC by ensemble
    predictive entropy and mutual information, and by the first network's entropy. Logits
    (K, N, C) in and out of distribution (None: no out-of-distribution set, no AUROC)."""
    in_probs = in_logits.softmax(-1)
    calibrations = {
        "single": calibration(in_probs[0], labels),
        "ensemble": calibration(in_probs.mean(0), labels),
    }
    if out_logits is None:
        return calibrations
    return {
        **calibrations,
        **ood_detection(in_logits, out_logits),
        "ood_auroc_single_entropy": ood_auroc(
            predictive_entropy(in_probs[:1]), predictive_entropy(out_logits[:1].softmax(-1))
        ),
    }
