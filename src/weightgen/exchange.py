"""The exchange format for generated networks (DESIGN.md contract).

One safetensors file. Every tensor is stacked over the N networks along a new first axis; names
and per-network shapes are those of the torch.nn.Conv2d / torch.nn.Linear state dict of the
target. An optional ``z`` (N, noise_dim) holds the noise each network came from. The metadata
holds ``format``, ``target_spec`` (JSON) and ``num_networks``.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file
from torch import Tensor

from .errors import WeightgenError
from .fileio import atomic_path
from .targets import TargetSpec

FORMAT = "weightgen-networks/1"


@dataclass
class Networks:
    """N target networks: their spec, stacked state dict and (optionally) their noise."""

    spec: TargetSpec
    state: dict[str, Tensor]
    z: Tensor | None = None
    metadata: dict[str, str] | None = None

    def __len__(self) -> int:
        return next(iter(self.state.values())).shape[0]

    def filters(self) -> list[Tensor]:
        return self.spec.from_state_dict(self.state)


def save_networks(path: str | os.PathLike, spec: TargetSpec, filters: list[Tensor],
                  z: Tensor | None = None, extra: dict[str, str] | None = None) -> None:
    """Write networks given as filter matrices [(N, out, n)] atomically."""
    tensors = {name: t.detach().float().cpu().contiguous()
               for name, t in spec.to_state_dict(filters).items()}
    if z is not None:
        tensors["z"] = z.detach().float().cpu().contiguous()
    metadata = {"format": FORMAT, "target_spec": spec.to_json(),
                "num_networks": str(filters[0].shape[0]), **(extra or {})}
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=metadata)


def load_networks(path: str | os.PathLike) -> Networks:
    """Read and validate an exchange file; a missing key or wrong shape names the key."""
    path = Path(path)
    if not path.is_file():
        raise WeightgenError(f"{path}: no such file")
    try:
        tensors = load_file(str(path))
        with safe_open(str(path), framework="pt") as f:
            metadata = f.metadata() or {}
    except (SafetensorError, OSError, ValueError) as err:
        raise WeightgenError(f"{path}: not a readable safetensors file ({err})") from None
    if metadata.get("format") != FORMAT or "target_spec" not in metadata:
        raise WeightgenError(f"{path}: not a weightgen networks file (metadata format must be "
                             f"{FORMAT!r} with a target_spec)")
    try:
        spec = TargetSpec.from_dict(json.loads(metadata["target_spec"]))
    except json.JSONDecodeError:
        raise WeightgenError(f"{path}: target_spec metadata is not JSON") from None
    z = tensors.pop("z", None)
    expected = spec.state_dict_shapes()
    for name in expected:
        if name not in tensors:
            raise WeightgenError(f"{path}: missing tensor {name}")
    for name in tensors:
        if name not in expected:
            raise WeightgenError(f"{path}: unexpected tensor {name}")
    count = tensors[next(iter(expected))].shape[0]
    for name, shape in expected.items():
        got = tuple(tensors[name].shape)
        if got != (count, *shape):
            raise WeightgenError(f"{path}: tensor {name} has shape {got}, expected "
                                 f"{(count, *shape)}")
        if not tensors[name].is_floating_point():
            raise WeightgenError(f"{path}: tensor {name} is not floating point")
    if z is not None and (z.dim() != 2 or z.shape[0] != count):
        raise WeightgenError(f"{path}: tensor z has shape {tuple(z.shape)}, expected ({count}, d)")
    return Networks(spec, {name: tensors[name] for name in expected}, z, metadata)
