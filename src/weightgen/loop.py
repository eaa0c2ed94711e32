"""The one training loop of every method: restore, learning-rate schedule, finite-loss guard,
log / validate / checkpoint cadence, torchrun, Ctrl-C.

A run folder holds ``config.yaml`` (the resolved config), ``metrics.jsonl`` (one JSON object per
line, ``kind`` "train" or "validation") and ``checkpoints/step-NNNNNNN.pt``. Every random draw
of a method is a function of (seed, step), so running the same command again continues from
the last checkpoint exactly as if the run had never stopped.
"""

from __future__ import annotations

import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

from . import distributed
from .config import Config
from .cost import training_cost
from .data import Dataset, check_fits, load_dataset
from .errors import WeightgenError
from .fileio import MetricsLog
from .methods import METHODS, build_method
from .runfolder import load_latest, prepare_run_folder, save_checkpoint
from .tensorboard import TensorBoardLog
from .threads import ThreadGovernor


def train(
    config: Config,
    run_dir: str | Path,
    device: str = "auto",
    data_dir: str | None = None,
    progress: bool = True,
    data: Dataset | None = None,
    on_step: Callable[[int], None] | None = None,
    threads: str | int | None = None,
) -> dict[str, Any]:
    """Train (or continue training) ``config.method`` in ``run_dir``; returns the last
    validation metrics (for a method without validation, the last logged record).

    Under torchrun (methods that support it) the batch is sharded over the processes (DDP);
    rank 0 alone writes the run folder, and the result equals a single-process run on the
    same global batch. ``threads``: None leaves PyTorch's thread count alone; else as
    ``--threads`` (a number, "all", or "auto": re-chosen from the idle cores every few
    seconds, :mod:`threads`).
    """
    run_dir = Path(run_dir)
    ctx, dev = distributed.start(device)
    METHODS[config.method].check_resources(config, dev)
    method = build_method(config, dev)
    tc = config.train
    if ctx.active and not method.distributed:
        raise WeightgenError(
            f"method {config.method} trains in one process; run it without torchrun"
        )
    if method.distributed and tc.noise_samples % ctx.world_size:
        raise WeightgenError(
            f"train.noise_samples ({tc.noise_samples}) must be divisible by "
            f"the number of processes ({ctx.world_size})"
        )
    problem = None
    if ctx.is_main:
        try:
            prepare_run_folder(config, run_dir)
        except WeightgenError as err:
            problem = str(err)
    problem = distributed.broadcast_object(problem, ctx)
    if problem:
        raise WeightgenError(problem)

    train_split = validation_split = None
    if method.needs_data:
        data = data or load_dataset(config.data, data_dir)
        check_fits(method.spec, data.input_shape, data.num_classes, f"dataset {data.name}")
        train_split, validation_split = data.train.to(dev), data.validation.to(dev)

    optimizer = method.make_optimizer()
    checkpoint = load_latest(run_dir, map_location=dev) if ctx.is_main else None
    checkpoint = distributed.broadcast_object(checkpoint, ctx)
    step, trained_seconds = 0, 0.0
    if checkpoint is not None:
        method.load_state(checkpoint)
        optimizer.load_state_dict(checkpoint["optimizer"])
        step = int(checkpoint["step"])
        trained_seconds = float(checkpoint.get("train_seconds", 0.0))  # 0: an older checkpoint
        if ctx.is_main:
            print(
                f"{run_dir}: resuming from step {step}"
                if step < method.steps
                else f"{run_dir}: already trained to step {step} ({method.section}.steps = "
                f"{method.steps}); "
                f"nothing to do, pass --steps N to train longer",
                file=sys.stderr,
            )
    model = method.module
    if ctx.active:
        model = DistributedDataParallel(
            model, device_ids=[dev.index] if dev.type == "cuda" else None, broadcast_buffers=False
        )  # batch-norm statistics are pooled, buffers agree
    log = MetricsLog(run_dir / "metrics.jsonl")
    if ctx.is_main:
        log.truncate_after(step)
    logs: list = [log]
    if ctx.is_main and tc.tensorboard:
        logs.append(TensorBoardLog(run_dir))

    def save(at: int) -> None:
        if ctx.is_main:
            spec = {"target_spec": method.spec.to_dict()} if method.spec is not None else {}
            save_checkpoint(
                run_dir,
                at,
                {
                    **method.state(),
                    "optimizer": optimizer.state_dict(),
                    "config": config.to_dict(),
                    **spec,
                    "train_seconds": seconds(),
                },
                tc.keep_checkpoints,
                keep_best=tc.keep_best_checkpoint,
            )

    def seconds() -> float:
        """Wall time spent in training steps, over every sitting of the run."""
        return trained_seconds + step_seconds

    last: dict[str, Any] = {}
    step_seconds = 0.0
    bar = tqdm(
        total=method.steps,
        initial=step,
        disable=not (progress and ctx.is_main),
        dynamic_ncols=True,
        desc=config.name,
        unit="step",
    )
    started, started_step = time.perf_counter(), step
    governor = ThreadGovernor(threads) if threads is not None else None
    method.module.train()
    try:
        while step < method.steps:
            for group in optimizer.param_groups:
                group["lr"] = method.learning_rate(step) * group.get("lr_scale", 1.0)
            with deferred_signals():  # a checkpoint holds completed steps only
                step_started = time.perf_counter()
                result = method.training_step(step, model, train_split, ctx)
                descend(optimizer, result.loss, step, value=result.value)
                step += 1
                step_seconds += time.perf_counter() - step_started
            if governor is not None:
                governor.update()
            bar.update(1)
            done = step == method.steps
            if ctx.is_main and (step % tc.log_every == 0 or done):
                elapsed = time.perf_counter() - started
                last = {
                    "kind": "train",
                    "step": step,
                    **{
                        k: v.item() if isinstance(v, torch.Tensor) else v
                        for k, v in result.record.items()
                    },
                    "lr": optimizer.param_groups[0]["lr"],
                    "steps_per_s": (step - started_step) / max(elapsed, 1e-9),
                    "threads": torch.get_num_threads(),
                    **training_cost(method.spec, method.passes_per_step(), step),
                    "train_seconds": seconds(),
                }
                for sink in logs:
                    sink.write(last)
                bar.set_postfix(loss=f"{last['loss']:.4g}")
            if validation_split is not None and (step % tc.validate_every == 0 or done):
                if ctx.is_main:
                    method.module.eval()
                    metrics = method.validate(validation_split)
                    method.module.train()
                    last = {"kind": "validation", "step": step, **metrics}
                    for sink in logs:
                        sink.write(last)
                    bar.write(describe(last))
                ctx.barrier()
            if step % tc.checkpoint_every == 0 or done:
                save(step)
            if on_step is not None:
                on_step(step)
    except KeyboardInterrupt:
        save(step)
        raise
    finally:
        bar.close()
        for sink in logs[1:]:
            sink.close()
    return last


@contextmanager
def deferred_signals(signums: tuple[int, ...] = (signal.SIGINT, signal.SIGTERM)) -> Iterator[None]:
    """Hold SIGINT and SIGTERM back until the block is done, then deliver the first one to
    its usual handler. A training step updates batch-norm statistics in its forward pass and
    the weights and Adam moments in ``optimizer.step()``: interrupted in between, the
    checkpoint written on the way out would hold half a step, and a resumed run would differ
    from an uninterrupted one."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    pending: list[int] = []
    previous = {s: signal.signal(s, lambda signum, frame: pending.append(signum)) for s in signums}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        if pending:
            signal.raise_signal(pending[0])


def descend(
    optimizer: torch.optim.Optimizer,
    loss: torch.Tensor,
    step: int,
    value: torch.Tensor | None = None,
) -> None:
    """One optimizer step on ``loss``; a non-finite loss (or reported ``value``) stops training
    before the weights change, so every checkpoint on disk stays finite."""
    if not torch.isfinite(loss if value is None else value):
        raise WeightgenError(
            f"non-finite loss at step {step + 1}; training stopped, the last "
            f"good checkpoint is kept (try a smaller learning rate)"
        )
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    with torch.no_grad():  # before any checkpoint is written; one host sync per step
        finite = torch.stack(
            [torch.isfinite(p).all() for group in optimizer.param_groups for p in group["params"]]
        ).all()
    if not finite:
        raise WeightgenError(
            f"the update of step {step + 1} made the weights non-finite; "
            f"training stopped, the last good checkpoint is kept (learning "
            f"rate {optimizer.param_groups[0]['lr']:g} too large?)"
        )


def describe(v: dict[str, Any]) -> str:
    """One line for a validation record."""
    text = (
        f"step {v['step']}: validation accuracy mean {v['accuracy_mean']:.4f} (min "
        f"{v['accuracy_min']:.4f}, max {v['accuracy_max']:.4f}), majority vote "
        f"{v['ensemble_majority_vote']:.4f}"
    )
    return text + (f", entropy {v['entropy']:.1f}" if "entropy" in v else "")
