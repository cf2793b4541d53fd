"""Data-parallel training across processes (torchrun, or ``bench train --gpus N``).

What each process does, and why it matches one process training on the whole global batch:
- every rank holds a full copy of the method's networks, made identical by a broadcast from rank 0;
- every rank reads its own slice of each global batch (``UnpairedBatches(rank, world)``: the same files,
  crops and flips the single process would use, split into ``world`` equal parts);
- before every optimizer step the gradients of that optimizer's parameters are averaged over the
  ranks in one flattened all-reduce (a pre-step hook). The losses are means over each rank's slice,
  so the average of the ranks' gradients is the gradient of the global-batch loss.

This is the gradient averaging DistributedDataParallel performs in its backward hooks, done at the
optimizer instead: GAN steps run a network several times per backward (G in both cycle directions)
and update G and D in alternation with the other frozen, which DDP's reducer supports only with
static-graph or unused-parameter modes that differ per method. The hook needs neither, and leaves
every method's training step untouched (a method that clips gradients uses ``LearnedTranslator.clip_grad_norm``,
which averages first, so the global-batch gradient is clipped). Each rank keeps its own history pool; rank 0 writes the
checkpoints and logs (after averaging the logged losses over ranks), and all ranks resume from them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistContext:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self.enabled:
            dist.barrier()


def from_environment() -> DistContext:
    """The context torchrun describes in RANK / WORLD_SIZE / LOCAL_RANK (single process when unset)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistContext()
    return DistContext(int(os.environ["RANK"]), world, int(os.environ.get("LOCAL_RANK", "0")))


def init_process_group(ctx: DistContext, device: str) -> None:
    """NCCL between GPUs, gloo on CPUs; a no-op for one process or when already initialised."""
    if not ctx.enabled or dist.is_initialized():
        return
    backend = "nccl" if device.startswith("cuda") else "gloo"
    if backend == "nccl":
        torch.cuda.set_device(ctx.local_rank)
    dist.init_process_group(backend=backend, rank=ctx.rank, world_size=ctx.world)


def current() -> DistContext:
    """The running process group's view (single process when none is initialised)."""
    if not dist.is_available() or not dist.is_initialized():
        return DistContext()
    return DistContext(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))


def broadcast_modules(modules: dict[str, torch.nn.Module]) -> None:
    """Rank 0's parameters and buffers everywhere (what DDP does at construction)."""
    for m in modules.values():
        for t in [*m.parameters(), *m.buffers()]:
            dist.broadcast(t.data, src=0)


def average_gradients_before_step(optimizer: torch.optim.Optimizer, world: int) -> None:
    """Register a pre-step hook that replaces each gradient by its mean over the ranks (one all-reduce)."""

    def hook(opt, args, kwargs) -> None:
        average_gradients([p.grad for group in opt.param_groups for p in group["params"] if p.grad is not None],
                          world)

    optimizer.register_step_pre_hook(hook)


def average_gradients(grads: list[torch.Tensor], world: int) -> None:
    """In place: each gradient becomes its mean over the ranks (idempotent once they agree)."""
    if not grads:
        return
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat)
    flat.div_(world)
    offset = 0
    for g in grads:
        n = g.numel()
        g.copy_(flat[offset:offset + n].view_as(g))
        offset += n


def mean_over_ranks(values: torch.Tensor) -> torch.Tensor:
    out = values.clone()
    dist.all_reduce(out)
    return out / dist.get_world_size()


def gather_to_main(obj, ctx: DistContext) -> list | None:
    """Every rank's ``obj`` on rank 0 (a list in rank order), None elsewhere."""
    if not ctx.enabled:
        return [obj]
    out = [None] * ctx.world if ctx.is_main else None
    dist.gather_object(obj, out, dst=0)
    return out
