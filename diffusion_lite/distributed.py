"""Training on many processes: PyTorch DistributedDataParallel (DDP) under ``torchrun``.

``torchrun --nproc_per_node=N -m diffusion_lite train …`` starts N copies of the same command;
each reads its rank r and the world size W from the environment (``RANK``, ``WORLD_SIZE``,
``LOCAL_RANK``, ``MASTER_ADDR``/``MASTER_PORT``, set by torchrun) and joins one process group:
NCCL between GPUs, gloo between CPU processes {cite}`li2020ddp`.

How the work is split, so that W processes compute what one process would:

- every process holds the same weights θ (same seed) and the same generator, so every process
  draws the *same* global batch of B samples, σ's and ε's;
- process r evaluates only its shard, rows [r·B/W, (r+1)·B/W) (a distributed sampler without
  any communication), and backpropagates the mean loss L_r over its shard;
- DDP averages the gradients, ∇L = (1/W) Σ_r ∇L_r, which is the full-batch gradient; every
  process then takes the same Adam step and the same EMA update.

Only rank 0 writes checkpoints and logs. A resumed run reloads the same checkpoint in every
process. The loss logged is the global batch's, averaged across processes.

Notation (code → symbol): ``rank`` r · ``world_size`` W · ``shard`` the rows of process r ·
``B`` the global batch (``TrainConfig.batch_size``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn

__all__ = ["Parallel", "from_environment", "shutdown", "abort", "launched_by_torchrun"]


@dataclass
class Parallel:
    """One process's place in a data-parallel run (rank r of W) and its device."""

    rank: int             # r, 0 … W − 1
    world_size: int       # W, the number of processes
    local_rank: int       # r on this machine (picks the GPU)
    backend: str          # "gloo" (CPU) or "nccl" (GPU)
    device: torch.device  # where this process trains

    @property
    def is_main(self) -> bool:
        """Rank 0: the one process that writes checkpoints, logs and progress bars."""
        return self.rank == 0

    def shard(self, batch: int) -> slice:
        """Rows [r·B/W, (r+1)·B/W) of a global batch of B: this process's share."""
        if batch % self.world_size:
            raise ValueError(f"batch size {batch} does not split into {self.world_size} equal "
                             f"shards; use a multiple of {self.world_size} (--batch-size)")
        b = batch // self.world_size
        return slice(self.rank * b, (self.rank + 1) * b)

    def wrap(self, module: nn.Module) -> nn.Module:
        """``module`` inside DistributedDataParallel: backward averages gradients over processes."""
        ids = [self.device.index] if self.device.type == "cuda" else None
        # Buffers (frozen embedding frequencies) never change: sync them once, at construction.
        return nn.parallel.DistributedDataParallel(module, device_ids=ids, forward_sync_buffers=False)

    def mean(self, value: torch.Tensor) -> torch.Tensor:
        """The mean of ``value`` over all processes (a detached copy; every process gets it)."""
        out = value.detach().clone()
        dist.all_reduce(out, op=dist.ReduceOp.SUM)
        return out / self.world_size


def launched_by_torchrun() -> bool:
    """True inside a process started by torchrun with more than one process."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def from_environment(device: str | None = None) -> Parallel | None:
    """Join the process group torchrun describes; None when run as a single process.

    ``device``: "cpu" forces gloo on CPUs; otherwise each process takes GPU ``LOCAL_RANK`` with
    NCCL when CUDA is available, else gloo on CPUs.
    """
    if not launched_by_torchrun():
        return None
    missing = [k for k in ("RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT") if k not in os.environ]
    if missing:
        raise ValueError(f"WORLD_SIZE is set but {missing} are not: start the processes with "
                           "torchrun (torchrun --nproc_per_node=N -m diffusion_lite train ...)")
    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    local = int(os.environ["LOCAL_RANK"])
    if device not in (None, "auto", "cpu") and not str(device).startswith("cuda"):
        raise ValueError(f"distributed training runs on 'cpu' or 'cuda', not {device!r}")
    if str(device).startswith("cuda") and not torch.cuda.is_available():
        raise ValueError("--device cuda was asked for but no GPU is visible; use --device cpu (gloo)")
    use_cuda = torch.cuda.is_available() and device != "cpu"
    if use_cuda:
        torch.cuda.set_device(local)
        dev, backend = torch.device("cuda", local), "nccl"
    else:
        dev, backend = torch.device("cpu"), "gloo"
    if not dist.is_initialized():
        dist.init_process_group(backend, rank=rank, world_size=world)
    return Parallel(rank, world, local, backend, dev)


def shutdown(parallel: Parallel | None) -> None:
    """Wait for every process (rank 0 may still be writing), then leave the process group."""
    if parallel is not None and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def abort(parallel: Parallel | None) -> None:
    """Leave the process group after an error, without waiting for the other processes."""
    if parallel is not None and dist.is_initialized():
        dist.destroy_process_group()
