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
from torch import nn

from baselines.antialiased_sampling import Downsample, Upsample
from baselines.cyclegan_codebase import ResnetBlock, instance_norm


def run_collecting(layers: nn.Sequential, x: torch.Tensor, indices: tuple[int, ...], stop_after_last: bool
                   ) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """``x`` through ``layers`` with the output after each layer index in ``indices`` kept; with
    ``stop_after_last`` the pass ends after the last of them (feature extraction for the patch losses)."""
    feats = []
    for i, layer in enumerate(layers):
        x = layer(x)
        if i in indices:
            feats.append(x)
            if stop_after_last and i == indices[-1]:
                break
    return x, feats


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

    def forward_with_features(self, x: torch.Tensor, layers: tuple[int, ...]) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """The translation and the features after each layer index in ``layers``, from one pass (DECENT)."""
        return run_collecting(self.model, x, layers, stop_after_last=False)

    def encode(self, x: torch.Tensor, layers: tuple[int, ...]) -> list[torch.Tensor]:
        """Features after each layer index in ``layers`` (stops after the last one)."""
        return run_collecting(self.model, x, layers, stop_after_last=True)[1]

    def feature_channels(self, layers: tuple[int, ...]) -> list[int]:
        """The widths of the features at ``layers`` (what a patch head on them must read), from a tiny probe."""
        with torch.no_grad():
            return [t.shape[1] for t in self.encode(torch.zeros(1, 3, 16, 16), layers)]


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
