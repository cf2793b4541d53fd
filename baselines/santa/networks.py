"""Santa's generator (Xie et al., CVPR 2023) in the authors' module layout (Mid-Push/santa,
``networks.AdaINResnetGenerator``), so their ``latest_net_G.pth`` loads unchanged.

CUT's anti-aliased ResNet generator cut in two at the middle of its residual blocks: the encoder (head, the two
blur-downsampling stages, the first ``n_blocks // 2`` blocks with instance norm) maps an image to a latent; the
decoder (the remaining blocks, the two blur-upsampling stages, the tail) renders a latent at a *domain position*
``d`` in [0, 1]: every norm of the decoder is an AdaIN whose scale and shift are a linear function of a style code
``e(0) + d (e(1) - e(0))`` interpolated between two learned domain embeddings. ``d = 0`` reconstructs domain A,
``d = 1`` translates to domain B; the path regulariser walks the values between.
"""

from __future__ import annotations

import torch
from torch import nn

from baselines.antialiased_sampling import Downsample, Upsample
from baselines.cut_codebase.networks import run_collecting
from baselines.cyclegan_codebase import ResnetBlock, instance_norm


class AdaIN(nn.Module):
    """Instance norm without affine parameters, then ``(1 + gamma) x + beta`` with (gamma, beta) = fc(style)."""

    def __init__(self, channels: int, style_dim: int) -> None:
        super().__init__()
        self.norm = instance_norm(channels)
        self.fc = nn.Linear(style_dim, 2 * channels)
        self.style: torch.Tensor | None = None  # set by SantaGenerator.decode before every pass

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.fc(self.style)[:, :, None, None]
        gamma, beta = h.chunk(2, dim=1)
        return (1 + gamma) * self.norm(x) + beta


class SantaGenerator(nn.Module):
    def __init__(self, ngf: int = 64, n_blocks: int = 9, style_dim: int = 8) -> None:
        super().__init__()
        d = 4 * ngf
        enc: list[nn.Module] = [nn.ReflectionPad2d(3), nn.Conv2d(3, ngf, 7), instance_norm(ngf), nn.ReLU(True)]
        for mult in (1, 2):
            enc += [nn.Conv2d(ngf * mult, ngf * mult * 2, 3, 1, 1), instance_norm(ngf * mult * 2), nn.ReLU(True),
                    Downsample(ngf * mult * 2)]
        enc += [ResnetBlock(d) for _ in range(n_blocks // 2)]
        self.encoder = nn.Sequential(*enc)

        adain = lambda channels: AdaIN(channels, style_dim)  # noqa: E731
        dec: list[nn.Module] = [ResnetBlock(d, norm=adain) for _ in range(n_blocks - n_blocks // 2)]
        for mult in (4, 2):
            dec += [Upsample(ngf * mult), nn.Conv2d(ngf * mult, ngf * mult // 2, 3, 1, 1), adain(ngf * mult // 2),
                    nn.ReLU(True)]
        dec += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, 3, 7), nn.Tanh()]
        self.decoder = nn.Sequential(*dec)
        self.domain_embedding = nn.Embedding(2, style_dim)
        self.style_dim = style_dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Translation A -> B: encode, decode at d = 1."""
        return self.decode(self.encode(x), torch.ones(len(x), device=x.device))

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x)

    def decode(self, latent: torch.Tensor, d: torch.Tensor) -> torch.Tensor:
        """``latent`` rendered at domain positions ``d`` (one per latent)."""
        self._set_style(d)
        return self.decoder(latent)

    def decode_features(self, latent: torch.Tensor, d: torch.Tensor, layers: tuple[int, ...]) -> list[torch.Tensor]:
        """The decoder's outputs after each layer index in ``layers`` (stops after the last one)."""
        self._set_style(d)
        return run_collecting(self.decoder, latent, layers, stop_after_last=True)[1]

    def _set_style(self, d: torch.Tensor) -> None:
        d = d.reshape(-1, 1).to(self.domain_embedding.weight.dtype)
        if self.style_dim > 1:
            ends = self.domain_embedding.weight
            style = ends[0] + d * (ends[1] - ends[0])
        else:  # the released code uses d itself as a one-dimensional style
            style = d
        for m in self.decoder.modules():
            if isinstance(m, AdaIN):
                m.style = style
