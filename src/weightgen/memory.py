"""Up-front memory checks: a size that cannot fit is refused in one line before any work."""

from __future__ import annotations

import math
import os
from typing import TYPE_CHECKING

from .errors import WeightgenError

if TYPE_CHECKING:  # only annotations: memory sits below the models
    from .targets import TargetSpec


def available_bytes() -> int:
    """Memory the system can give this process now (MemAvailable; total RAM elsewhere)."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def activation_floats(spec: TargetSpec) -> int:
    """Activations one (network, image) pair writes in a forward pass: every layer's output
    before and after pooling."""
    shapes = spec.shapes()
    total = math.prod(shapes[0])
    for layer, shape in zip(spec.layers, shapes):
        total += layer.rule.activation_floats(layer, shape)
    return total


def training_step_bytes(spec: TargetSpec, noise_samples: int, images_per_network: int) -> int:
    """Rough peak of one training step: each pair's activations kept for the backward pass,
    their gradients and a workspace (3x), and each network's weights several times over."""
    pairs = noise_samples * images_per_network
    return 4 * (3 * pairs * activation_floats(spec) + 8 * noise_samples * spec.num_weights)


def readable_bytes(count: float) -> str:
    """A byte count for people: 512 B, 3.2 KiB, 40 MiB, 1.6 GiB, 3.6 TiB."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(count) < 1024 or unit == "TiB":
            return (
                f"{count:.0f} {unit}" if unit == "B" or abs(count) >= 100 else f"{count:.1f} {unit}"
            )
        count /= 1024
    raise AssertionError("unreachable")


def require(needed: int, what: str, advice: str) -> None:
    """Refuse ``what`` when it needs more memory than is available."""
    have = available_bytes()
    if needed > have:
        raise WeightgenError(
            f"{what} needs about {readable_bytes(needed)} of memory, "
            f"{readable_bytes(have)} are available; {advice}"
        )
