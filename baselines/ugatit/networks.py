"""U-GAT-IT's networks (Kim et al., ICLR 2020) in the module layout of the PyTorch code its authors point to
(znxlwm/UGATIT-pytorch, ``networks.py``), so its ``*_params_*.pt`` files load unchanged.

Generator: a CycleGAN-like encoder (no conv biases) whose features are reweighted by a class activation map: two
1-unit classifiers on the global average- and max-pooled features give the CAM logits, and their weights scale
every channel before a 1x1 conv fuses the two. An MLP on the fused features (the whole flattened map, or in the
``light`` version its average) gives gamma and beta for the decoder's residual blocks, normalised by AdaLIN (a
learned per-channel mix ``rho`` of instance and layer norm); the upsampling path uses LIN with learned affine terms.

Discriminator: a spectrally normalised PatchGAN with the same CAM head. As released, its CAM reweighting reads
``list(gap_fc.parameters())[0]``, which under spectral norm is the *unnormalised* ``weight_orig`` (the logits use
the normalised weight): we compute the same.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import spectral_norm


def _instance_layer_mix(x: torch.Tensor, rho: torch.Tensor, eps: float) -> torch.Tensor:
    """rho x instance norm + (1 - rho) x layer norm, unbiased variances (torch.var), op for op in the released order
    (the order autograd sums gradients in, so training steps equal theirs bit for bit)."""
    in_mean, in_var = torch.mean(x, dim=[2, 3], keepdim=True), torch.var(x, dim=[2, 3], keepdim=True)
    out_in = (x - in_mean) / torch.sqrt(in_var + eps)
    ln_mean, ln_var = torch.mean(x, dim=[1, 2, 3], keepdim=True), torch.var(x, dim=[1, 2, 3], keepdim=True)
    out_ln = (x - ln_mean) / torch.sqrt(ln_var + eps)
    return rho.expand(x.shape[0], -1, -1, -1) * out_in + (1 - rho.expand(x.shape[0], -1, -1, -1)) * out_ln


class AdaILN(nn.Module):
    def __init__(self, channels: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.eps = eps
        self.rho = nn.Parameter(torch.full((1, channels, 1, 1), 0.9))

    def forward(self, x: torch.Tensor, gamma: torch.Tensor, beta: torch.Tensor) -> torch.Tensor:
        out = _instance_layer_mix(x, self.rho, self.eps)
        return out * gamma.unsqueeze(2).unsqueeze(3) + beta.unsqueeze(2).unsqueeze(3)


class ILN(nn.Module):
    def __init__(self, channels: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.eps = eps
        self.rho = nn.Parameter(torch.zeros(1, channels, 1, 1))
        self.gamma = nn.Parameter(torch.ones(1, channels, 1, 1))
        self.beta = nn.Parameter(torch.zeros(1, channels, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = _instance_layer_mix(x, self.rho, self.eps)
        n = x.shape[0]
        return out * self.gamma.expand(n, -1, -1, -1) + self.beta.expand(n, -1, -1, -1)


class ResnetBlock(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.conv_block = nn.Sequential(nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3, bias=False), nn.InstanceNorm2d(dim),
                                        nn.ReLU(True), nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3, bias=False),
                                        nn.InstanceNorm2d(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv_block(x)


class ResnetAdaILNBlock(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.pad1, self.conv1, self.norm1 = nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3, bias=False), AdaILN(dim)
        self.relu1 = nn.ReLU(True)
        self.pad2, self.conv2, self.norm2 = nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3, bias=False), AdaILN(dim)

    def forward(self, x: torch.Tensor, gamma: torch.Tensor, beta: torch.Tensor) -> torch.Tensor:
        out = self.relu1(self.norm1(self.conv1(self.pad1(x)), gamma, beta))
        return self.norm2(self.conv2(self.pad2(out)), gamma, beta) + x


def cam(x: torch.Tensor, gap_fc: nn.Linear, gmp_fc: nn.Linear, gap_weight: torch.Tensor, gmp_weight: torch.Tensor
        ) -> tuple[torch.Tensor, torch.Tensor]:
    """The CAM head: logits of the average- and max-pooled features, and the features scaled by each classifier's
    weights, concatenated (2C channels)."""
    # in the released order (average branch, then max branch): the order autograd sums x's gradients in
    gap_logit = gap_fc(F.adaptive_avg_pool2d(x, 1).view(x.shape[0], -1))
    gap = x * gap_weight.unsqueeze(2).unsqueeze(3)
    gmp_logit = gmp_fc(F.adaptive_max_pool2d(x, 1).view(x.shape[0], -1))
    gmp = x * gmp_weight.unsqueeze(2).unsqueeze(3)
    return torch.cat([gap_logit, gmp_logit], 1), torch.cat([gap, gmp], 1)


class UGATITGenerator(nn.Module):
    def __init__(self, ngf: int = 64, n_blocks: int = 4, img_size: int = 256, light: bool = False) -> None:
        super().__init__()
        self.n_blocks, self.light = n_blocks, light
        d = 4 * ngf
        down: list[nn.Module] = [nn.ReflectionPad2d(3), nn.Conv2d(3, ngf, 7, bias=False), nn.InstanceNorm2d(ngf),
                                 nn.ReLU(True)]
        for mult in (1, 2):
            down += [nn.ReflectionPad2d(1), nn.Conv2d(ngf * mult, ngf * mult * 2, 3, 2, bias=False),
                     nn.InstanceNorm2d(ngf * mult * 2), nn.ReLU(True)]
        down += [ResnetBlock(d) for _ in range(n_blocks)]
        self.DownBlock = nn.Sequential(*down)
        self.gap_fc, self.gmp_fc = nn.Linear(d, 1, bias=False), nn.Linear(d, 1, bias=False)
        self.conv1x1 = nn.Conv2d(2 * d, d, 1)
        self.relu = nn.ReLU(True)
        fc_in = d if light else (img_size // 4) ** 2 * d
        self.FC = nn.Sequential(nn.Linear(fc_in, d, bias=False), nn.ReLU(True), nn.Linear(d, d, bias=False), nn.ReLU(True))
        self.gamma, self.beta = nn.Linear(d, d, bias=False), nn.Linear(d, d, bias=False)
        for i in range(n_blocks):
            setattr(self, f"UpBlock1_{i + 1}", ResnetAdaILNBlock(d))
        up: list[nn.Module] = []
        for mult in (4, 2):
            up += [nn.Upsample(scale_factor=2, mode="nearest"), nn.ReflectionPad2d(1),
                   nn.Conv2d(ngf * mult, ngf * mult // 2, 3, bias=False), ILN(ngf * mult // 2), nn.ReLU(True)]
        up += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, 3, 7, bias=False), nn.Tanh()]
        self.UpBlock2 = nn.Sequential(*up)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The translation, the CAM logits (N x 2) and the attention heatmap."""
        x = self.DownBlock(x)
        cam_logit, scaled = cam(x, self.gap_fc, self.gmp_fc, self.gap_fc.weight, self.gmp_fc.weight)
        x = self.relu(self.conv1x1(scaled))
        heatmap = x.sum(dim=1, keepdim=True)
        pooled = F.adaptive_avg_pool2d(x, 1) if self.light else x
        h = self.FC(pooled.flatten(1))
        gamma, beta = self.gamma(h), self.beta(h)
        for i in range(self.n_blocks):
            x = getattr(self, f"UpBlock1_{i + 1}")(x, gamma, beta)
        return self.UpBlock2(x), cam_logit, heatmap

    def clip_rho(self) -> None:
        """The authors' RhoClipper(0, 1), applied after every generator step."""
        with torch.no_grad():
            for m in self.modules():
                if isinstance(m, (AdaILN, ILN)):
                    m.rho.clamp_(0, 1)


class UGATITDiscriminator(nn.Module):
    def __init__(self, ndf: int = 64, n_layers: int = 5) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.ReflectionPad2d(1), spectral_norm(nn.Conv2d(3, ndf, 4, 2)), nn.LeakyReLU(0.2, True)]
        for i in range(1, n_layers - 2):
            mult = 2 ** (i - 1)
            layers += [nn.ReflectionPad2d(1), spectral_norm(nn.Conv2d(ndf * mult, ndf * mult * 2, 4, 2)),
                       nn.LeakyReLU(0.2, True)]
        mult = 2 ** (n_layers - 3)
        layers += [nn.ReflectionPad2d(1), spectral_norm(nn.Conv2d(ndf * mult, ndf * mult * 2, 4, 1)),
                   nn.LeakyReLU(0.2, True)]
        d = ndf * 2 ** (n_layers - 2)
        self.gap_fc = spectral_norm(nn.Linear(d, 1, bias=False))
        self.gmp_fc = spectral_norm(nn.Linear(d, 1, bias=False))
        self.conv1x1 = nn.Conv2d(2 * d, d, 1)
        self.leaky_relu = nn.LeakyReLU(0.2, True)
        self.pad = nn.ReflectionPad2d(1)
        self.conv = spectral_norm(nn.Conv2d(d, 1, 4, 1, bias=False))
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x = self.model(x)
        cam_logit, scaled = cam(x, self.gap_fc, self.gmp_fc, self.gap_fc.weight_orig, self.gmp_fc.weight_orig)
        x = self.leaky_relu(self.conv1x1(scaled))
        return self.conv(self.pad(x)), cam_logit, x.sum(dim=1, keepdim=True)
