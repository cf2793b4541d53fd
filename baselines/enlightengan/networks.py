"""EnlightenGAN's generator (Jiang et al., IEEE TIP 2021) in the authors' module layout (VITA-Group/EnlightenGAN,
``networks.Unet_resize_conv`` with the options of their released model: ``--self_attention --times_residual
--skip 1 --use_norm 1``), so their ``200_net_G_A.pth`` loads unchanged.

A U-Net (32-64-128-256-512 channels, two 3x3 convs with LeakyReLU(0.2) then BatchNorm per level, max pooling) whose
input is the image and its *attention map* ``1 - luminance`` (dark pixels near 1); the map, max-pooled to each
level, multiplies the deepest features and every skip connection; the decoder upsamples bilinearly, convolves and
concatenates. The last 1x1 conv gives a residual that is multiplied by the map and added to the input. Images are
reflection-padded to a multiple of 16 and cropped back; an image wider than 2,200 pixels is average-pooled by 2
first and the result upsampled back (as released).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

WIDTHS = (32, 64, 128, 256, 512)


def attention_map(x: torch.Tensor) -> torch.Tensor:
    """The authors' self-regularised attention: 1 - (0.299 r + 0.587 g + 0.114 b) on [0, 1] channels, from x in
    [-1, 1] as their loader computes it."""
    r, g, b = x[:, 0] + 1, x[:, 1] + 1, x[:, 2] + 1
    return (1.0 - (0.299 * r + 0.587 * g + 0.114 * b) / 2.0)[:, None]


def _pad16(x: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int, int, int]]:
    h, w = x.shape[-2:]
    dh, dw = (-h) % 16, (-w) % 16
    pads = (dw // 2, dw - dw // 2, dh // 2, dh - dh // 2)  # left, right, top, bottom: the smaller half first
    return (F.pad(x, pads, mode="reflect") if any(pads) else x), pads


class EnlightenGenerator(nn.Module):
    def __init__(self, align_corners: bool = True) -> None:
        super().__init__()
        self.align_corners = align_corners
        c1, c2, c3, c4, c5 = WIDTHS
        ins = {1: 4, 2: c1, 3: c2, 4: c3, 5: c4}  # level 1 reads the image and its attention map
        for level, width in enumerate(WIDTHS, start=1):
            setattr(self, f"conv{level}_1", nn.Conv2d(ins[level], width, 3, padding=1))
            setattr(self, f"bn{level}_1", nn.BatchNorm2d(width))
            setattr(self, f"conv{level}_2", nn.Conv2d(width, width, 3, padding=1))
            setattr(self, f"bn{level}_2", nn.BatchNorm2d(width))
        for level, (wide, narrow) in zip((6, 7, 8, 9), ((c5, c4), (c4, c3), (c3, c2), (c2, c1))):
            setattr(self, f"deconv{level - 1}", nn.Conv2d(wide, narrow, 3, padding=1))
            setattr(self, f"conv{level}_1", nn.Conv2d(wide, narrow, 3, padding=1))
            setattr(self, f"bn{level}_1", nn.BatchNorm2d(narrow))
            setattr(self, f"conv{level}_2", nn.Conv2d(narrow, narrow, 3, padding=1))
            if level < 9:
                setattr(self, f"bn{level}_2", nn.BatchNorm2d(narrow))
        self.conv10 = nn.Conv2d(c1, 3, 1)

    def _block(self, x: torch.Tensor, level: int, second_norm: bool = True) -> torch.Tensor:
        x = getattr(self, f"bn{level}_1")(F.leaky_relu(getattr(self, f"conv{level}_1")(x), 0.2))
        x = F.leaky_relu(getattr(self, f"conv{level}_2")(x), 0.2)
        return getattr(self, f"bn{level}_2")(x) if second_norm else x

    def forward(self, x: torch.Tensor, gray: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The enhanced image and the residual ("latent"), both in the input's [-1, 1] scale."""
        halved = x.shape[3] > 2200
        if halved:
            x, gray = F.avg_pool2d(x, 2), F.avg_pool2d(gray, 2)
        x, (left, right, top, bottom) = _pad16(x)
        gray, _ = _pad16(gray)
        grays = [gray]
        for _ in range(4):
            grays.append(F.max_pool2d(grays[-1], 2))

        skips = []
        h = torch.cat([x, gray], 1)
        for level in range(1, 5):
            h = self._block(h, level)
            skips.append(h)
            h = F.max_pool2d(h, 2)
        h = self.bn5_1(F.leaky_relu(self.conv5_1(h), 0.2)) * grays[4]
        h = self.bn5_2(F.leaky_relu(self.conv5_2(h), 0.2))
        for level, skip, g in zip((6, 7, 8, 9), reversed(skips), reversed(grays[:4])):
            h = F.interpolate(h, scale_factor=2, mode="bilinear", align_corners=self.align_corners)
            h = torch.cat([getattr(self, f"deconv{level - 1}")(h), skip * g], 1)
            h = self._block(h, level, second_norm=level < 9)
        latent = self.conv10(h) * gray
        out = latent + x
        h_out, w_out = out.shape[-2:]
        out = out[:, :, top:h_out - bottom, left:w_out - right]
        latent = latent[:, :, top:h_out - bottom, left:w_out - right]
        if halved:
            out = F.interpolate(out, scale_factor=2, mode="bilinear", align_corners=self.align_corners)
        return out, latent
