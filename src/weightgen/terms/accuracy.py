"""The accuracy term λ·CE (eqs. 10–11): cross-entropy of each network on its own images."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from .base import Term, TermInputs


class CrossEntropy(Term):
    """Mean cross-entropy over all K·B (network, image) pairs, weighted by λ."""

    name = "cross_entropy"

    def weight(self) -> float:
        return self.objective.lam

    def value(self, inputs: TermInputs) -> Tensor:
        return F.cross_entropy(inputs.logits.flatten(0, 1), inputs.labels.flatten())
