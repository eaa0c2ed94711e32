"""The function-space term −β·Ĥ_f (beyond the paper): the entropy estimate of the networks'
class probabilities on shared images, invariant to every symmetry of the weights."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import Tensor

from ..targets import forward
from .base import Term, TermInputs
from .entropy import entropy_of_rows

if TYPE_CHECKING:
    from ..objective import ObjectiveConfig


PATCH_GRID = 4  # shuffled_patches cuts an image into PATCH_GRID x PATCH_GRID patches


def shuffle_patches(images: Tensor, generator: torch.Generator) -> Tensor:
    """Each image cut into a 4 × 4 grid of patches, put back in an order of its own: strokes and
    textures stay, the object's shape goes. Images whose sides the grid does not divide are an
    error."""
    m, c, h, w = images.shape
    if h % PATCH_GRID or w % PATCH_GRID:
        raise ValueError(
            f"shuffled_patches needs image sides divisible by {PATCH_GRID}, not {h}x{w}"
        )
    ph, pw, n = h // PATCH_GRID, w // PATCH_GRID, PATCH_GRID * PATCH_GRID
    # (M, C, H, W) -> (M, grid·grid, C, ph, pw)
    patches = images.reshape(m, c, PATCH_GRID, ph, PATCH_GRID, pw).permute(0, 2, 4, 1, 3, 5)
    patches = patches.reshape(m, n, c, ph, pw)
    order = torch.rand(m, n, generator=generator).argsort(dim=1).to(images.device)
    patches = patches[torch.arange(m, device=images.device)[:, None], order]
    # (M, grid·grid, C, ph, pw) -> (M, C, H, W)
    patches = patches.reshape(m, PATCH_GRID, PATCH_GRID, c, ph, pw).permute(0, 3, 1, 4, 2, 5)
    return patches.reshape(m, c, h, w)


def function_inputs(
    objective: ObjectiveConfig, images: Tensor, generator: torch.Generator
) -> Tensor:
    """The term's shared images made from data images, as ``objective.function_inputs`` says."""
    if objective.function_inputs == "shuffled_patches":
        return shuffle_patches(images, generator)
    return images


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
