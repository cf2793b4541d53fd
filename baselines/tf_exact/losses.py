"""The loss terms ForkGAN and AU-GAN share (official ``loss_utils.py`` / ``ops.py``)."""

from __future__ import annotations

import torch


def lsgan(outputs: list[torch.Tensor], target: float) -> torch.Tensor:
    """mae_criterion_list: the mean over scales of mean((D(x) - target)^2)."""
    return sum(((o - target) ** 2).mean() for o in outputs) / len(outputs)


def l1(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return (a - b).abs().mean()
