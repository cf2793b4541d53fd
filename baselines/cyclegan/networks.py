"""CycleGAN's networks (Zhu et al., ICCV 2017) in the official PyTorch code's module layout.

Written from the paper's appendix 7.2 and the module structure of junyanz/pytorch-CycleGAN-and-pix2pix
(``networks.ResnetGenerator``, ``networks.NLayerDiscriminator``), so that its saved state dicts
(``latest_net_G_A.pth``: keys ``model.<index>...``) load unchanged. Instance norm without affine
parameters, so every convolution has a bias; reflection padding; ConvTranspose upsampling.
"""

from __future__ import annotations

import torch
from torch import nn

from baselines.cyclegan_codebase import ResnetBlock, instance_norm


class ResnetGenerator(nn.Module):
    """c7s1-ngf, d(2ngf), d(4ngf), n_blocks x R(4ngf), u(2ngf), u(ngf), c7s1-3, tanh ("resnet_9blocks")."""

    def __init__(self, ngf: int = 64, n_blocks: int = 9) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.ReflectionPad2d(3), nn.Conv2d(3, ngf, 7), instance_norm(ngf), nn.ReLU(True)]
        for mult in (1, 2):
            layers += [nn.Conv2d(ngf * mult, ngf * mult * 2, 3, stride=2, padding=1), instance_norm(ngf * mult * 2), nn.ReLU(True)]
        layers += [ResnetBlock(ngf * 4) for _ in range(n_blocks)]
        for mult in (4, 2):
            layers += [nn.ConvTranspose2d(ngf * mult, ngf * mult // 2, 3, stride=2, padding=1, output_padding=1),
                       instance_norm(ngf * mult // 2), nn.ReLU(True)]
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, 3, 7), nn.Tanh()]
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


class NLayerDiscriminator(nn.Module):
    """The 70x70 PatchGAN: C64 (no norm) - C128 - C256 - C512 (stride 1) - 1 channel, 4x4 kernels, LeakyReLU 0.2."""

    def __init__(self, ndf: int = 64, n_layers: int = 3) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(3, ndf, 4, stride=2, padding=1), nn.LeakyReLU(0.2, True)]
        mult = 1
        for n in range(1, n_layers + 1):
            prev, mult = mult, min(2 ** n, 8)
            stride = 2 if n < n_layers else 1
            layers += [nn.Conv2d(ndf * prev, ndf * mult, 4, stride=stride, padding=1), instance_norm(ndf * mult),
                       nn.LeakyReLU(0.2, True)]
        layers += [nn.Conv2d(ndf * mult, 1, 4, stride=1, padding=1)]
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


def init_normal(module: nn.Module, gain: float = 0.02, seed_generator: torch.Generator | None = None) -> None:
    """The official 'normal' init: conv weights N(0, 0.02), biases 0."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            with torch.no_grad():
                m.weight.normal_(0.0, gain, generator=seed_generator)
                m.bias.zero_()


def generator_shape_from_state(state: dict[str, torch.Tensor]) -> tuple[int, int]:
    """(ngf, n_blocks) of a ResnetGenerator state dict in the official layout."""
    ngf = state["model.1.weight"].shape[0]
    blocks = {k.split(".")[1] for k in state if ".conv_block." in k}
    return ngf, len(blocks)
