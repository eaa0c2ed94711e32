"""The paper's method: a hypernetwork G trained on λ·CE − Ĥ (eqs. 10-14), networks G(z)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import Tensor, nn

from ..cost import training_step_bytes
from ..data import Split, training_batch_indices
from ..distributed import Context, gather_shards, split
from ..errors import WeightgenError
from ..evaluate import ensemble_metrics, predict, warn_if_slow_bfloat16
from ..memory import require
from ..models.hypernet import HyperNetwork, batch_statistics
from ..networks import GeneratedNetworks
from ..objective import evaluate_terms, objective
from ..rng import seeded_generator
from ..symmetry import gauge_fix
from ..terms.function import function_inputs
from .base import BATCH_NORM_MODES, Method, StepResult

BATCH_NORM_BATCH = 200  # networks per batch-norm batch in "batch" mode (the paper's ensembles)
GENERATION_CHUNK = 1000  # networks generated at a time


class HypernetworkMethod(Method):
    name = "hypernetwork"
    label = "weightgen hypernetwork"
    section = "train"
    distributed = True
    batch_norm = True

    def __init__(self, config, device="cpu"):
        super().__init__(config, device)
        torch.manual_seed(config.seed)  # parameter initialisation
        self.hypernet = HyperNetwork(self.spec, config.hypernet).to(self.device)

    @classmethod
    def check_resources(cls, config, device: torch.device) -> None:
        tc = config.train
        require(
            training_step_bytes(config.spec(), tc.noise_samples, tc.images_per_network),
            f"a training step of {tc.noise_samples} noise samples x {tc.images_per_network} images",
            "lower train.noise_samples or train.images_per_network",
        )
        warn_if_slow_bfloat16(tc.precision, device)

    @property
    def module(self) -> nn.Module:
        return self.hypernet

    @property
    def noise_dim(self) -> int:
        return self.config.hypernet.noise_dim

    def passes_per_step(self) -> int:
        """Each noise sample's network on its own images, plus, with the function-space
        term, on the shared images."""
        tc, obj = self.config.train, self.config.objective
        shared = obj.function_images if obj.function_weight > 0 else 0
        return tc.noise_samples * (tc.images_per_network + shared)

    def make_optimizer(self) -> torch.optim.Optimizer:
        tc = self.config.train
        return torch.optim.Adam(
            self.hypernet.parameters(), lr=tc.lr, betas=tc.adam_betas, eps=tc.adam_eps
        )

    def training_step(
        self, step: int, model: nn.Module, train: Split | None, ctx: Context
    ) -> StepResult:
        config, tc = self.config, self.config.train
        mine = ctx.shard(tc.noise_samples)  # this rank's noise samples of the global batch
        z = self.hypernet.sample_noise(
            tc.noise_samples, seeded_generator(config.seed, "noise", step)
        )[mine]
        batch = training_batch_indices(
            step, tc.noise_samples, tc.images_per_network, len(train), config.seed
        )
        idx = batch[mine].to(self.device)
        # the function-space term's shared images: made from the global batch's first
        # network's first images, the same on every rank
        shared = (
            function_inputs(
                config.objective,
                train.images[batch[0, : config.objective.function_images].to(self.device)],
                seeded_generator(config.seed, "function", step),
            )
            if config.objective.function_weight > 0
            else None
        )
        scheduled = config.objective.at_step(step, tc.steps)
        terms = objective(
            model,
            z,
            train.images[idx],
            train.labels[idx],
            scheduled,
            shared_images=shared,
            precision=tc.precision,
        )
        record: dict[str, Tensor | float] = {
            "loss": terms.value,
            "accuracy": terms.accuracy,
            **terms.parts,
        }
        if scheduled.lambda_start is not None:
            record["lambda"] = scheduled.lam
        return StepResult(terms.loss, terms.value, record)

    @torch.no_grad()
    def validate(self, split: Split) -> dict[str, float]:
        """Metrics of ``validation_networks`` generated networks (the same z every time), and
        the objective's terms on them: the loss is the trained loss, with the validation
        split's first images (as ``objective.function_inputs`` makes them) as the function-space
        term's shared images."""
        obj = self.config.objective
        z = self.hypernet.sample_noise(
            self.config.train.validation_networks, seeded_generator(self.config.seed, "validation")
        )
        raw = generate(self.hypernet, z, gauge=False)
        filters = gauge_fix(self.spec, raw) if obj.gauge == "exact" else raw
        logits = predict(self.spec, filters, split.images)  # (K, N, classes)
        metrics = ensemble_metrics(logits, split.labels)
        terms = evaluate_terms(
            self.spec,
            raw,
            filters,
            logits,
            split.labels,
            obj,
            obj.entropy_dim or self.hypernet.cfg.noise_dim,
            function_inputs(
                obj,
                split.images[: obj.function_images],
                seeded_generator(self.config.seed, "function"),
            ),
        )
        terms.pop("cross_entropy")  # the same mean as ensemble_metrics' own
        return {**metrics, **terms}

    def draw(
        self,
        n: int,
        generator: torch.Generator | None,
        gauge: bool = True,
        batch_norm: str = "running",
    ) -> GeneratedNetworks:
        self.check_batch_norm(batch_norm)
        z = self.hypernet.sample_noise(n, generator)
        return GeneratedNetworks(
            self.spec, generate(self.hypernet, z, gauge, batch_norm=batch_norm), z
        )

    def sample(
        self,
        n: int,
        seed: int = 0,
        chunk: int = GENERATION_CHUNK,
        gauge: bool = True,
        batch_norm: str = "running",
        ctx: Context | None = None,
    ) -> Iterator[GeneratedNetworks]:
        """z is drawn chunk by chunk from one generator (the same numbers as one draw of all
        n) and generated in whole multiples of the generation chunk: the same networks, bit
        for bit, whatever ``chunk``. Under torchrun (``ctx``) each rank generates its share of
        a chunk (running statistics only) and all receive the whole chunk."""
        self.check_batch_norm(batch_norm)
        chunk = max(GENERATION_CHUNK, chunk // GENERATION_CHUNK * GENERATION_CHUNK)
        noise = seeded_generator(seed, "sample")
        shared = ctx is not None and ctx.active and batch_norm == "running"
        for lo, hi in chunk_bounds(n, chunk):
            if not shared:
                yield self.draw(hi - lo, noise, gauge, batch_norm)
                continue
            z = self.hypernet.sample_noise(hi - lo, noise)
            mine = split(hi - lo, ctx)
            filters = (
                generate(self.hypernet, z[mine], gauge)
                if mine.stop > mine.start
                else [
                    z.new_zeros((0, layer.out_size, layer.filter_size))
                    for layer in self.spec.layers
                ]
            )
            yield GeneratedNetworks(self.spec, [gather_shards(f, hi - lo, ctx) for f in filters], z)

    def walk(self, t: Tensor, generator: torch.Generator) -> list[Tensor]:
        """S(G(t·z1 + (1−t)·z2)) (Fig. 4)."""
        z = self.hypernet.sample_noise(2, generator)
        return generate(self.hypernet, t.view(-1, 1) * z[0] + (1 - t.view(-1, 1)) * z[1])


@torch.no_grad()
def generate(
    hypernet: HyperNetwork,
    z: Tensor,
    gauge: bool = True,
    chunk: int = GENERATION_CHUNK,
    batch_norm: str = "running",
) -> list[Tensor]:
    """Filter matrices of the networks G(z) (optionally gauge-fixed).

    ``batch_norm``: "running" normalises with the running statistics (eval mode, each network
    independent of the others); "batch" with the statistics of each batch of
    ``BATCH_NORM_BATCH`` noise vectors, as the original code samples (a trailing batch of one
    joins the one before it).
    """
    if batch_norm not in BATCH_NORM_MODES:
        raise WeightgenError(
            f"batch norm mode must be one of {list(BATCH_NORM_MODES)}, got {batch_norm!r}"
        )
    n = z.shape[0]
    if batch_norm == "batch":
        bounds, mode = chunk_bounds(n, BATCH_NORM_BATCH), batch_statistics(hypernet)
    else:
        bounds, mode = [(lo, min(lo + chunk, n)) for lo in range(0, n, chunk)], eval_mode(hypernet)
    with mode:
        parts = (
            [hypernet(z[lo:hi]) for lo, hi in bounds]
            if not gauge
            else [gauge_fix(hypernet.spec, hypernet(z[lo:hi])) for lo, hi in bounds]
        )
    return [torch.cat(layer) for layer in zip(*parts)]


def chunk_bounds(n: int, chunk: int) -> list[tuple[int, int]]:
    """[lo, hi) of each chunk of n; a trailing chunk of one joins the one before
    (batch-norm "batch" mode needs two)."""
    bounds = [(lo, min(lo + chunk, n)) for lo in range(0, n, chunk)]
    if len(bounds) > 1 and bounds[-1][1] - bounds[-1][0] == 1:
        bounds[-2:] = [(bounds[-2][0], n)]
    return bounds


@contextmanager
def eval_mode(module: nn.Module) -> Iterator[None]:
    """Within the block the module is in eval mode (running batch-norm statistics)."""
    was_training = module.training
    module.eval()
    try:
        yield
    finally:
        module.train(was_training)
