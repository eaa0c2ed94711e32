"""The registry of layer kinds: ``LAYER_KINDS[layer.kind]`` owns everything about a kind of
target layer (:class:`~weightgen.layers.base.LayerKind`). A new kind is one module with a
``LayerKind`` subclass and one entry here (CONTRIBUTING.md, "Adding a layer kind")."""

from __future__ import annotations

from .base import LayerKind, Shape, refuse
from .conv import Conv
from .linear import Linear

LAYER_KINDS: dict[str, LayerKind] = {kind.name: kind for kind in (Conv(), Linear())}


def register(kind: LayerKind) -> LayerKind:
    """Add a layer kind under ``kind.name`` (for kinds defined outside the package)."""
    LAYER_KINDS[kind.name] = kind
    return kind


__all__ = ["LAYER_KINDS", "LayerKind", "Shape", "refuse", "register"]
