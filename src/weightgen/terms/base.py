"""The objective-term interface: the loss is the weighted sum of the enabled terms,
L = Σ_t w_t · v_t (eq. 11 is w = (λ, −1) on (CE, Ĥ); eq. 10 adds γ on the gauge penalty 𝒢)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from torch import Tensor

from ..targets import ConvImpl, TargetSpec

if TYPE_CHECKING:
    from ..objective import ObjectiveConfig


@dataclass
class TermInputs:
    """What a term may look at for one batch of K generated networks."""

    spec: TargetSpec
    raw: list[Tensor]  # G(z) as generated: per layer (K, out, fan_in + 1)
    filters: list[Tensor]  # what the target runs on: S(G(z)) under the exact gauge, else raw
    logits: Tensor  # (K, B, classes): network k on its own images
    labels: Tensor  # (K, B)
    shared_images: Tensor | None  # (M, C, H, W): the same images for every network, or None
    entropy_dim: int  # d of eq. 14
    conv_impl: ConvImpl | None = None
    gather: bool = True  # entropy estimates over every rank's rows (training under torchrun)


class Term:
    """One additive part of the loss.

    Subclasses set ``name`` (the key in metrics.jsonl and validation records), implement
    :meth:`value` and :meth:`weight` and, when the term can be switched off, :meth:`enabled`.
    A term with settings beyond the built-in ``objective`` keys declares a dataclass in
    ``settings``; a config gives it under ``objective.terms.<name>`` and the term reads it as
    ``self.settings``.
    """

    name: ClassVar[str]
    settings_type: ClassVar[type | None] = None
    # True for estimates over every rank's rows (the entropies): the value is already global,
    # and its gradient, a sum over ranks' rows, is scaled by the world size to match DDP's mean
    spans_ranks: ClassVar[bool] = False

    def __init__(self, objective: ObjectiveConfig):
        self.objective = objective
        self.settings: Any = objective.terms.get(self.name) if self.settings_type else None

    @classmethod
    def enabled(cls, objective: ObjectiveConfig) -> bool:
        """Whether a config uses this term (a disabled term costs nothing)."""
        return True

    def weight(self) -> float:
        """w_t, the term's signed coefficient in L."""
        raise NotImplementedError

    def value(self, inputs: TermInputs) -> Tensor:
        """v_t, a scalar with gradient."""
        raise NotImplementedError


def weighted_sum(terms: Sequence[Term], values: Mapping[str, Tensor | float]) -> Tensor | float:
    """L = Σ_t w_t · v_t: the one place the loss is written."""
    total: Tensor | float = 0.0
    for term in terms:
        total = total + term.weight() * values[term.name]
    return total
