"""Data-parallel training on ``torch.distributed`` (launched by ``torchrun``).

Every rank holds the whole model and draws the same batch order and the
same negatives from the shared seed; each rank scores and back-propagates
its contiguous share of the batch's rows, and the gradients are averaged
with one ``all_reduce`` per step (the DistributedDataParallel algorithm;
``KGCModel`` is used through several methods rather than one ``forward``,
so the reduction is called explicitly). Losses are weighted by each share's
size, so a run on ``W`` ranks computes the gradient of the same total batch
as a single process. ``gloo`` is used on CPUs and ``nccl`` on GPUs.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import Tensor

from dhns_geo.errors import DHNSError


@dataclass(frozen=True)
class DistContext:
    """This process's place in the job (``rank 0 of 1`` when alone)."""

    rank: int = 0
    world_size: int = 1

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def share(self, n: int) -> slice:
        """The contiguous rows ``[start, stop)`` of ``n`` this rank owns."""
        per = -(-n // self.world_size)
        start = min(n, self.rank * per)
        return slice(start, min(n, start + per))

    def all_reduce_mean_(self, tensors: list[Tensor]) -> None:
        """Averages ``tensors`` in place over ranks (one flat all-reduce)."""
        if not self.enabled or not tensors:
            return
        flat = torch.cat([t.reshape(-1) for t in tensors])
        dist.all_reduce(flat)
        flat /= self.world_size
        offset = 0
        for t in tensors:
            t.copy_(flat[offset:offset + t.numel()].view_as(t))
            offset += t.numel()

    def sum(self, value: Tensor) -> Tensor:
        """The sum of ``value`` over ranks."""
        if self.enabled:
            value = value.clone()
            dist.all_reduce(value)
        return value

    def gather(self, x: Tensor) -> Tensor:
        """Concatenates ``[n_rank, ...]`` tensors of every rank in rank
        order (shares may differ in size)."""
        if not self.enabled:
            return x
        size = torch.tensor([x.size(0)], device=x.device)
        sizes = [torch.zeros_like(size) for _ in range(self.world_size)]
        dist.all_gather(sizes, size)
        longest = int(max(sizes))
        padded = x.new_zeros((longest, *x.shape[1:]))
        padded[:x.size(0)] = x
        parts = [torch.zeros_like(padded) for _ in range(self.world_size)]
        dist.all_gather(parts, padded)
        return torch.cat([p[:int(s)] for p, s in zip(parts, sizes)])

    def barrier(self) -> None:
        if self.enabled:
            dist.barrier()


def launched_by_torchrun(alone: bool = False) -> bool:
    """Whether this process is one of several started by ``torchrun`` (with
    ``alone``: or the only one)."""
    if alone and "TORCHELASTIC_RUN_ID" in os.environ:
        return True
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def init_distributed(device: torch.device, alone: bool = False
                     ) -> tuple[DistContext, torch.device]:
    """Joins the ``torchrun`` job (``gloo`` on the CPU, ``nccl`` on CUDA);
    with ``alone``, a job of one process too.

    Returns:
        The context, and the device of this rank (``cuda:LOCAL_RANK`` on
        GPUs).
    """
    if not launched_by_torchrun(alone):
        return DistContext(), device
    if device.type == "cuda":
        local = int(os.environ.get("LOCAL_RANK", "0"))
        if local >= torch.cuda.device_count():
            raise DHNSError(
                f"local rank {local} has no GPU ({torch.cuda.device_count()} "
                "visible): start at most one rank per GPU, or train on the "
                "CPU with --device cpu")
        device = torch.device("cuda", local)
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return DistContext(dist.get_rank(), dist.get_world_size()), device


def shutdown_distributed() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def is_main_process() -> bool:
    """``True`` unless this is a ``torchrun`` rank other than 0."""
    return int(os.environ.get("RANK", "0")) == 0
