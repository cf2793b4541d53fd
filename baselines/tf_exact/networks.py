"""AU-GAN's generators and ForkGAN's multi-scale discriminator (official models.py / ops.py).

AU-GAN's generator is ForkGAN's (one encoder, a translation and a reconstruction decoder) with one
encoder block fewer (4 instead of 5), plus the T-net and the confidence head; baselines/forkgan
builds ForkGAN from these same classes, so the difference between the two is visible in code.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from baselines.tf_exact.layers import Conv, InstanceNorm, ResidualBlock, ToImage, conv_in_relu, deconv_in_relu

N_BLOCKS = 4


@dataclass
class GeneratorOutput:
    image: torch.Tensor  # translation, tanh range [-1, 1]
    features: torch.Tensor  # encoder output (r4)
    transfer: torch.Tensor | None = None  # T-net output (t4), A2B only
    reconstruction: torch.Tensor | None = None  # self-reconstruction decoder output
    sigma: torch.Tensor | None = None  # per-pixel uncertainty (softplus), A2B only


class Encoder(nn.Sequential):
    """c7s1-ngf, two stride-2 3x3 stages, residual blocks (AU-GAN: 4; ForkGAN: 5)."""

    def __init__(self, ngf: int, n_blocks: int = N_BLOCKS) -> None:
        super().__init__(
            nn.ReflectionPad2d(3),
            conv_in_relu(3, ngf, 7, 1, padding="valid"),
            conv_in_relu(ngf, 2 * ngf, 3, 2),
            conv_in_relu(2 * ngf, 4 * ngf, 3, 2),
            *[ResidualBlock(4 * ngf) for _ in range(n_blocks)],
        )


class Decoder(nn.Module):
    """Four residual blocks, two upsampling stages, 7x7 conv and tanh.

    With ``noise_std`` > 0 (the reconstruction decoder) Gaussian noise is added to the input
    features and after the first block, while training.
    """

    def __init__(self, ngf: int, noise_std: float = 0.0) -> None:
        super().__init__()
        self.noise_std = noise_std
        self.blocks = nn.ModuleList(ResidualBlock(4 * ngf) for _ in range(N_BLOCKS))
        self.up1 = deconv_in_relu(4 * ngf, 2 * ngf)
        self.up2 = deconv_in_relu(2 * ngf, ngf)
        self.out = ToImage(ngf, 3, nn.Tanh())

    def _noise(self, x: torch.Tensor) -> torch.Tensor:
        if self.noise_std > 0 and self.training:
            return x + torch.randn_like(x) * self.noise_std
        return x

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(image, first upsampled features d1)."""
        x = self._noise(x)
        for i, block in enumerate(self.blocks):
            x = block(x)
            if i == 0:
                x = self._noise(x)
        d1 = self.up1(x)
        return self.out(self.up2(d1)), d1


class ConfidenceHead(nn.Module):
    """From the translation decoder's first upsampled features: deconv, IN, ReLU, 7x7 conv, softplus."""

    def __init__(self, ngf: int) -> None:
        super().__init__()
        self.up = deconv_in_relu(2 * ngf, ngf)
        self.out = ToImage(ngf, 1, nn.Softplus())

    def forward(self, d1: torch.Tensor) -> torch.Tensor:
        return self.out(self.up(d1))


class Generator(nn.Module):
    """Encoder, optional T-net, translation decoder, reconstruction decoder, optional confidence head."""

    def __init__(self, ngf: int, transfer: bool = False, confidence: bool = False, noise_std: float = 0.02,
                 encoder_blocks: int = N_BLOCKS) -> None:
        super().__init__()
        self.encoder = Encoder(ngf, encoder_blocks)
        self.tnet = nn.Sequential(*[ResidualBlock(4 * ngf, dilated=False) for _ in range(N_BLOCKS)]) if transfer else None
        self.decoder = Decoder(ngf)
        self.rec_decoder = Decoder(ngf, noise_std=noise_std)
        self.confidence = ConfidenceHead(ngf) if confidence else None

    def forward(self, x: torch.Tensor, reconstruct: bool = True, confidence: bool = True) -> GeneratorOutput:
        r4 = self.encoder(x)
        t4 = self.tnet(r4) if self.tnet is not None else None
        image, d1 = self.decoder(t4 if t4 is not None else r4)
        out = GeneratorOutput(image=image, features=r4, transfer=t4)
        if reconstruct:
            out.reconstruction = self.rec_decoder(r4)[0]
        if confidence and self.confidence is not None:
            out.sigma = self.confidence(d1)
        return out


class MultiScaleDiscriminator(nn.Module):
    """ForkGAN's discriminator (ops.dis_down), which mixes its scales.

    The input is resized to n_scale scales (bicubic). At each of the four levels, branch i < n-1
    applies a stride-1 4x4 conv to branch i+1's previous output, and the last branch applies
    n_scale stride-2 4x4 convs to branch 0's previous output; each conv is followed by IN and
    LeakyReLU(0.2). A final 4x4 conv per branch gives the patch logits (one map per scale).
    """

    def __init__(self, df_dim: int, n_scale: int = 2) -> None:
        super().__init__()
        self.n_scale = n_scale
        self.levels = nn.ModuleList()
        cin = 3
        for level in range(4):
            ch = df_dim * 2**level
            branches = nn.ModuleList()
            for i in range(n_scale):
                if i == n_scale - 1:
                    steps = []
                    for s in range(n_scale):
                        steps += [Conv(cin if s == 0 else ch, ch, 4, 2), InstanceNorm(ch), nn.LeakyReLU(0.2)]
                    branches.append(nn.Sequential(*steps))
                else:
                    branches.append(nn.Sequential(Conv(cin, ch, 4, 1, truncated_init=False), InstanceNorm(ch),
                                                  nn.LeakyReLU(0.2)))
            self.levels.append(branches)
            cin = ch
        self.heads = nn.ModuleList(Conv(cin, 1, 4, 1) for _ in range(n_scale))

    def forward(self, image: torch.Tensor) -> list[torch.Tensor]:
        h, w = image.shape[-2:]
        images = [image] + [
            F.interpolate(image, size=(h // 2**i, w // 2**i), mode="bicubic", align_corners=False)
            for i in range(1, self.n_scale)
        ]
        for branches in self.levels:
            backpack = images[0]
            images = [
                branches[i](backpack) if i == self.n_scale - 1 else branches[i](images[i + 1])
                for i in range(self.n_scale)
            ]
        return [head(x) for head, x in zip(self.heads, images)]
