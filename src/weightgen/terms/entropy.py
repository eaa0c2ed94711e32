"""The diversity term −Ĥ (eqs. 12–14): the Kozachenko–Leonenko entropy of the networks'
(gauge-fixed) weights, or, beyond the paper, of their permutation-canonical form."""

from __future__ import annotations

from typing import Literal

from torch import Tensor

from ..distributed import gather_rows
from ..entropy import kl_entropy
from ..symmetry import canonical_order
from .base import Term, TermInputs


def entropy_of_rows(rows: Tensor, inputs: TermInputs, metric: Literal["l1", "l2"]) -> Tensor:
    """Ĥ of rows (K, D), over every rank's rows when ``inputs.gather``."""
    return kl_entropy(gather_rows(rows) if inputs.gather else rows, metric, inputs.entropy_dim)


class WeightEntropy(Term):
    """Ĥ(S(G(z))) of the flattened weights (eq. 14), subtracted from the loss."""

    name = "entropy"
    spans_ranks = True

    @classmethod
    def enabled(cls, objective) -> bool:
        return not objective.canonical_permutation

    def weight(self) -> float:
        return -1.0

    def value(self, inputs: TermInputs) -> Tensor:
        return entropy_of_rows(
            inputs.spec.flatten(inputs.filters), inputs, self.objective.entropy_metric
        )


class CanonicalWeightEntropy(WeightEntropy):
    """Ĥ of permutation-canonical weights (filters sorted, :func:`canonical_order`), so that
    relabelled hidden units do not count as diversity (beyond the paper)."""

    @classmethod
    def enabled(cls, objective) -> bool:
        return objective.canonical_permutation

    def value(self, inputs: TermInputs) -> Tensor:
        canonical = canonical_order(inputs.spec, inputs.filters)
        return entropy_of_rows(
            inputs.spec.flatten(canonical), inputs, self.objective.entropy_metric
        )
