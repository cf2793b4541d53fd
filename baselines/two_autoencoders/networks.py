"""MUNIT's and UNIT's building blocks (Huang et al., ECCV 2018; Liu et al., NeurIPS 2017) in the module layout
of the official PyTorch code (NVlabs/MUNIT ``networks.py``, which also hosts UNIT's PyTorch version), so
its checkpoints (``gen_<iter>.pt``: ``{"a": ..., "b": ...}``) load unchanged.

Conv blocks: pad (reflect) -> conv (bias) -> norm -> activation. Content encoder: 7x7 conv, two 4x4
stride-2 convs, residual blocks, instance norm. Style encoder (MUNIT): 7x7 conv, 4x4 stride-2 convs,
global average pooling, 1x1 conv to the style code, no normalisation. Decoder: residual blocks (AdaIN
in MUNIT, IN in UNIT), nearest 2x upsampling + 5x5 conv with layer norm (twice), 7x7 conv, tanh. The
multi-scale discriminator: 3 scales (3x3 average-pool downsampling), 4x4 stride-2 convs, LeakyReLU, no norm.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class LayerNorm(nn.Module):
    """Per-sample normalisation over (C, H, W) with the unbiased std and eps added to the std (official)."""

    def __init__(self, num_features: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.eps = eps
        self.gamma = nn.Parameter(torch.empty(num_features).uniform_())
        self.beta = nn.Parameter(torch.zeros(num_features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = [-1] + [1] * (x.dim() - 1)
        flat = x.reshape(x.size(0), -1)
        x = (x - flat.mean(1).view(*shape)) / (flat.std(1).view(*shape) + self.eps)
        return x * self.gamma.view(1, -1, 1, 1) + self.beta.view(1, -1, 1, 1)


class AdaptiveInstanceNorm2d(nn.Module):
    """Instance norm whose scale and shift are set per image from the style code (``weight``, ``bias``:
    N*C vectors assigned before each decode). The running buffers exist only for the key layout."""

    def __init__(self, num_features: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.num_features, self.eps = num_features, eps
        self.weight: torch.Tensor | None = None
        self.bias: torch.Tensor | None = None
        self.register_buffer("running_mean", torch.zeros(num_features))
        self.register_buffer("running_var", torch.ones(num_features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.weight is None or self.bias is None:
            raise RuntimeError("AdaIN parameters must be assigned (decode with a style code)")
        b, c = x.shape[:2]
        # in float32: under bf16 autocast x and the style MLP's weight/bias arrive in bf16 beside float32 buffers,
        # a mix batch_norm refuses (and statistics over a whole feature map want the precision anyway)
        out = F.batch_norm(x.float().reshape(1, b * c, *x.shape[2:]), self.running_mean.repeat(b),
                           self.running_var.repeat(b), self.weight.float(), self.bias.float(), True, 0.0, self.eps)
        return out.view_as(x).to(x.dtype)


class Conv2dBlock(nn.Module):
    def __init__(self, cin: int, cout: int, kernel: int, stride: int, padding: int, norm: str = "none",
                 activation: str = "relu") -> None:
        super().__init__()
        self.pad = nn.ReflectionPad2d(padding)
        self.norm = {"in": lambda: nn.InstanceNorm2d(cout), "ln": lambda: LayerNorm(cout),
                     "adain": lambda: AdaptiveInstanceNorm2d(cout), "none": lambda: None}[norm]()
        self.activation = {"relu": lambda: nn.ReLU(inplace=True), "lrelu": lambda: nn.LeakyReLU(0.2, inplace=True),
                           "tanh": nn.Tanh, "none": lambda: None}[activation]()
        self.conv = nn.Conv2d(cin, cout, kernel, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(self.pad(x))
        if self.norm is not None:
            x = self.norm(x)
        return self.activation(x) if self.activation is not None else x


class ResBlock(nn.Module):
    def __init__(self, dim: int, norm: str) -> None:
        super().__init__()
        self.model = nn.Sequential(Conv2dBlock(dim, dim, 3, 1, 1, norm, "relu"), Conv2dBlock(dim, dim, 3, 1, 1, norm, "none"))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.model(x)


class ResBlocks(nn.Module):
    def __init__(self, n: int, dim: int, norm: str) -> None:
        super().__init__()
        self.model = nn.Sequential(*[ResBlock(dim, norm) for _ in range(n)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


class ContentEncoder(nn.Module):
    def __init__(self, n_downsample: int, n_res: int, dim: int) -> None:
        super().__init__()
        layers: list[nn.Module] = [Conv2dBlock(3, dim, 7, 1, 3, "in")]
        for _ in range(n_downsample):
            layers.append(Conv2dBlock(dim, 2 * dim, 4, 2, 1, "in"))
            dim *= 2
        layers.append(ResBlocks(n_res, dim, "in"))
        self.model = nn.Sequential(*layers)
        self.output_dim = dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


class StyleEncoder(nn.Module):
    def __init__(self, n_downsample: int, dim: int, style_dim: int) -> None:
        super().__init__()
        layers: list[nn.Module] = [Conv2dBlock(3, dim, 7, 1, 3)]
        for _ in range(2):
            layers.append(Conv2dBlock(dim, 2 * dim, 4, 2, 1))
            dim *= 2
        layers += [Conv2dBlock(dim, dim, 4, 2, 1) for _ in range(n_downsample - 2)]
        layers += [nn.AdaptiveAvgPool2d(1), nn.Conv2d(dim, style_dim, 1, 1, 0)]
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


class Decoder(nn.Module):
    def __init__(self, n_upsample: int, n_res: int, dim: int, res_norm: str) -> None:
        super().__init__()
        layers: list[nn.Module] = [ResBlocks(n_res, dim, res_norm)]
        for _ in range(n_upsample):
            layers += [nn.Upsample(scale_factor=2), Conv2dBlock(dim, dim // 2, 5, 1, 2, "ln")]
            dim //= 2
        layers.append(Conv2dBlock(dim, 3, 7, 1, 3, "none", "tanh"))
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


class LinearBlock(nn.Module):
    def __init__(self, cin: int, cout: int, activation: str) -> None:
        super().__init__()
        self.fc = nn.Linear(cin, cout)
        self.activation = nn.ReLU(inplace=True) if activation == "relu" else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.fc(x)
        return self.activation(x) if self.activation is not None else x


class MLP(nn.Module):
    def __init__(self, cin: int, cout: int, dim: int, n_blocks: int = 3) -> None:
        super().__init__()
        layers = [LinearBlock(cin, dim, "relu")] + [LinearBlock(dim, dim, "relu") for _ in range(n_blocks - 2)]
        self.model = nn.Sequential(*layers, LinearBlock(dim, cout, "none"))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x.view(x.size(0), -1))


class MsImageDis(nn.Module):
    def __init__(self, dim: int = 64, n_layer: int = 4, num_scales: int = 3) -> None:
        super().__init__()
        self.downsample = nn.AvgPool2d(3, stride=2, padding=[1, 1], count_include_pad=False)
        self.cnns = nn.ModuleList()
        for _ in range(num_scales):
            d = dim
            layers: list[nn.Module] = [Conv2dBlock(3, d, 4, 2, 1, "none", "lrelu")]
            for _ in range(n_layer - 1):
                layers.append(Conv2dBlock(d, 2 * d, 4, 2, 1, "none", "lrelu"))
                d *= 2
            layers.append(nn.Conv2d(d, 1, 1, 1, 0))
            self.cnns.append(nn.Sequential(*layers))

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        outs = []
        for cnn in self.cnns:
            outs.append(cnn(x))
            x = self.downsample(x)
        return outs

    def dis_loss(self, fake: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
        """LSGAN, summed over scales (official calc_dis_loss)."""
        return sum(((f - 0) ** 2).mean() + ((r - 1) ** 2).mean() for f, r in zip(self(fake), self(real)))

    def gen_loss(self, fake: torch.Tensor) -> torch.Tensor:
        return sum(((f - 1) ** 2).mean() for f in self(fake))


def init_weights(module: nn.Module, kind: str) -> None:
    """The official weights_init: every nn.Conv*/nn.Linear weight Kaiming-normal (fan_in, a=0) or N(0, 0.02)
    ('gaussian', the discriminators), biases 0."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            if kind == "kaiming":
                nn.init.kaiming_normal_(m.weight, a=0, mode="fan_in")
            else:
                nn.init.normal_(m.weight, 0.0, 0.02)
            nn.init.zeros_(m.bias)


def step_decay(step: int, step_size: int, gamma: float = 0.5) -> float:
    """MUNIT/UNIT's learning-rate policy: multiply by gamma every step_size iterations."""
    return gamma ** (step // step_size)

