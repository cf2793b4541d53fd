"""Building blocks with the official TensorFlow code's exact semantics (models.py, ops.py).

- Convolutions have no bias (slim.conv2d with ``biases_initializer=None``; ``tf.nn.atrous_conv2d``).
- 'SAME' padding is TensorFlow's: zeros, and when the total is odd the extra row/column goes at the
  bottom/right. For a stride-2 3x3 conv on an even size that is (0, 1), not PyTorch's (1, 1): a port
  that pads symmetrically shifts every feature map by one pixel.
- Transposed convolutions are TF's ``conv2d_transpose(padding='SAME')``: output = input x stride,
  taken from the full transposed output starting at ``(k - s) // 2`` (0 for k=3, s=2).
- Instance norm has a learned scale (init N(1, 0.02)) and offset (init 0), eps 1e-5, biased variance.
- The residual blocks called ``residule_block_dilated`` are called with the default ``s=1``, which
  is the atrous *rate*: they are ordinary 3x3 convolutions.

ForkGAN (Zheng et al., ECCV 2020) uses the same blocks; ``baselines/forkgan`` can import them.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F


def tf_same_padding(size: int, kernel: int, stride: int, dilation: int = 1) -> tuple[int, int]:
    """(before, after) zero padding TensorFlow's 'SAME' uses along one axis."""
    effective = (kernel - 1) * dilation + 1
    out = math.ceil(size / stride)
    total = max((out - 1) * stride + effective - size, 0)
    return total // 2, total - total // 2


def _tf_init(weight: torch.Tensor, truncated: bool) -> None:
    # slim.conv2d: truncated_normal(stddev=0.02); dilated_conv2d: random_normal(0, 0.02).
    if truncated:
        nn.init.trunc_normal_(weight, std=0.02, a=-0.04, b=0.04)
    else:
        nn.init.normal_(weight, std=0.02)


class Conv(nn.Module):
    """Bias-free conv with TF 'SAME' (asymmetric zero) or 'VALID' padding."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int = 1, padding: str = "same",
                 truncated_init: bool = True) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel, stride, bias=False)
        self.kernel, self.stride, self.padding = kernel, stride, padding
        _tf_init(self.conv.weight, truncated_init)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.padding == "same":
            top, bottom = tf_same_padding(x.shape[-2], self.kernel, self.stride)
            left, right = tf_same_padding(x.shape[-1], self.kernel, self.stride)
            if top or bottom or left or right:
                x = F.pad(x, (left, right, top, bottom))
        return self.conv(x)


class Deconv(nn.Module):
    """Bias-free TF ``conv2d_transpose(padding='SAME')``: output size = input size x stride."""

    def __init__(self, cin: int, cout: int, kernel: int = 3, stride: int = 2) -> None:
        super().__init__()
        self.conv = nn.ConvTranspose2d(cin, cout, kernel, stride, bias=False)
        self.kernel, self.stride = kernel, stride
        _tf_init(self.conv.weight, True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x)
        h, w = x.shape[-2] * self.stride, x.shape[-1] * self.stride
        start = (self.kernel - self.stride) // 2
        return y[..., start:start + h, start:start + w]


class InstanceNorm(nn.InstanceNorm2d):
    def __init__(self, channels: int) -> None:
        super().__init__(channels, eps=1e-5, affine=True)
        nn.init.normal_(self.weight, 1.0, 0.02)
        nn.init.zeros_(self.bias)


class ResidualBlock(nn.Module):
    """conv-IN-ReLU-conv-IN plus the input (no activation after the sum), 3x3 'SAME' convs.

    ``dilated=True`` is models.py's ``residule_block_dilated`` (atrous rate 1, normal(0, 0.02) init);
    ``dilated=False`` its ``residual_block`` used by the T-net (slim conv, truncated-normal init).
    """

    def __init__(self, channels: int, dilated: bool = True) -> None:
        super().__init__()
        self.c1 = Conv(channels, channels, 3, 1, truncated_init=not dilated)
        self.n1 = InstanceNorm(channels)
        self.c2 = Conv(channels, channels, 3, 1, truncated_init=not dilated)
        self.n2 = InstanceNorm(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.n1(self.c1(x)))
        return self.n2(self.c2(y)) + x


def conv_in_relu(cin: int, cout: int, kernel: int, stride: int, padding: str = "same") -> nn.Sequential:
    return nn.Sequential(Conv(cin, cout, kernel, stride, padding), InstanceNorm(cout), nn.ReLU())


def deconv_in_relu(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(Deconv(cin, cout, 3, 2), InstanceNorm(cout), nn.ReLU())


class ToImage(nn.Module):
    """Reflect-pad 3, 7x7 'VALID' conv to ``cout`` channels, then ``activation``."""

    def __init__(self, cin: int, cout: int, activation: nn.Module) -> None:
        super().__init__()
        self.conv = Conv(cin, cout, 7, 1, padding="valid")
        self.activation = activation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.activation(self.conv(F.pad(x, (3, 3, 3, 3), mode="reflect")))
