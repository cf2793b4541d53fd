"""ToDayGAN's networks (Anoosheh et al., ICRA 2019) in the authors' module layout (AAnoosheh/ToDayGAN, a ComboGAN
fork: ``networks.ResnetGenEncoder``, ``ResnetGenDecoder``, ``NLayerDiscriminator``), so their saved files load.

Generator: one encoder and one decoder per domain (translation = encoder of the source, decoder of the target): the
CycleGAN ResNet generator cut after ``n_blocks // 2`` residual blocks, with PReLU activations, stride-2 convs down and
4x4 transposed convs up, instance norm without affine parameters.

Discriminator: per domain three PatchGANs on three views of the image: the RGB image blurred with the authors'
5x5 kernel, its luminance, and the horizontal and vertical gradients of the luminance subsampled by 2. Each is
multi-scale: every intermediate conv has one extra channel that is read out as a prediction at that depth, so a
view gives ``n_layers`` prediction maps (the gradient view one fewer layer).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from scipy.ndimage import gaussian_filter
from torch import nn

from baselines.cyclegan_codebase import ResnetBlock, instance_norm


def blur_kernel(size: int = 5, sigma: float = 3.0) -> torch.Tensor:
    """The authors' ``gkern_2d``: scipy's Gaussian filter of a centred dirac in a size x size array. With sigma 3 on
    5 x 5 and scipy's reflecting border the tails fold back, so this "blur" is nearly a 5 x 5 box filter (all weights
    0.0399-0.0401); every published ToDayGAN number used it."""
    dirac = np.zeros((size, size))
    dirac[size // 2, size // 2] = 1
    return torch.tensor(np.stack([gaussian_filter(dirac, sigma)[None]] * 3), dtype=torch.float32)


class Encoder(nn.Module):
    def __init__(self, ngf: int = 64, n_blocks: int = 4) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.ReflectionPad2d(3), nn.Conv2d(3, ngf, 7), instance_norm(ngf), nn.PReLU()]
        for mult in (1, 2):
            layers += [nn.Conv2d(ngf * mult, ngf * mult * 2, 3, 2, 1), instance_norm(ngf * mult * 2), nn.PReLU()]
        layers += [ResnetBlock(4 * ngf, act=nn.PReLU) for _ in range(n_blocks)]
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


class Decoder(nn.Module):
    def __init__(self, ngf: int = 64, n_blocks: int = 5) -> None:
        super().__init__()
        layers: list[nn.Module] = [ResnetBlock(4 * ngf, act=nn.PReLU) for _ in range(n_blocks)]
        for mult in (4, 2):
            layers += [nn.ConvTranspose2d(ngf * mult, ngf * mult // 2, 4, 2, 1), instance_norm(ngf * mult // 2),
                       nn.PReLU()]
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, 3, 7), nn.Tanh()]
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


class ComboGenerator(nn.Module):
    """``encoders[d]`` and ``decoders[d]`` for each domain d (the authors save them as G0..G{2n-1})."""

    def __init__(self, ngf: int = 64, n_blocks: int = 9, n_domains: int = 2) -> None:
        super().__init__()
        self.encoders = nn.ModuleList(Encoder(ngf, n_blocks // 2) for _ in range(n_domains))
        self.decoders = nn.ModuleList(Decoder(ngf, n_blocks - n_blocks // 2) for _ in range(n_domains))

    def translate(self, x: torch.Tensor, source: int, target: int) -> torch.Tensor:
        return self.decoders[target](self.encoders[source](x))


class MultiScalePatchGAN(nn.Sequential):
    """The authors' ``SequentialOutput``: stages whose last channel is a prediction map, the rest the next input."""

    def __init__(self, in_channels: int, ndf: int, n_layers: int) -> None:
        stages = [nn.Sequential(nn.Conv2d(in_channels, ndf, 4, 2, 2), nn.PReLU())]
        mult = 1
        for n in range(1, n_layers):
            prev, mult = mult, min(2 ** n, 8)
            stages.append(nn.Sequential(nn.Conv2d(ndf * prev, ndf * mult + 1, 4, 2, 2), instance_norm(ndf * mult + 1),
                                        nn.PReLU()))
        prev, mult = mult, min(2 ** n_layers, 8)
        stages.append(nn.Sequential(nn.Conv2d(ndf * prev, ndf * mult, 4, 1, 2), instance_norm(ndf * mult), nn.PReLU(),
                                    nn.Conv2d(ndf * mult, 1, 4, 1, 2)))
        super().__init__(*stages)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        predictions = []
        for i, stage in enumerate(self):
            out = stage(x)
            if i == 0:
                x = out
                continue
            predictions.append(out[:, -1])
            x = out[:, :-1]
        return predictions


class ViewsDiscriminator(nn.Module):
    def __init__(self, ndf: int = 64, n_layers: int = 4) -> None:
        super().__init__()
        self.register_buffer("blur", blur_kernel(), persistent=False)
        self.register_buffer("grad", torch.tensor([0.0, 0, 0, -1, 0, 1, 0, 0, 0]).view(1, 1, 3, 3), persistent=False)
        self.model_rgb = MultiScalePatchGAN(3, ndf, n_layers)
        self.model_gray = MultiScalePatchGAN(1, ndf, n_layers)
        self.model_grad = MultiScalePatchGAN(2, ndf, n_layers - 1)

    def forward(self, x: torch.Tensor) -> tuple[list[torch.Tensor], list[torch.Tensor], list[torch.Tensor]]:
        blurred = F.conv2d(x, self.blur, groups=3, padding=2)
        gray = (0.299 * x[:, 0] + 0.587 * x[:, 1] + 0.114 * x[:, 2])[:, None]
        sub = gray[:, :, ::2, ::2]  # their 1x1 stride-2 conv with weight 1
        gradient = torch.cat([F.conv2d(sub, self.grad), F.conv2d(sub, self.grad.transpose(-2, -1))], 1)
        return self.model_rgb(blurred), self.model_gray(gray), self.model_grad(gradient)


def relativistic_lsgan(real: list[torch.Tensor], fake: list[torch.Tensor], discriminator: bool) -> torch.Tensor:
    """The authors' ``GANLoss`` on one view: mean((D(real) - D(fake) + y)^2) per scale, y = -1 for D and +1 for G
    (the real predictions detached for G), weighted 1, 2, ..., n-1, n+1 from shallow to deep and normalised by the
    weights' sum times the number of scales."""
    y = -1.0 if discriminator else 1.0
    if not discriminator:
        real = [r.detach() for r in real]
    weights = list(range(1, len(real) + 1))
    weights[-1] += 1
    losses = [w * torch.mean((r - f + y) ** 2) for w, r, f in zip(weights, real, fake)]
    return sum(losses) / (sum(weights) * len(losses))


def views_loss(real, fake, discriminator: bool) -> torch.Tensor:
    """The mean of the relativistic loss over the three views (``criterionGAN``)."""
    return sum(relativistic_lsgan(r, f, discriminator) for r, f in zip(real, fake)) / 3
