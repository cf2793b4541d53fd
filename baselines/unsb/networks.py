"""UNSB's networks (Kim et al., ICLR 2024) in the module layout of the authors' ``ncsn_networks.py``.

Written from the paper and the module structure of cyclomon/UNSB (``ResnetGenerator_ncsn``,
``NLayerDiscriminator_ncsn``, their ``resnet_9blocks_cond`` / ``basic_cond`` defaults), so the authors'
``latest_net_G.pth`` loads unchanged, the fixed blur filters included.

- The generator is CUT's anti-aliased ResNet generator whose residual blocks also take a time embedding and a
  noise code ``z`` (a StyleGAN-like mapping MLP, then a per-block affine modulation after the first norm).
- The discriminator (and the entropy network E, the same network on two concatenated (x_t, x_1) pairs) is CUT's
  anti-aliased PatchGAN with the time embedding added after every convolution.

The released residual block applies each layer of its first branch to the block input instead of chaining them
(``out = layer(x)``, their issue #29), so that branch reduces to an instance norm of the input: its convolution and
the time embedding it adds are computed and thrown away. Every published UNSB number and checkpoint comes from
that code, so ``ConditionalResnetBlock`` computes what it computes (the dead convolution and time projection are
kept as parameters, for the authors' files and parameter counts, and skipped).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from baselines.antialiased_sampling import Downsample, Upsample
from baselines.cyclegan_codebase import instance_norm


def timestep_embedding(t: torch.Tensor, dim: int, max_positions: int = 10_000) -> torch.Tensor:
    """The sinusoidal embedding of the integer step index (DDPM's, as the authors' ``get_timestep_embedding``)."""
    half = dim // 2
    freqs = torch.exp(torch.arange(half, dtype=torch.float32, device=t.device) * -(math.log(max_positions) / (half - 1)))
    args = t.float()[:, None] * freqs[None, :]
    emb = torch.cat([torch.sin(args), torch.cos(args)], dim=1)
    return nn.functional.pad(emb, (0, 1)) if dim % 2 else emb


class PixelNorm(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.rsqrt(x.pow(2).mean(dim=1, keepdim=True) + 1e-8)


class AdaptiveLayer(nn.Module):
    """Per-channel scale and shift read off the mapped noise code."""

    def __init__(self, channels: int, z_dim: int) -> None:
        super().__init__()
        self.style_net = nn.Linear(z_dim, 2 * channels)

    def forward(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        gamma, beta = self.style_net(z)[:, :, None, None].chunk(2, dim=1)
        return gamma * x + beta


class ConditionalResnetBlock(nn.Module):
    """``ResnetBlock_cond`` as released: x + [IN, modulate(z), ReLU, pad, conv, IN](x). Module indices as the
    authors' (conv_block: pad 0, conv 1, norm 2; conv_fin: relu 0, pad 1, conv 2, norm 3)."""

    def __init__(self, dim: int, temb_dim: int, z_dim: int) -> None:
        super().__init__()
        self.conv_block = nn.ModuleList([nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3), instance_norm(dim)])
        self.adaptive = AdaptiveLayer(dim, z_dim)
        self.conv_fin = nn.ModuleList([nn.ReLU(True), nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3), instance_norm(dim)])
        self.Dense_time = nn.Linear(temb_dim, dim)  # its output is overwritten in the released forward (see above)
        self.style = nn.Linear(z_dim, 2 * dim)  # built by the authors, never called

    def forward(self, x: torch.Tensor, temb: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        # The released loop ends with out = conv_block[2](x): only the norm of the input survives it.
        out = self.adaptive(self.conv_block[2](x), z)
        for layer in self.conv_fin:
            out = layer(out)
        return x + out


class UNSBGenerator(nn.Module):
    """``ResnetGenerator_ncsn``: ``model`` (indices as CUT's, so nce_layers 0, 4, 8 name the same features),
    ``model_res`` (indices 12.. in the NCE numbering), ``model_upsample``, ``z_transform``, ``time_embed``."""

    def __init__(self, ngf: int = 64, n_blocks: int = 9, n_mlp: int = 3) -> None:
        super().__init__()
        self.ngf = ngf
        head: list[nn.Module] = [nn.ReflectionPad2d(3), nn.Conv2d(3, ngf, 7), instance_norm(ngf), nn.ReLU(True)]
        for mult in (1, 2):
            head += [nn.Conv2d(ngf * mult, ngf * mult * 2, 3, 1, 1), instance_norm(ngf * mult * 2), nn.ReLU(True),
                     Downsample(ngf * mult * 2)]
        self.model = nn.Sequential(*head)
        self.model_res = nn.ModuleList(ConditionalResnetBlock(ngf * 4, 4 * ngf, 4 * ngf) for _ in range(n_blocks))
        up: list[nn.Module] = []
        for mult in (4, 2):
            up += [Upsample(ngf * mult), nn.Conv2d(ngf * mult, ngf * mult // 2, 3, 1, 1), instance_norm(ngf * mult // 2),
                   nn.ReLU(True)]
        up += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, 3, 7), nn.Tanh()]
        self.model_upsample = nn.Sequential(*up)
        mapping: list[nn.Module] = [PixelNorm(), nn.Linear(4 * ngf, 4 * ngf), nn.LeakyReLU(0.2)]
        for _ in range(n_mlp):
            mapping += [nn.Linear(4 * ngf, 4 * ngf), nn.LeakyReLU(0.2)]
        self.z_transform = nn.Sequential(*mapping)
        self.time_embed = nn.Sequential(nn.Linear(ngf, 4 * ngf), nn.LeakyReLU(0.2), nn.Linear(4 * ngf, 4 * ngf),
                                        nn.LeakyReLU(0.2))

    def _conditions(self, t: torch.Tensor, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.time_embed(timestep_embedding(t, self.ngf)), self.z_transform(z)

    def forward(self, x: torch.Tensor, t: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        temb, zemb = self._conditions(t, z)
        out = self.model(x)
        for block in self.model_res:
            out = block(out, temb, zemb)
        return self.model_upsample(out)

    def encode(self, x: torch.Tensor, t: torch.Tensor, z: torch.Tensor, layers: tuple[int, ...]) -> list[torch.Tensor]:
        """Features after each index in ``layers`` (``model`` first, then the residual blocks), up to the last."""
        temb, zemb = self._conditions(t, z)
        feats = []
        for i, layer in enumerate(self.model):
            x = layer(x)
            if i in layers:
                feats.append(x)
        for i, block in enumerate(self.model_res, start=len(self.model)):
            if i > layers[-1]:
                break
            x = block(x, temb, zemb)
            if i in layers:
                feats.append(x)
        return feats


class ConditionalConvBlock(nn.Module):
    """``ConvBlock_cond``: 4x4 conv (stride 1), + a projection of the time embedding, [IN], LeakyReLU, [blur-down].
    The blur layer is built even where it is not used, as the authors' (its filter is in their files)."""

    def __init__(self, cin: int, cout: int, temb_dim: int, norm: bool = True, downsample: bool = True) -> None:
        super().__init__()
        self.downsample = downsample
        self.conv1 = nn.Conv2d(cin, cout, 4, 1, 1)
        if norm:
            self.norm = instance_norm(cout)
        self.act = nn.LeakyReLU(0.2, True)
        self.down = Downsample(cout)
        self.dense = nn.Linear(temb_dim, cout)

    def forward(self, x: torch.Tensor, temb: torch.Tensor) -> torch.Tensor:
        out = self.conv1(x) + self.dense(temb)[:, :, None, None]
        if hasattr(self, "norm"):
            out = self.norm(out)
        out = self.act(out)
        return self.down(out) if self.downsample else out


class UNSBDiscriminator(nn.Module):
    """``NLayerDiscriminator_ncsn`` with 3 layers: the PatchGAN D (3 channels in) and, with 12 channels in, the
    entropy network E, which reads two (x_t, x_1) pairs concatenated: ``forward(xx, t, xx2)``."""

    def __init__(self, in_channels: int = 3, ndf: int = 64, n_layers: int = 3) -> None:
        super().__init__()
        temb = 4 * ndf
        blocks = [ConditionalConvBlock(in_channels, ndf, temb, norm=False)]
        mult = 1
        for n in range(1, n_layers):
            prev, mult = mult, min(2 ** n, 8)
            blocks.append(ConditionalConvBlock(ndf * prev, ndf * mult, temb))
        prev, mult = mult, min(2 ** n_layers, 8)
        blocks.append(ConditionalConvBlock(ndf * prev, ndf * mult, temb, downsample=False))
        self.model_main = nn.ModuleList(blocks)
        self.final_conv = nn.Conv2d(ndf * mult, 1, 4, 1, 1)
        self.t_embed = TimestepMLP(temb)

    def forward(self, x: torch.Tensor, t: torch.Tensor, x2: torch.Tensor | None = None) -> torch.Tensor:
        temb = self.t_embed(t)
        out = x if x2 is None else torch.cat([x, x2], dim=1)
        for block in self.model_main:
            out = block(out, temb)
        return self.final_conv(out)


class TimestepMLP(nn.Module):
    """The discriminator's ``TimestepEmbedding``: sinusoidal embedding, then two Linear + LeakyReLU layers."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.dim = dim
        self.main = nn.Sequential(nn.Linear(dim, dim), nn.LeakyReLU(0.2), nn.Linear(dim, dim), nn.LeakyReLU(0.2))

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        return self.main(timestep_embedding(t, self.dim))
