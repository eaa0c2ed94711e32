"""The soft gauge's penalty γ·𝒢(G(z)) (eq. 10), used instead of the exact gauge fix."""

from __future__ import annotations

from torch import Tensor

from ..symmetry import gauge_penalty
from .base import Term, TermInputs


class GaugePenalty(Term):
    """Mean over networks of 𝒢 on the raw weights, weighted by γ."""

    name = "gauge_penalty"

    @classmethod
    def enabled(cls, objective) -> bool:
        return objective.gauge == "soft"

    def weight(self) -> float:
        return self.objective.gamma

    def value(self, inputs: TermInputs) -> Tensor:
        return gauge_penalty(inputs.spec, inputs.raw).mean()
