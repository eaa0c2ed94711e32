"""A split of a dataset: images and labels, on one device."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass(frozen=True)
class Split:
    """Images (N, C, H, W) float32 in [0, 1] and labels (N,) int64."""

    images: Tensor
    labels: Tensor

    def __len__(self) -> int:
        return len(self.labels)

    def to(self, device: torch.device | str) -> Split:
        return Split(self.images.to(device), self.labels.to(device))

    def head(self, n: int | None) -> Split:
        """The first n examples (all when n is None)."""
        return self if n is None else Split(self.images[:n], self.labels[:n])
