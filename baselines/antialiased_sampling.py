"""Anti-aliased sampling (Zhang, ICML 2019) as the CUT code base builds it and UNSB copies it: shared by
``baselines.cut`` and ``baselines.unsb``. A stride-1 conv followed by a [1 2 1] x [1 2 1] blur with stride 2 on the
way down; a [1 3 3 1] x [1 3 3 1] transposed blur (x4) followed by a stride-1 conv on the way up. The fixed filters
are registered buffers named ``filt``, as in the authors' files, so their state dicts load unchanged."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def _binomial(taps: int) -> torch.Tensor:
    row = torch.tensor([1.0, 2.0, 1.0] if taps == 3 else [1.0, 3.0, 3.0, 1.0])
    k = row[:, None] * row[None, :]
    return k / k.sum()


class Downsample(nn.Module):
    """Blur (3x3 binomial, reflect padding 1) then keep every second pixel."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.register_buffer("filt", _binomial(3)[None, None].repeat(channels, 1, 1, 1))
        self.pad = nn.ReflectionPad2d(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(self.pad(x), self.filt, stride=2, groups=x.shape[1])


class Upsample(nn.Module):
    """Transposed 4x4 binomial blur (x4 so the mean is kept) with stride 2, replicate padding 1, trimmed to 2x."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.register_buffer("filt", (_binomial(4) * 4)[None, None].repeat(channels, 1, 1, 1))
        self.pad = nn.ReplicationPad2d(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.conv_transpose2d(self.pad(x), self.filt, stride=2, padding=2, groups=x.shape[1])
        return y[:, :, 1:-1, 1:-1]
