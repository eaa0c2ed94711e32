"""The Python entry point for trained runs and networks files.

import weightgen
gen = weightgen.load("runs/paper_lambda1e3")   # any method's run folder, or a networks file
nets = gen.sample(10, seed=0)                  # the networks `weightgen sample -n 10` writes
nets.logits(images)                            # (10, B, classes), batched
module = nets.module(3)                        # a plain torch.nn.Module with network 3
nets.metrics(images, labels)                   # accuracy, NLL, ECE of members and ensemble
ensemble = gen.ensemble(10)                    # torch.nn.Module: mean probability (B, classes)
for nets in gen.stream(1_000_000, chunk=10_000): ...   # bounded memory
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import torch

from . import pretrained
from .distributed import resolve_device
from .errors import ArgumentError, WeightgenError, check_argument
from .exchange import load_networks
from .memory import require
from .methods import Method
from .networks import EnsembleModule, GeneratedNetworks
from .runfolder import open_run


class Generator:
    """Networks from a run folder of any method (hypernetwork, MNFG, direct) or from an
    exchange file, drawn as ``weightgen sample`` draws them."""

    def __init__(
        self,
        source: str | Path,
        device: str = "cpu",
        gauge: bool = True,
        batch_norm: str = "running",
        step: int | str | None = None,
    ):
        check_argument(
            isinstance(device, (str, torch.device)),
            f"device must be a string such as 'cpu' or 'cuda', got {type(device).__name__}",
        )
        try:
            device = str(resolve_device(str(device)))
        except WeightgenError as err:
            raise ArgumentError(str(err).replace("--device", "device", 1)) from None
        self.source, self.device, self.gauge, self.batch_norm = (
            pretrained.resolve(source),
            device,
            gauge,
            batch_norm,
        )
        self.method: Method | None = None
        if self.source.is_dir():
            self.method = open_run(self.source, device, step)
            if not self.method.needs_data:
                raise WeightgenError(f"{source}: the toy problem has no target networks")
            self.method.check_batch_norm(batch_norm)
            self.spec = self.method.spec
        elif step is not None:
            raise WeightgenError(
                f"{source}: step= chooses a checkpoint of a run folder; a networks file has none"
            )
        else:
            self.networks = load_networks(source)
            self.spec = self.networks.spec

    def __repr__(self) -> str:
        kind = self.method.name if self.method is not None else "networks file"
        step = f", step {self.method.step}" if self.method is not None else ""
        return f"Generator({str(self.source)!r}, {kind}{step}, device {self.device!r})"

    def ensemble(self, n: int, seed: int = 0) -> EnsembleModule:
        """n networks of :meth:`sample` as one torch.nn.Module averaging their probabilities."""
        return self.sample(n, seed).ensemble()

    def sample(self, n: int, seed: int = 0) -> GeneratedNetworks:
        """n networks; the same as ``weightgen sample SOURCE -n n --seed seed`` writes (a
        networks file or a direct run holds fixed networks: the first n)."""
        _check_count(n, "n")
        require(
            n * self.spec.num_weights * 4 * 2,
            f"sampling {n:,} networks at once",
            "sample fewer, or use stream() to take them in chunks",
        )
        parts = list(self.stream(n, chunk=n, seed=seed))
        z = None if parts[0].z is None else torch.cat([p.z for p in parts])
        return GeneratedNetworks(
            self.spec, [torch.cat(layer) for layer in zip(*(p.filters for p in parts))], z
        )

    def stream(self, n: int, chunk: int = 10_000, seed: int = 0) -> Iterator[GeneratedNetworks]:
        """The n networks of :meth:`sample`, ``chunk`` at a time (memory bounded by the chunk
        for a hypernetwork); the same networks, bit for bit, whatever the chunk."""
        _check_count(n, "n")
        _check_count(chunk, "chunk")
        check_argument(
            isinstance(seed, int) and not isinstance(seed, bool) and 0 <= seed < 2**63,
            f"seed must be a whole number in 0..2**63-1, got {seed!r}",
        )
        if self.method is not None:
            yield from self.method.sample(n, seed, chunk, self.gauge, self.batch_norm)
            return
        fixed = self.networks.filters()
        if n > fixed[0].shape[0]:
            raise WeightgenError(f"{self.source} holds {fixed[0].shape[0]} networks, not {n}")
        for lo in range(0, n, chunk):
            yield GeneratedNetworks(
                self.spec, [f[lo : min(lo + chunk, n)].to(self.device) for f in fixed]
            )


def _check_count(value: object, name: str) -> None:
    check_argument(
        isinstance(value, int) and not isinstance(value, bool) and value >= 1,
        f"{name} must be a whole number >= 1, got {value!r}",
    )


def load(
    source: str | Path,
    device: str = "cpu",
    gauge: bool = True,
    batch_norm: str = "running",
    step: int | str | None = None,
) -> Generator:
    """A :class:`Generator` for a run folder (any method; checkpoint ``step``: a step number,
    ``"best"`` by validation majority vote, or None for the newest), a shipped generator
    (``"pretrained:NAME"``, :func:`weightgen.pretrained.available`) or a networks file."""
    return Generator(source, device, gauge, batch_norm, step)
