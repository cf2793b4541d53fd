"""The residual block and instance norm of the pytorch-CycleGAN-and-pix2pix code base, which the CUT code base
copies: shared by ``baselines.cyclegan`` and ``baselines.cut`` (module indices as in the official ``networks.py``,
so the authors' state dicts load unchanged)."""

from __future__ import annotations

import torch
from torch import nn


def instance_norm(channels: int) -> nn.Module:
    """The official ``norm='instance'``: no affine parameters, no running statistics."""
    return nn.InstanceNorm2d(channels, affine=False, track_running_stats=False)


class ResnetBlock(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        # Indices as in the official block without dropout: pad 0, conv 1, norm 2, relu 3, pad 4, conv 5, norm 6.
        self.conv_block = nn.Sequential(
            nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3), instance_norm(dim), nn.ReLU(True),
            nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3), instance_norm(dim),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv_block(x)
