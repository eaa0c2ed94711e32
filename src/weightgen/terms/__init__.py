"""The registry of objective terms: the loss is Σ w_t·v_t over the terms a config enables
(:func:`weightgen.terms.base.weighted_sum`). A new term is one module with a :class:`Term`
subclass and one entry here (CONTRIBUTING.md, "Adding an objective term")."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .accuracy import CrossEntropy
from .base import Term, TermInputs, weighted_sum
from .entropy import CanonicalWeightEntropy, WeightEntropy
from .function import FunctionEntropy
from .gauge import GaugePenalty

if TYPE_CHECKING:
    from ..objective import ObjectiveConfig

TERMS: list[type[Term]] = [
    CrossEntropy,
    WeightEntropy,
    CanonicalWeightEntropy,
    GaugePenalty,
    FunctionEntropy,
]


def term_sections() -> dict[str, type]:
    """The ``objective.terms`` sections: term name -> its settings dataclass."""
    return {cls.name: cls.settings_type for cls in TERMS if cls.settings_type is not None}


def enabled_terms(objective: ObjectiveConfig) -> list[Term]:
    """The terms a config uses, in registry order."""
    return [cls(objective) for cls in TERMS if cls.enabled(objective)]


__all__ = ["TERMS", "Term", "TermInputs", "enabled_terms", "term_sections", "weighted_sum"]
