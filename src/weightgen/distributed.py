"""torchrun support: the process group, sharding of noise batches, and the collectives that
make a sharded step equal the single-process step on the same global batch.

Under ``torchrun --nproc_per_node N -m weightgen ...`` every process reads RANK, WORLD_SIZE and
LOCAL_RANK from the environment; without them everything here is a no-op for one process.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TypeVar

import torch
import torch.distributed as dist
from torch import Tensor

from .errors import WeightgenError

T = TypeVar("T")


@dataclass(frozen=True)
class Context:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world_size > 1

    def shard(self, n: int) -> slice:
        """This rank's contiguous share of n items (n divisible by the world size)."""
        per = n // self.world_size
        return slice(self.rank * per, (self.rank + 1) * per)

    def barrier(self) -> None:
        if self.active:
            dist.barrier()


def is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def resolve_device(device: str) -> torch.device:
    """'auto' -> cuda when available, else cpu; 'cuda' without a GPU is a user error."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise WeightgenError("--device cuda: no CUDA device is available")
    if device != "cpu" and not device.startswith("cuda"):
        raise WeightgenError(f"--device must be auto, cpu or cuda, got {device!r}")
    return torch.device(device)


def setup(device: torch.device) -> Context:
    """Join the torchrun job described by the environment (gloo on CPU, NCCL on CUDA)."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return Context()
    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    if device.type == "cuda":
        torch.cuda.set_device(local_rank)
    if not dist.is_initialized():
        try:
            dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
        except (RuntimeError, ValueError) as err:
            raise WeightgenError(
                f"cannot join the torchrun job: {str(err).splitlines()[0]}"
            ) from None
    return Context(rank, world_size, local_rank)


def teardown() -> None:
    """Leave the torchrun job cleanly after a command succeeded on this rank: wait for every
    rank, then close the process group. (A rank that exits while another still holds gloo
    connections to it can make that one abort with SIGABRT; seen under heavy CPU load.)"""
    if dist.is_available() and dist.is_initialized():
        try:
            dist.barrier()
        finally:
            dist.destroy_process_group()


def local_device(device: torch.device, ctx: Context) -> torch.device:
    """cuda -> this process's GPU (cuda:LOCAL_RANK); cpu stays cpu."""
    if device.type == "cuda" and ctx.active:
        return torch.device("cuda", ctx.local_rank)
    return device


def start(device: str) -> tuple[Context, torch.device]:
    """A ``--device`` value resolved once: the process group (under torchrun) and this
    process's device."""
    resolved = resolve_device(device)
    ctx = setup(resolved)
    return ctx, local_device(resolved, ctx)


class _AllReduceSum(torch.autograd.Function):
    """Sum over processes whose backward also sums (each rank's input feeds every rank)."""

    @staticmethod
    def forward(ctx, tensor: Tensor) -> Tensor:
        out = tensor.clone()
        dist.all_reduce(out)
        return out

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tensor:
        out = grad.clone()
        dist.all_reduce(out)
        return out


def all_reduce_sum(tensor: Tensor) -> Tensor:
    """Differentiable sum over all processes (identity for one process)."""
    return _AllReduceSum.apply(tensor) if is_distributed() else tensor


def gather_rows(local: Tensor) -> Tensor:
    """Concatenate every rank's rows (equal counts), in rank order, keeping the gradient of
    this rank's own rows only: local (n, D) -> (world_size * n, D)."""
    if not is_distributed():
        return local
    parts = [torch.empty_like(local) for _ in range(dist.get_world_size())]
    dist.all_gather(parts, local.detach().contiguous())
    parts[dist.get_rank()] = local
    return torch.cat(parts)


def mean_over_ranks(value: Tensor) -> Tensor:
    """Average of a (detached) value over processes."""
    if not is_distributed():
        return value.detach()
    out = value.detach().clone()
    dist.all_reduce(out)
    return out / dist.get_world_size()


def broadcast_object(obj: T, ctx: Context) -> T:
    """Rank 0's object on every rank (used for the checkpoint read on resume)."""
    if not ctx.active:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def split(n: int, ctx: Context) -> slice:
    """This rank's share of n items, ceil(n / world_size) each (the last ones may be short)."""
    per = -(-n // ctx.world_size)
    return slice(min(ctx.rank * per, n), min((ctx.rank + 1) * per, n))


def gather_shards(local: Tensor, n: int, ctx: Context) -> Tensor:
    """Inverse of :func:`split`: every rank's rows concatenated in rank order -> (n, ...)."""
    if not ctx.active:
        return local
    per = -(-n // ctx.world_size)
    padded = local.new_zeros((per, *local.shape[1:]))
    padded[: local.shape[0]] = local
    parts = [torch.empty_like(padded) for _ in range(ctx.world_size)]
    dist.all_gather(parts, padded)
    return torch.cat(parts)[:n]
