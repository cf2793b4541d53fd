"""What the synthetic suites' downstream models share: a content-hash cache key and BatchNorm recalibration."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict
from pathlib import Path
from typing import Callable, Sequence

import torch

from bench.cache import cache_dir, files_digest


def cached_model_path(kind: str, cfg, *file_groups: Sequence[Path]) -> tuple[Path, str]:
    """Where a model trained with ``cfg`` on exactly these files is cached, and its full key."""
    key = hashlib.sha256(
        (json.dumps(asdict(cfg), sort_keys=True) + "".join(files_digest(g) for g in file_groups)).encode()
    ).hexdigest()
    return cache_dir(kind) / f"{key[:32]}.safetensors", key


@torch.no_grad()
def recalibrate_batchnorm(model: torch.nn.Module, forward: Callable[[list[int]], object], n_images: int,
                          g: torch.Generator, batch_size: int, batches: int) -> None:
    """Re-estimate BatchNorm running statistics as plain averages over training batches.

    After a short training the running averages (momentum 0.1) still carry the first steps'
    statistics and the model collapses to one class in eval mode; averaging afresh fixes that.
    ``forward`` runs the BatchNorm-carrying part of the model on the training images it is given.
    """
    norms = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative moving average
    model.train()
    for _ in range(batches):
        forward(torch.randint(n_images, (batch_size,), generator=g).tolist())
    for m in norms:
        m.momentum = 0.1
    model.eval()
