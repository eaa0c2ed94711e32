"""The exchange format for generated networks (the contract: docs/reference/exchange.md).

One safetensors file. Every tensor is stacked over the N networks along a new first axis; names
and per-network shapes are those of the torch.nn.Conv2d / torch.nn.Linear state dict of the
target. An optional ``z`` (N, noise_dim) holds the noise each network came from. The metadata
holds ``format``, ``target_spec`` (JSON) and ``num_networks``.
"""

from __future__ import annotations

import json
import math
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file
from torch import Tensor

from .errors import WeightgenError
from .fileio import atomic_path
from .memory import readable_bytes
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


class NetworksWriter:
    """Writes N networks to an exchange file in chunks, so memory does not grow with N.

    The safetensors header (every tensor's shape and place) is written first; each
    :meth:`write` puts a chunk of networks into place in every tensor. The file appears at
    ``path`` only when all N networks are written (atomic, like every write here)::

        with NetworksWriter(path, spec, n, noise_dim=300) as out:
            for lo in range(0, n, 1000):
                out.write(lo, filters_chunk, z_chunk)
    """

    def __init__(
        self,
        path: str | os.PathLike,
        spec: TargetSpec,
        n: int,
        noise_dim: int | None = None,
        extra: dict[str, str] | None = None,
        replace: bool = True,
    ):
        if n < 1:
            raise WeightgenError("no networks to write (N = 0)")
        self.path, self.spec, self.n, self.replace = Path(path), spec, n, replace
        shapes = {name: (n, *shape) for name, shape in spec.state_dict_shapes().items()}
        if noise_dim is not None:
            shapes["z"] = (n, noise_dim)
        self.shapes = shapes
        offsets, header = 0, {}
        for name, shape in shapes.items():
            size = math.prod(shape) * 4  # float32
            header[name] = {
                "dtype": "F32",
                "shape": list(shape),
                "data_offsets": [offsets, offsets + size],
            }
            offsets += size
        header["__metadata__"] = {
            "format": FORMAT,
            "target_spec": spec.to_json(),
            "num_networks": str(n),
            **(extra or {}),
        }
        text = json.dumps(header, separators=(",", ":")).encode()
        text += b" " * (-len(text) % 8)  # the data starts 8-byte aligned
        self._header = len(text).to_bytes(8, "little") + text
        self._data_size = offsets
        self._offsets: dict[str, int] = {
            name: header[name]["data_offsets"][0]  # type: ignore[misc]
            for name in shapes
        }
        self._written = 0

    def __enter__(self) -> NetworksWriter:
        size = len(self._header) + self._data_size
        try:
            free = shutil.disk_usage(self.path.resolve().parent).free
        except OSError:
            free = size  # the write itself reports what is wrong
        if size > free:
            raise WeightgenError(
                f"{self.path}: {self.n} networks need {readable_bytes(size)}, "
                f"{readable_bytes(free)} are free there"
            )
        self._atomic = atomic_path(self.path, self.replace)
        tmp = self._atomic.__enter__()
        try:
            self._file = open(tmp, "r+b")
            self._file.write(self._header)
            self._file.truncate(len(self._header) + self._data_size)
        except OSError as err:
            self._atomic.__exit__(type(err), err, None)
            raise WeightgenError(f"cannot write {self.path}: {err.strerror}") from None
        return self

    def write(self, start: int, filters: list[Tensor], z: Tensor | None = None) -> None:
        """Networks start .. start + len(chunk) - 1, as filter matrices [(chunk, out, n)]."""
        tensors = dict(self.spec.to_state_dict(filters))
        if z is not None:
            tensors["z"] = z
        count = filters[0].shape[0]
        try:
            for name, tensor in tensors.items():
                row = math.prod(self.shapes[name][1:]) * 4  # float32 bytes of one network
                data = tensor.detach().float().cpu().contiguous().numpy()
                self._file.seek(len(self._header) + self._offsets[name] + start * row)
                self._file.write(memoryview(data).cast("B"))  # type: ignore[arg-type]  # no copy
        except OSError as err:
            raise WeightgenError(f"cannot write {self.path}: {err.strerror}") from None
        self._written += count

    def __exit__(self, kind, error, trace) -> None:
        try:
            self._file.close()  # a full disk may only show when the buffer is flushed
        except OSError as err:
            if kind is None:
                kind, error, trace = type(err), err, err.__traceback__
        if kind is None and self._written != self.n:
            kind = WeightgenError
            error = WeightgenError(f"{self.path}: {self._written} of {self.n} networks written")
        # renames the file into place on success; otherwise removes it (an OSError comes back
        # as a one-line WeightgenError)
        self._atomic.__exit__(kind, error, trace)
        if error is not None and kind is WeightgenError:
            raise error


def save_networks(
    path: str | os.PathLike,
    spec: TargetSpec,
    filters: list[Tensor],
    z: Tensor | None = None,
    extra: dict[str, str] | None = None,
) -> None:
    """Write networks given as filter matrices [(N, out, n)] atomically."""
    noise_dim = None if z is None else z.shape[1]
    with NetworksWriter(path, spec, filters[0].shape[0], noise_dim, extra) as out:
        out.write(0, filters, z)


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
        raise WeightgenError(
            f"{path}: not a weightgen networks file (metadata format must be "
            f"{FORMAT!r} with a target_spec)"
        )
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
    if count == 0:
        raise WeightgenError(f"{path}: holds no networks (N = 0)")
    for name, shape in expected.items():
        got = tuple(tensors[name].shape)
        if got != (count, *shape):
            raise WeightgenError(
                f"{path}: tensor {name} has shape {got}, expected {(count, *shape)}"
            )
        if not tensors[name].is_floating_point():
            raise WeightgenError(f"{path}: tensor {name} is not floating point")
        tensors[name] = tensors[
            name
        ].float()  # float16 / bfloat16 / float64 files compute in float32
    if z is not None and (z.dim() != 2 or z.shape[0] != count):
        raise WeightgenError(f"{path}: tensor z has shape {tuple(z.shape)}, expected ({count}, d)")
    return Networks(
        spec, {name: tensors[name] for name in expected}, None if z is None else z.float(), metadata
    )
