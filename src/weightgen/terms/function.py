"""The function-space term −β·Ĥ_f (beyond the paper): the entropy estimate of the networks'
class probabilities on shared images, invariant to every symmetry of the weights."""

from __future__ import annotations

from torch import Tensor

from ..targets import forward
from .base import Term, TermInputs
from .entropy import entropy_of_rows


class FunctionEntropy(Term):
    """Ĥ of the rows (K, M·classes) of softmax outputs on ``shared_images``, weighted by −β."""

    name = "function_entropy"
    spans_ranks = True

    @classmethod
    def enabled(cls, objective) -> bool:
        return objective.function_weight > 0

    def weight(self) -> float:
        return -self.objective.function_weight

    def value(self, inputs: TermInputs) -> Tensor:
        if inputs.shared_images is None:
            raise ValueError("objective.function_weight > 0 needs shared_images")
        probs = forward(inputs.spec, inputs.filters, inputs.shared_images, inputs.conv_impl)
        return entropy_of_rows(probs.softmax(-1).flatten(1), inputs, self.objective.entropy_metric)
