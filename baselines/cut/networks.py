"""CUT's networks (Park et al., ECCV 2020) in the official code's module layout.

Written from the paper and the module structure of taesungp/contrastive-unpaired-translation
(``networks.ResnetGenerator`` and ``NLayerDiscriminator`` with anti-aliasing on, their default;
``PatchSampleF`` with MLPs), so ``latest_net_G.pth`` loads unchanged, the fixed blur filters
included (registered buffers named ``filt``). Anti-aliased sampling (Zhang, ICML 2019): a stride-1
conv followed by a [1 2 1] x [1 2 1] blur with stride 2 on the way down; a [1 3 3 1] x [1 3 3 1]
transposed blur (x4) followed by a stride-1 conv on the way up.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from baselines.resnet_blocks import ResnetBlock, instance_norm


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


class CUTGenerator(nn.Module):
    """ResNet generator with anti-aliased sampling. Layer indices follow the official model, so
    ``nce_layers`` (0, 4, 8, 12, 16) name the same features: the padded input, the two stride-1 convs
    before each blur-downsample, and the outputs of residual blocks 1 and 5."""

    def __init__(self, ngf: int = 64, n_blocks: int = 9) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.ReflectionPad2d(3), nn.Conv2d(3, ngf, 7), instance_norm(ngf), nn.ReLU(True)]
        for mult in (1, 2):
            layers += [nn.Conv2d(ngf * mult, ngf * mult * 2, 3, 1, 1), instance_norm(ngf * mult * 2), nn.ReLU(True),
                       Downsample(ngf * mult * 2)]
        layers += [ResnetBlock(ngf * 4) for _ in range(n_blocks)]
        for mult in (4, 2):
            layers += [Upsample(ngf * mult), nn.Conv2d(ngf * mult, ngf * mult // 2, 3, 1, 1), instance_norm(ngf * mult // 2),
                       nn.ReLU(True)]
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, 3, 7), nn.Tanh()]
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)

    def encode(self, x: torch.Tensor, layers: tuple[int, ...]) -> list[torch.Tensor]:
        """Features after each layer index in ``layers`` (stops after the last one)."""
        feats = []
        for i, layer in enumerate(self.model):
            x = layer(x)
            if i in layers:
                feats.append(x)
                if i == layers[-1]:
                    break
        return feats


class CUTDiscriminator(nn.Module):
    """The 70x70 PatchGAN with anti-aliased downsampling (stride-1 4x4 conv, then blur-downsample)."""

    def __init__(self, ndf: int = 64, n_layers: int = 3) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(3, ndf, 4, 1, 1), nn.LeakyReLU(0.2, True), Downsample(ndf)]
        mult = 1
        for n in range(1, n_layers):
            prev, mult = mult, min(2 ** n, 8)
            layers += [nn.Conv2d(ndf * prev, ndf * mult, 4, 1, 1), instance_norm(ndf * mult), nn.LeakyReLU(0.2, True),
                       Downsample(ndf * mult)]
        prev, mult = mult, min(2 ** n_layers, 8)
        layers += [nn.Conv2d(ndf * prev, ndf * mult, 4, 1, 1), instance_norm(ndf * mult), nn.LeakyReLU(0.2, True),
                   nn.Conv2d(ndf * mult, 1, 4, 1, 1)]
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


class PatchSampleF(nn.Module):
    """Per NCE layer, a 2-layer MLP (C -> nc -> nc) on features sampled at shared random positions, then L2
    normalisation. The official code builds the MLPs at the first batch from the feature shapes; the shapes are
    known from ngf, so we build them up front (same names: mlp_0 ... mlp_4)."""

    def __init__(self, channels: list[int], nc: int = 256) -> None:
        super().__init__()
        for i, c in enumerate(channels):
            setattr(self, f"mlp_{i}", nn.Sequential(nn.Linear(c, nc), nn.ReLU(), nn.Linear(nc, nc)))
        self.n = len(channels)

    def forward(self, feats: list[torch.Tensor], num_patches: int, patch_ids: list[torch.Tensor] | None = None
                ) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        out, ids = [], []
        for i, feat in enumerate(feats):
            flat = feat.permute(0, 2, 3, 1).flatten(1, 2)  # N x HW x C
            if patch_ids is None:
                pid = torch.randperm(flat.shape[1])[:min(num_patches, flat.shape[1])].to(feat.device)
            else:
                pid = patch_ids[i]
            x = getattr(self, f"mlp_{i}")(flat[:, pid, :].flatten(0, 1))
            out.append(x / (x.pow(2).sum(1, keepdim=True).sqrt() + 1e-7))  # the official Normalize(2)
            ids.append(pid)
        return out, ids


def patch_nce(q: torch.Tensor, k: torch.Tensor, batch_size: int, tau: float = 0.07) -> torch.Tensor:
    """PatchNCE: each query patch must pick its own key patch among the other patches of the same image.
    q, k: (N * P) x C, L2-normalised; keys are detached. Returns the per-patch loss ((N * P),)."""
    k = k.detach()
    pos = (q * k).sum(1, keepdim=True)
    qb, kb = q.view(batch_size, -1, q.shape[1]), k.view(batch_size, -1, k.shape[1])
    neg = torch.bmm(qb, kb.transpose(1, 2))
    eye = torch.eye(neg.shape[1], dtype=torch.bool, device=q.device)[None]
    neg = neg.masked_fill(eye, -10.0).view(-1, neg.shape[2])
    logits = torch.cat([pos, neg], dim=1) / tau
    return F.cross_entropy(logits, torch.zeros(len(logits), dtype=torch.long, device=q.device), reduction="none")
