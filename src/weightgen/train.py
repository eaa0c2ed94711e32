"""The training loop: Adam on φ, validation, metrics log, checkpoints and exact resume.

A run folder holds ``config.yaml`` (the resolved config), ``metrics.jsonl`` (one JSON object per
line, ``kind`` "train" or "validation") and ``checkpoints/step-NNNNNNN.pt``. Every random draw
(noise, image order) is a function of (seed, step), so running the same command again continues
from the last checkpoint exactly as if the run had never stopped.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from contextlib import contextmanager
from typing import Any, Callable, Iterator, Literal

import torch
import yaml
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

from . import distributed
from .checkpoint import list_checkpoints, load_latest, save_checkpoint
from .config import Config, config_from_dict, save_config
from .data import MNIST, Split, load_mnist, training_batch_indices
from .entropy import kl_entropy
from .errors import WeightgenError
from .evaluate import ensemble_metrics, predict
from .fileio import MetricsLog, atomic_write_text
from .hypernet import HyperNetwork, batch_statistics
from .objective import objective
from .rng import seeded_generator
from .runfolder import first_difference, remove_stale_temporaries, saved_config
from .symmetry import gauge_fix
from .threads import ThreadGovernor

LOG_EVERY = 20


def resolve_device(device: str) -> torch.device:
    """'auto' -> cuda when available, else cpu; 'cuda' without a GPU is a user error."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise WeightgenError("--device cuda: no CUDA device is available")
    if device != "cpu" and not device.startswith("cuda"):
        raise WeightgenError(f"--device must be auto, cpu or cuda, got {device!r}")
    return torch.device(device)


def build_hypernet(config: Config, device: torch.device | str = "cpu") -> HyperNetwork:
    torch.manual_seed(config.seed)  # parameter initialisation
    return HyperNetwork(config.target.build(), config.hypernet).to(device)


BatchNormMode = Literal["running", "batch"]
BATCH_NORM_MODES = ("running", "batch")
BATCH_NORM_BATCH = 200  # networks per batch-norm batch in "batch" mode (the paper's ensembles)


@torch.no_grad()
def generate(hypernet: HyperNetwork, z: torch.Tensor, gauge: bool = True,
             chunk: int = 1000, batch_norm: BatchNormMode = "running") -> list[torch.Tensor]:
    """Filter matrices of the networks G(z) (optionally gauge-fixed).

    ``batch_norm``: "running" normalises with the running statistics (eval mode, each network
    independent of the others); "batch" with the statistics of each batch of
    ``BATCH_NORM_BATCH`` noise vectors, as the original code samples (a trailing batch of one
    joins the one before it).
    """
    if batch_norm not in BATCH_NORM_MODES:
        raise WeightgenError(f"batch norm mode must be one of {list(BATCH_NORM_MODES)}, "
                             f"got {batch_norm!r}")
    n = z.shape[0]
    if batch_norm == "batch":
        bounds, mode = chunk_bounds(n, BATCH_NORM_BATCH), batch_statistics(hypernet)
    else:
        bounds, mode = [(lo, min(lo + chunk, n)) for lo in range(0, n, chunk)], \
            _eval_mode(hypernet)
    with mode:
        parts = [hypernet(z[lo:hi]) for lo, hi in bounds] if not gauge else \
            [gauge_fix(hypernet.spec, hypernet(z[lo:hi])) for lo, hi in bounds]
    return [torch.cat(layer) for layer in zip(*parts)]


def chunk_bounds(n: int, chunk: int) -> list[tuple[int, int]]:
    """[lo, hi) of each chunk of n; a trailing chunk of one joins the one before
    (batch-norm "batch" mode needs two)."""
    bounds = [(lo, min(lo + chunk, n)) for lo in range(0, n, chunk)]
    if len(bounds) > 1 and bounds[-1][1] - bounds[-1][0] == 1:
        bounds[-2:] = [(bounds[-2][0], n)]
    return bounds


@contextmanager
def _eval_mode(module: torch.nn.Module) -> Iterator[None]:
    was_training = module.training
    module.eval()
    try:
        yield
    finally:
        module.train(was_training)


@torch.no_grad()
def validate(hypernet: HyperNetwork, split: Split, config: Config) -> dict[str, float]:
    """Metrics of ``validation_networks`` generated networks on a split (same z every time)."""
    n = config.train.validation_networks
    z = hypernet.sample_noise(n, seeded_generator(config.seed, "validation"))
    filters = generate(hypernet, z, gauge=True)
    logits = predict(hypernet.spec, filters, split.images)
    metrics = ensemble_metrics(logits, split.labels)
    obj = config.objective
    entropy = kl_entropy(hypernet.spec.flatten(filters), obj.entropy_metric,
                         obj.entropy_dim or hypernet.cfg.noise_dim)
    metrics["entropy"] = entropy.item()
    metrics["loss"] = obj.lam * metrics["cross_entropy"] - metrics["entropy"]
    return metrics


def _check_compatible(saved: dict, new: dict) -> None:
    try:  # keys added to the config since the folder was made take their defaults
        saved = config_from_dict(saved).to_dict()
    except WeightgenError:
        pass  # compared as written; the first difference is reported below
    difference = first_difference(saved, new)
    if difference is not None:
        key, there, now = difference
        raise WeightgenError(f"the run folder was made with a different config ({key}: "
                             f"{there!r} there, {now!r} now); use another --out or the same "
                             f"config")


def prepare_run_folder(config: Config, run_dir: Path) -> None:
    """Refuse a run folder made with another config; create it and write the config.

    Call while holding the folder's :class:`RunLock`. A config.yaml that was deleted from a
    folder with checkpoints is restored from the newest one first, so it is never silently
    replaced by another config; temporary files of killed writes are removed."""
    config_path = run_dir / "config.yaml"
    if not config_path.exists() and list_checkpoints(run_dir):
        newest = load_latest(run_dir)
        if newest is not None and isinstance(newest.get("config"), dict):
            atomic_write_text(config_path, yaml.safe_dump(newest["config"], sort_keys=False))
            print(f"weightgen: {config_path} was missing; restored from checkpoint step "
                  f"{newest['step']}", file=sys.stderr)
        else:
            raise WeightgenError(f"{run_dir} has checkpoints but no config.yaml, and none of "
                                 f"them holds its config; use another --out")
    if config_path.exists():
        _check_compatible(saved_config(run_dir), config.to_dict())
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise WeightgenError(f"cannot create run folder {run_dir}: {err.strerror}") from None
    remove_stale_temporaries(run_dir)
    save_config(config, config_path)


def train(config: Config, run_dir: str | Path, device: str = "auto",
          data_dir: str | None = None, progress: bool = True,
          data: MNIST | None = None,
          on_step: Callable[[int], None] | None = None,
          threads: str | int | None = None) -> dict[str, Any]:
    """Train (or continue training) a hypernetwork; returns the last validation metrics.

    Under torchrun the noise batch is sharded over the processes (DDP); rank 0 alone writes
    the run folder, and the result equals a single-process run on the same global batch.
    ``threads``: None leaves PyTorch's thread count alone; else as ``--threads`` (a number,
    "all", or "auto": re-chosen from the idle cores every few seconds, :mod:`threads`).
    """
    run_dir = Path(run_dir)
    ctx = distributed.setup(resolve_device(device))
    dev = distributed.local_device(resolve_device(device), ctx)
    tc = config.train
    if tc.noise_samples % ctx.world_size:
        raise WeightgenError(f"train.noise_samples ({tc.noise_samples}) must be divisible by "
                             f"the number of processes ({ctx.world_size})")
    problem = None
    if ctx.is_main:
        try:
            prepare_run_folder(config, run_dir)
        except WeightgenError as err:
            problem = str(err)
    problem = distributed.broadcast_object(problem, ctx)
    if problem:
        raise WeightgenError(problem)

    data = data or load_mnist(data_dir)
    train_split = data.train.to(dev)
    val_split = data.validation.to(dev)

    hypernet = build_hypernet(config, dev)
    optimizer = torch.optim.Adam(hypernet.parameters(), lr=tc.lr, betas=tc.adam_betas,
                                 eps=tc.adam_eps)
    checkpoint = load_latest(run_dir) if ctx.is_main else None
    checkpoint = distributed.broadcast_object(checkpoint, ctx)
    step = 0
    if checkpoint is not None:
        hypernet.load_state_dict(checkpoint["model"])
        optimizer.load_state_dict(checkpoint["optimizer"])
        step = int(checkpoint["step"])
        if ctx.is_main:
            print(f"{run_dir}: resuming from step {step}" if step < tc.steps else
                  f"{run_dir}: already trained to step {step} (train.steps = {tc.steps}); "
                  f"nothing to do, pass --steps N to train longer", file=sys.stderr)
    model = hypernet
    if ctx.active:
        model = DistributedDataParallel(
            hypernet, device_ids=[dev.index] if dev.type == "cuda" else None,
            broadcast_buffers=False)  # batch-norm statistics are pooled, buffers agree
    log = MetricsLog(run_dir / "metrics.jsonl")
    if ctx.is_main:
        log.truncate_after(step)

    def save(at: int) -> None:
        if ctx.is_main:
            save_checkpoint(run_dir, at, {"model": hypernet.state_dict(),
                                          "optimizer": optimizer.state_dict(),
                                          "config": config.to_dict(),
                                          "target_spec": hypernet.spec.to_dict()},
                            tc.keep_checkpoints)

    last_validation: dict[str, Any] = {}
    bar = tqdm(total=tc.steps, initial=step, disable=not (progress and ctx.is_main),
               dynamic_ncols=True, desc=config.name, unit="step")
    started, started_step = time.perf_counter(), step
    mine = ctx.shard(tc.noise_samples)  # this rank's noise samples of the global batch
    governor = ThreadGovernor(threads) if threads is not None else None
    hypernet.train()
    try:
        while step < tc.steps:
            for group in optimizer.param_groups:
                group["lr"] = tc.lr * tc.lr_decay ** step
            z = hypernet.sample_noise(tc.noise_samples,
                                      seeded_generator(config.seed, "noise", step))[mine]
            batch = training_batch_indices(step, tc.noise_samples, tc.images_per_network,
                                           len(train_split), config.seed)
            idx = batch[mine].to(dev)
            # the function-space term's shared images: the global batch's first network's
            # first images, the same on every rank
            shared = train_split.images[batch[0, :config.objective.function_images].to(dev)] \
                if config.objective.function_weight > 0 else None
            terms = objective(model, z, train_split.images[idx], train_split.labels[idx],
                              config.objective, shared_images=shared,
                              precision=tc.precision)
            descend(optimizer, terms.loss, step, value=terms.value)
            step += 1
            if governor is not None:
                governor.update()
            bar.update(1)
            if ctx.is_main and (step % LOG_EVERY == 0 or step == tc.steps):
                elapsed = time.perf_counter() - started
                record = {"kind": "train", "step": step, "loss": terms.value.item(),
                          "cross_entropy": terms.cross_entropy.item(),
                          "entropy": terms.entropy.item(), "accuracy": terms.accuracy.item(),
                          "gauge_penalty": terms.gauge_penalty.item(),
                          "lr": optimizer.param_groups[0]["lr"],
                          "steps_per_s": (step - started_step) / max(elapsed, 1e-9),
                          "threads": torch.get_num_threads()}
                if config.objective.function_weight > 0:
                    record["function_entropy"] = terms.function_entropy.item()
                log.write(record)
                bar.set_postfix(loss=f"{record['loss']:.1f}", acc=f"{record['accuracy']:.3f}",
                                H=f"{record['entropy']:.0f}")
            if step % tc.validate_every == 0 or step == tc.steps:
                if ctx.is_main:
                    last_validation = {"kind": "validation", "step": step,
                                       **validate(hypernet, val_split, config)}
                    log.write(last_validation)
                    bar.write(_describe(last_validation))
                ctx.barrier()
            if step % tc.checkpoint_every == 0 or step == tc.steps:
                save(step)
            if on_step is not None:
                on_step(step)
    except KeyboardInterrupt:
        save(step)
        bar.close()
        raise
    bar.close()
    return last_validation


def descend(optimizer: torch.optim.Optimizer, loss: torch.Tensor, step: int,
            value: torch.Tensor | None = None) -> None:
    """One optimizer step on ``loss``; a non-finite loss (or reported ``value``) stops training
    before the weights change, so every checkpoint on disk stays finite."""
    if not torch.isfinite(loss if value is None else value):
        raise WeightgenError(f"non-finite loss at step {step + 1}; training stopped, the last "
                             f"good checkpoint is kept (try a smaller learning rate)")
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    with torch.no_grad():  # before any checkpoint is written; one host sync per step
        finite = torch.stack([torch.isfinite(p).all() for group in optimizer.param_groups
                              for p in group["params"]]).all()
    if not finite:
        raise WeightgenError(f"the update of step {step + 1} made the weights non-finite; "
                             f"training stopped, the last good checkpoint is kept (learning "
                             f"rate {optimizer.param_groups[0]['lr']:g} too large?)")


def latest_checkpoint(run_dir: str | Path, device: str | torch.device = "cpu"
                      ) -> tuple[dict, Config]:
    """The newest good checkpoint of a run folder and the config stored in it."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise WeightgenError(f"{run_dir}: no such run folder")
    checkpoint = load_latest(run_dir, map_location=device)
    if checkpoint is None:
        raise WeightgenError(f"{run_dir}: no checkpoint (train first)")
    return checkpoint, config_from_dict(checkpoint["config"])


def _describe(v: dict[str, Any]) -> str:
    return (f"step {v['step']}: validation accuracy mean {v['accuracy_mean']:.4f} (min "
            f"{v['accuracy_min']:.4f}, max {v['accuracy_max']:.4f}), majority vote "
            f"{v['ensemble_majority_vote']:.4f}, entropy {v['entropy']:.1f}")


def load_run(run_dir: str | Path, device: str = "auto") -> tuple[Config, HyperNetwork, int]:
    """The config, hypernetwork (newest good checkpoint) and step of a run folder."""
    dev = resolve_device(device)
    checkpoint, config = latest_checkpoint(run_dir, dev)
    hypernet = HyperNetwork(config.target.build(), config.hypernet).to(dev)
    hypernet.load_state_dict(checkpoint["model"])
    hypernet.eval()
    return config, hypernet, int(checkpoint["step"])
