"""U-GAT-IT as a Translator: the training step of ``UGATIT.train`` (znxlwm/UGATIT-pytorch) on bench.learned's loop.

One step, both directions at once: D first, on the translations of both domains (global discriminators of 7
layers and local ones of 5, each with its CAM logits: LSGAN on the patch map and on the CAM logits, real 1, fake 0),
one Adam step over all four; then G: LSGAN on the four discriminators' maps and CAM logits, 10 x L1 cycle, 10 x
L1 identity (each generator applied to its own target domain), 1000 x the generators' CAM loss (BCE: the source
domain's images should be recognised as "to translate", the target domain's as not), one Adam step over both
generators, then every ``rho`` clipped to [0, 1]. Adam: lr 1e-4, betas (0.5, 0.999), weight decay 1e-4; the
authors count iterations (1,000,000) and decay the rate linearly over the second half, step by step: one "epoch"
of the schedule here is one step.

Sizes: the full generator's MLP reads the whole flattened feature map, so it runs at one square size
(``img_size``); training batches (the shared loop's crops) and test images are resized to it (bilinear, with
antialiasing, as their Resize on PIL images), and translations back to the input's size, as their test script
sees them. The ``light`` version pools that map first and runs at any size.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F
from torch import nn

from baselines.ugatit.networks import UGATITDiscriminator, UGATITGenerator
from bench.learned import LearnedTranslator, Schedule, padded_forward


@dataclass(frozen=True)
class UGATITConfig(Schedule):
    ARCHITECTURE_FIELDS = ("ngf", "ndf", "n_blocks", "img_size", "light", "n_dis_global", "n_dis_local")

    ngf: int = 64  # --ch
    ndf: int = 64
    n_blocks: int = 4  # --n_res
    img_size: int = 256
    light: bool = False
    n_dis_global: int = 7  # their disGA / disGB
    n_dis_local: int = 5  # their disLA / disLB
    adv_weight: float = 1.0
    cycle_weight: float = 10.0
    identity_weight: float = 10.0
    cam_weight: float = 1000.0
    lr: float = 1e-4
    weight_decay: float = 1e-4
    beta1: float = 0.5
    max_steps: int | None = 1_000_000  # --iteration
    epochs: int = 1_000_000  # the schedule counts steps: one "epoch" per step
    epoch_decay: int = 500_000  # --decay_flag: linear decay over the second half
    load_size: int | None = 286  # their Resize((img_size + 30) x 2) then RandomCrop(img_size)
    fine_size: int = 256

    def __post_init__(self) -> None:
        if not self.light and self.img_size % 4:
            raise ValueError(f"img_size must be a multiple of 4 (two stride-2 stages), got {self.img_size}")
        if min(self.n_dis_global, self.n_dis_local) < 3:
            raise ValueError(f"discriminators need at least 3 layers, got {self.n_dis_global} and {self.n_dis_local}")


# Smaller images need shallower discriminators (7 layers reduce 256 pixels to a 6 x 6 map, 64 pixels to nothing).
_QUICK = dict(ngf=16, ndf=16, n_blocks=4, img_size=64, n_dis_global=6, batch_size=4, load_size=None, fine_size=64,
              epochs=500, epoch_decay=250, max_steps=500, checkpoint_every=100)
_SMOKE = dict(ngf=8, ndf=8, n_blocks=2, img_size=32, n_dis_global=5, n_dis_local=4, batch_size=2, load_size=None,
              fine_size=32, epochs=12, epoch_decay=6, max_steps=12, checkpoint_every=4, log_every=2)
PRESETS = {"paper": UGATITConfig(), "quick": UGATITConfig(**_QUICK), "smoke": UGATITConfig(**_SMOKE)}


def _lsgan_sum(outputs: list[torch.Tensor], target: float) -> torch.Tensor:
    return sum(F.mse_loss(o, torch.full_like(o, target)) for o in outputs)


class UGATIT(LearnedTranslator):
    METHOD, KIND = "ugatit", "a U-GAT-IT"
    CHECKPOINT_NETS = {"g_a2b": "g_a2b", "g_b2a": "g_b2a"}
    PRESETS = PRESETS

    def _build(self) -> None:
        c = self.config
        self.g_a2b = UGATITGenerator(c.ngf, c.n_blocks, c.img_size, c.light)
        self.g_b2a = UGATITGenerator(c.ngf, c.n_blocks, c.img_size, c.light)
        # a global and a local discriminator per domain; PyTorch's default initialisation, as theirs
        self.d_ga, self.d_gb = UGATITDiscriminator(c.ndf, c.n_dis_global), UGATITDiscriminator(c.ndf, c.n_dis_global)
        self.d_la, self.d_lb = UGATITDiscriminator(c.ndf, c.n_dis_local), UGATITDiscriminator(c.ndf, c.n_dis_local)
        for m in self.modules().values():
            m.to(self.device).eval()

    def modules(self) -> dict[str, nn.Module]:
        return {"g_a2b": self.g_a2b, "g_b2a": self.g_b2a, "d_ga": self.d_ga, "d_gb": self.d_gb, "d_la": self.d_la,
                "d_lb": self.d_lb}

    # ------------------------------------------------------------------ training
    def setup_training(self, seed: int) -> list[torch.optim.Optimizer]:
        c = self.config
        kw = dict(lr=c.lr, betas=(c.beta1, 0.999), weight_decay=c.weight_decay)
        return [self.adam([*self.g_a2b.parameters(), *self.g_b2a.parameters()], **kw),
                self.adam([*self.d_ga.parameters(), *self.d_gb.parameters(), *self.d_la.parameters(),
                           *self.d_lb.parameters()], **kw)]

    def _fit_size(self, x: torch.Tensor) -> torch.Tensor:
        s = self.config.img_size
        if self.config.light or x.shape[-2:] == (s, s):
            return x
        return F.interpolate(x, size=(s, s), mode="bilinear", align_corners=False, antialias=True)

    def _judge(self, d_global: nn.Module, d_local: nn.Module, x: torch.Tensor) -> list[torch.Tensor]:
        (g, g_cam, _), (loc, loc_cam, _) = d_global(x), d_local(x)
        return [g, g_cam, loc, loc_cam]

    def train_step(self, real_a, real_b, optimizers) -> dict[str, torch.Tensor]:
        c = self.config
        opt_g, opt_d = optimizers
        real_a, real_b = self._fit_size(real_a), self._fit_size(real_b)

        with torch.no_grad():  # D's inputs (their D step keeps G's graph, whose gradients G's zero_grad discards)
            fake_a2b, fake_b2a = self.g_a2b(real_a)[0], self.g_b2a(real_b)[0]
        real_a_out = self._judge(self.d_ga, self.d_la, real_a)
        real_b_out = self._judge(self.d_gb, self.d_lb, real_b)
        fake_a_out = self._judge(self.d_ga, self.d_la, fake_b2a)
        fake_b_out = self._judge(self.d_gb, self.d_lb, fake_a2b)
        # their order: per output (map, CAM logits; global, local), real + fake
        d_a = c.adv_weight * sum(F.mse_loss(r, torch.ones_like(r)) + F.mse_loss(f, torch.zeros_like(f))
                                 for r, f in zip(real_a_out, fake_a_out))
        d_b = c.adv_weight * sum(F.mse_loss(r, torch.ones_like(r)) + F.mse_loss(f, torch.zeros_like(f))
                                 for r, f in zip(real_b_out, fake_b_out))
        opt_d.zero_grad(set_to_none=True)
        (d_a + d_b).backward()
        opt_d.step()

        fake_a2b, fake_a2b_cam, _ = self.g_a2b(real_a)
        fake_b2a, fake_b2a_cam, _ = self.g_b2a(real_b)
        rec_a, rec_b = self.g_b2a(fake_a2b)[0], self.g_a2b(fake_b2a)[0]
        idt_a, idt_a_cam, _ = self.g_b2a(real_a)
        idt_b, idt_b_cam, _ = self.g_a2b(real_b)
        adv_a = _lsgan_sum(self._judge(self.d_ga, self.d_la, fake_b2a), 1.0)
        adv_b = _lsgan_sum(self._judge(self.d_gb, self.d_lb, fake_a2b), 1.0)
        # the released order of the terms (it fixes the order autograd sums shared gradients in)
        cyc_a, cyc_b = F.l1_loss(rec_a, real_a), F.l1_loss(rec_b, real_b)
        idt_l1_a, idt_l1_b = F.l1_loss(idt_a, real_a), F.l1_loss(idt_b, real_b)
        bce = F.binary_cross_entropy_with_logits
        cam_a = bce(fake_b2a_cam, torch.ones_like(fake_b2a_cam)) + bce(idt_a_cam, torch.zeros_like(idt_a_cam))
        cam_b = bce(fake_a2b_cam, torch.ones_like(fake_a2b_cam)) + bce(idt_b_cam, torch.zeros_like(idt_b_cam))
        g_a = c.adv_weight * adv_a + c.cycle_weight * cyc_a + c.identity_weight * idt_l1_a + c.cam_weight * cam_a
        g_b = c.adv_weight * adv_b + c.cycle_weight * cyc_b + c.identity_weight * idt_l1_b + c.cam_weight * cam_b
        g_total = g_a + g_b
        opt_g.zero_grad(set_to_none=True)
        g_total.backward()
        opt_g.step()
        self.g_a2b.clip_rho()
        self.g_b2a.clip_rho()
        return {"g_total": g_total.detach(), "g_adv": (adv_a + adv_b).detach(), "cycle": (cyc_a + cyc_b).detach(),
                "identity": (idt_l1_a + idt_l1_b).detach(), "cam": (cam_a + cam_b).detach(),
                "d_total": (d_a + d_b).detach()}

    # ------------------------------------------------------------------ inference
    def translate(self, images: torch.Tensor) -> torch.Tensor:
        x = images.to(self.device) * 2 - 1
        with torch.no_grad():
            if self.config.light:
                y = padded_forward(lambda t: self.g_a2b(t)[0], x)
            else:
                y = F.interpolate(self.g_a2b(self._fit_size(x))[0], size=x.shape[-2:], mode="bilinear",
                                  align_corners=False, antialias=True)
        return ((y + 1) / 2).clamp(0, 1).float()

    # ------------------------------------------------------------------ weights (checkpoints: LearnedTranslator)
    def official_state(self, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor] | None:
        """``<dataset>_params_<iter>.pt`` of the authors' code: ``genA2B``/``genB2A`` (and the discriminators)."""
        if "genA2B.DownBlock.1.weight" not in state:
            return None
        return {f"{'g_a2b' if k.startswith('genA2B.') else 'g_b2a'}.{k.split('.', 1)[1]}": v for k, v in state.items()
                if k.startswith(("genA2B.", "genB2A."))}

    def config_from_official(self, state: dict[str, torch.Tensor]) -> UGATITConfig | None:
        if "genA2B.DownBlock.1.weight" not in state:
            return None
        ngf = state["genA2B.DownBlock.1.weight"].shape[0]
        n_blocks = len({k.split(".")[1] for k in state if k.startswith("genA2B.UpBlock1_")})
        fc_in = state["genA2B.FC.0.weight"].shape[1]
        light = fc_in == 4 * ngf
        img_size = self.config.img_size if light else 4 * math.isqrt(fc_in // (4 * ngf))
        return replace(self.config, ngf=ngf, n_blocks=n_blocks, light=light, img_size=img_size)
