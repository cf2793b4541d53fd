"""Zero-DCE (Guo et al., CVPR 2020): a 79,416-parameter network that predicts per-pixel light-enhancement
curves, trained on adverse images alone with four non-reference losses.

DCE-Net: seven 3x3 convolutions of 32 channels with symmetric skip concatenations, tanh at the end,
giving 8 curve maps of 3 channels. Enhancement applies LE(x) = x + a (x^2 - x) eight times. Losses
(official lowlight_train.py, weights included): 200 * illumination smoothness (TV of the curve maps)
+ spatial consistency (4x4 regions, 4 neighbours) + 5 * colour constancy + 10 * exposure control
(16x16 regions towards 0.6). Adam 1e-4 with weight decay 1e-4, gradient norm clipped at 0.1,
constant learning rate. Module names (``e_conv1`` ... ``e_conv7``) follow the official code, so its
``Epoch99.pth`` loads unchanged. The official trainer resizes to 256x256; we crop like every other
method here (native scale), see the presets.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from bench.learned import LearnedTranslator, Schedule


@dataclass(frozen=True)
class ZeroDCEConfig(Schedule):
    ARCHITECTURE_FIELDS = ("width", "n_curves")

    width: int = 32
    n_curves: int = 8
    lr: float = 1e-4
    weight_decay: float = 1e-4
    grad_clip: float = 0.1
    w_tv: float = 200.0
    w_spa: float = 1.0
    w_col: float = 5.0
    w_exp: float = 10.0
    exposure: float = 0.6
    epoch_decay: int = 200  # == epochs: constant learning rate, as the official trainer
    batch_size: int = 8
    load_size: int | None = None
    fine_size: int = 128  # 128 x 256 crops (the official trainer resizes to 256 x 256)


PRESETS = {
    "paper": ZeroDCEConfig(),
    "quick": ZeroDCEConfig(fine_size=64, max_steps=300, epochs=3, epoch_decay=3, checkpoint_every=100),
    "smoke": ZeroDCEConfig(batch_size=4, fine_size=32, max_steps=12, epochs=1, epoch_decay=1, checkpoint_every=4,
                           log_every=2),
}


class DCENet(nn.Module):
    def __init__(self, width: int = 32, n_curves: int = 8) -> None:
        super().__init__()
        self.n_curves = n_curves
        self.e_conv1 = nn.Conv2d(3, width, 3, 1, 1)
        self.e_conv2 = nn.Conv2d(width, width, 3, 1, 1)
        self.e_conv3 = nn.Conv2d(width, width, 3, 1, 1)
        self.e_conv4 = nn.Conv2d(width, width, 3, 1, 1)
        self.e_conv5 = nn.Conv2d(2 * width, width, 3, 1, 1)
        self.e_conv6 = nn.Conv2d(2 * width, width, 3, 1, 1)
        self.e_conv7 = nn.Conv2d(2 * width, 3 * n_curves, 3, 1, 1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(enhanced image, curve maps) for x in [0, 1]."""
        x1 = F.relu(self.e_conv1(x))
        x2 = F.relu(self.e_conv2(x1))
        x3 = F.relu(self.e_conv3(x2))
        x4 = F.relu(self.e_conv4(x3))
        x5 = F.relu(self.e_conv5(torch.cat([x3, x4], 1)))
        x6 = F.relu(self.e_conv6(torch.cat([x2, x5], 1)))
        curves = torch.tanh(self.e_conv7(torch.cat([x1, x6], 1)))
        y = x
        for a in curves.split(3, dim=1):
            y = y + a * (y * y - y)
        return y, curves


def illumination_smoothness(curves: torch.Tensor) -> torch.Tensor:
    n, _, h, w = curves.shape
    dh = (curves[:, :, 1:] - curves[:, :, :-1]).pow(2).sum() / ((h - 1) * w)
    dw = (curves[:, :, :, 1:] - curves[:, :, :, :-1]).pow(2).sum() / (h * (w - 1))
    return 2 * (dh + dw) / n


def spatial_consistency(enhanced: torch.Tensor, original: torch.Tensor) -> torch.Tensor:
    """Differences between each 4x4 region and its 4 neighbours are to be kept (official L_spa, zero padded)."""
    def diffs(img: torch.Tensor) -> list[torch.Tensor]:
        p = F.avg_pool2d(img.mean(1, keepdim=True), 4)
        padded = F.pad(p, (1, 1, 1, 1))
        centre = padded[..., 1:-1, 1:-1]
        return [centre - padded[..., 1:-1, :-2], centre - padded[..., 1:-1, 2:],
                centre - padded[..., :-2, 1:-1], centre - padded[..., 2:, 1:-1]]

    return sum((a - b).pow(2) for a, b in zip(diffs(original), diffs(enhanced))).mean()


def colour_constancy(enhanced: torch.Tensor) -> torch.Tensor:
    r, g, b = enhanced.mean((2, 3)).unbind(1)
    # eps: the official form has an infinite gradient at a perfectly grey image (all channel means equal).
    return ((r - g).pow(2).pow(2) + (r - b).pow(2).pow(2) + (g - b).pow(2).pow(2) + 1e-12).sqrt().mean()


def exposure_control(enhanced: torch.Tensor, level: float) -> torch.Tensor:
    return (F.avg_pool2d(enhanced.mean(1, keepdim=True), 16) - level).pow(2).mean()


class ZeroDCE(LearnedTranslator):
    METHOD, KIND = "zero-dce", "a Zero-DCE"
    PRESETS = PRESETS
    CHECKPOINT_NETS = {"net": "net"}


    def _build(self) -> None:
        self.net = DCENet(self.config.width, self.config.n_curves)
        for m in self.net.modules():  # official weights_init: conv weights N(0, 0.02)
            if isinstance(m, nn.Conv2d):
                nn.init.normal_(m.weight, 0.0, 0.02)
        self.net.to(self.device).eval()

    def modules(self) -> dict[str, nn.Module]:
        return {"net": self.net}

    def setup_training(self, seed: int) -> list[torch.optim.Optimizer]:
        return [self.adam(self.net.parameters(), lr=self.config.lr, weight_decay=self.config.weight_decay)]

    def train_step(self, real_a, real_b, optimizers) -> dict[str, torch.Tensor]:
        """Adverse images only: real_b is not used (Zero-DCE needs no normal-light data)."""
        c = self.config
        (opt,) = optimizers
        x = (real_a + 1) / 2  # the shared loader gives [-1, 1]
        enhanced, curves = self.net(x)
        tv = c.w_tv * illumination_smoothness(curves)
        spa = c.w_spa * spatial_consistency(enhanced, x)
        col = c.w_col * colour_constancy(enhanced)
        exp = c.w_exp * exposure_control(enhanced, c.exposure)
        total = tv + spa + col + exp
        opt.zero_grad(set_to_none=True)
        total.backward()
        self.clip_grad_norm(self.net.parameters(), c.grad_clip)
        opt.step()
        return {"g_total": total.detach(), "tv": tv.detach(), "spa": spa.detach(), "col": col.detach(),
                "exp": exp.detach()}

    def translate(self, images: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return self.net(images.to(self.device))[0].clamp(0, 1).float()

    def official_state(self, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor] | None:
        """The official ``Epoch99.pth``: DCE-Net's own keys (e_conv1 ... e_conv7)."""
        return {f"net.{k}": v for k, v in state.items()} if any(k.startswith("e_conv1.") for k in state) else None
