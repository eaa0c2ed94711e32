"""The Python entry point for trained runs and networks files.

    import weightgen
    gen = weightgen.load("runs/paper_lambda1e3")   # any method's run folder, or a networks file
    nets = gen.sample(10, seed=0)                  # the networks `weightgen sample -n 10` writes
    nets.logits(images)                            # (10, B, classes), batched
    module = nets.module(3)                        # a plain torch.nn.Module with network 3
    nets.metrics(images, labels)                   # accuracy, NLL, ECE of members and ensemble
    for nets in gen.stream(1_000_000, chunk=10_000): ...   # bounded memory
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import torch
from torch import Tensor, nn

from .errors import WeightgenError
from .targets import TargetSpec, forward

SAMPLE_CHUNK = 1000  # networks generated at a time (generate's own chunk)


@dataclass
class GeneratedNetworks:
    """K target networks as per-layer filter matrices [(K, out, fan_in + 1)], with the noise
    they came from (hypernetworks only)."""

    spec: TargetSpec
    filters: list[Tensor]
    z: Tensor | None = None

    def __len__(self) -> int:
        return self.filters[0].shape[0]

    def check_images(self, images: Tensor) -> None:
        """Images must be (B, *input_shape) in [0, 1]; a one-line error otherwise."""
        shape = tuple(self.spec.input_shape)
        if not isinstance(images, Tensor) or images.dim() != len(shape) + 1 or \
                tuple(images.shape[1:]) != shape:
            got = tuple(images.shape) if isinstance(images, Tensor) else type(images).__name__
            raise WeightgenError(f"images must have shape (B, {', '.join(map(str, shape))}), "
                                 f"got {got}")
        if not images.is_floating_point() or images.numel() and (
                images.min() < 0 or images.max() > 1 or not torch.isfinite(images).all()):
            raise WeightgenError("images must be finite floats in [0, 1] (as MNIST / 255)")

    @torch.no_grad()
    def logits(self, images: Tensor) -> Tensor:
        """Logits of every network on shared images: (K, B, classes)."""
        self.check_images(images)
        from .evaluate import predict
        return predict(self.spec, [f.to(images.device) for f in self.filters], images)

    def module(self, index: int) -> nn.Module:
        """Network ``index`` as an ordinary torch.nn.Sequential with its weights loaded."""
        if not -len(self) <= index < len(self):
            raise WeightgenError(f"network {index} does not exist (there are {len(self)})")
        module = self.spec.build_module()
        state = self.spec.to_state_dict([f[index:index + 1] for f in self.filters])
        module.load_state_dict({name: t[0] for name, t in state.items()})
        return module.eval()

    @torch.no_grad()
    def metrics(self, images: Tensor, labels: Tensor) -> dict[str, float]:
        """Accuracy of single networks and of the ensembles (majority vote, mean probability,
        most confident), with NLL and ECE of a single network and of the ensemble's mean
        probability."""
        from .analysis.uncertainty import calibration
        from .evaluate import ensemble_metrics
        logits = self.logits(images)
        labels = labels.to(logits.device)
        if labels.shape != (images.shape[0],) or labels.min() < 0 or \
                labels.max() >= self.spec.num_classes:
            raise WeightgenError(f"labels must be {images.shape[0]} class indices in "
                                 f"0..{self.spec.num_classes - 1}")
        result = ensemble_metrics(logits, labels)
        probs = logits.softmax(-1)
        for name, p in (("single", probs[0]), ("ensemble", probs.mean(0))):
            for key, value in calibration(p, labels).items():
                result[f"{name}_{key}"] = value
        return result


class Generator:
    """Networks from a run folder of any method (hypernetwork, MNFG, direct) or from an
    exchange file, drawn as ``weightgen sample`` draws them."""

    def __init__(self, source: str | Path, device: str = "cpu", gauge: bool = True,
                 batch_norm: str = "running"):
        from .runfolder import run_method
        self.source, self.device, self.gauge, self.batch_norm = Path(source), device, gauge, \
            batch_norm
        self.method = run_method(source) if self.source.is_dir() else "file"
        if self.method is None:
            raise WeightgenError(f"{source}: not a run folder (no config.yaml)")
        if self.method == "toy":
            raise WeightgenError(f"{source}: the toy problem has no target networks")
        if self.method == "hypernetwork":
            from .train import load_run
            self.config, self.hypernet, self.step = load_run(source, device)
            self.spec = self.hypernet.spec
        elif self.method == "file":
            from .exchange import load_networks
            self.networks = load_networks(source)
            self.spec = self.networks.spec
        elif self.method == "mnfg":
            from .baselines.mnfg import load_mnfg
            self.config, self.model, self.step = load_mnfg(source, device)
            self.spec = self.model.spec
        else:
            from .baselines.direct import load_direct
            self.config, self.spec, self.trained, self.step = load_direct(Path(source))

    def sample(self, n: int, seed: int = 0) -> GeneratedNetworks:
        """n networks; the same as ``weightgen sample SOURCE -n n --seed seed`` writes (a
        networks file or a direct run holds fixed networks: the first n)."""
        parts = list(self.stream(n, chunk=max(n, 1), seed=seed))
        z = None if parts[0].z is None else torch.cat([p.z for p in parts])
        return GeneratedNetworks(self.spec, [torch.cat(layer) for layer in
                                             zip(*(p.filters for p in parts))], z)

    def stream(self, n: int, chunk: int = 10_000, seed: int = 0
               ) -> Iterator[GeneratedNetworks]:
        """The n networks of :meth:`sample`, ``chunk`` at a time (memory bounded by the chunk);
        the same networks, bit for bit, whatever the chunk."""
        from .rng import seeded_generator
        from .symmetry import gauge_fix
        if n < 1 or chunk < 1:
            raise WeightgenError("n and chunk must be >= 1")
        if self.method == "hypernetwork":
            # whole multiples of the generation chunk: the same arithmetic as one call on all n
            step = max(SAMPLE_CHUNK, chunk // SAMPLE_CHUNK * SAMPLE_CHUNK)
            yield from self._hypernet_chunks(n, step, seed)
            return
        if self.method == "mnfg":
            filters = self.model.sample_filters(n, seeded_generator(seed, "sample"))
        else:
            fixed = self.networks.filters() if self.method == "file" else self.trained
            if n > fixed[0].shape[0]:
                raise WeightgenError(f"{self.source} holds {fixed[0].shape[0]} networks, "
                                     f"not {n}")
            filters = [f[:n].to(self.device) for f in fixed]
        if self.gauge and self.method != "file":
            filters = gauge_fix(self.spec, filters)
        for lo in range(0, n, chunk):
            yield GeneratedNetworks(self.spec, [f[lo:lo + chunk] for f in filters])

    def _hypernet_chunks(self, n: int, chunk: int, seed: int) -> Iterator[GeneratedNetworks]:
        from .rng import seeded_generator
        from .train import chunk_bounds, generate
        noise = seeded_generator(seed, "sample")
        for lo, hi in chunk_bounds(n, chunk):
            z = self.hypernet.sample_noise(hi - lo, noise)
            yield GeneratedNetworks(self.spec, generate(self.hypernet, z, gauge=self.gauge,
                                                        batch_norm=self.batch_norm), z)


def load(source: str | Path, device: str = "cpu", gauge: bool = True,
         batch_norm: str = "running") -> Generator:
    """A :class:`Generator` for a run folder (any method) or a networks file."""
    return Generator(source, device, gauge, batch_norm)
