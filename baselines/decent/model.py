"""DECENT as a Translator: the authors' ``decent_gan_model.py`` step for step, on bench.learned's loop.

The generator is CUT's (its encoder features at layers 0, 4, 8, 12, 16 are the "patches"); there is no contrastive
loss. Instead two density estimators (``flows``), F_A on the input domain's patches and F_B on the target domain's,
are fitted by maximum likelihood, and the generator is asked to change every patch's density by the same amount:
for each image, the variance over its patches of ``(log p_A(x) - log p_B(G(x))) / (C ln 2)`` (C: the layer's
channels) is small. One step:

1. G(A) and G(B), each with its encoder features;
2. F: NLL of F_A on A's patches plus NLL of F_B on B's (detached; averaged over layers), gradient norm clipped to 0.1
   per estimator, one Polyak-averaged AMSGrad step at ``flow_lr`` (decayed with the schedule);
3. D: 0.5 (LSGAN(D(G(A)), 0) + LSGAN(D(B), 1)), one Adam step;
4. with the flows' running averages swapped in: G minimises LSGAN(D(G(A)), 1) + 10 L1(G(B), B) + 0.01 x the
   density-changing variance, measured at the patch positions drawn for F_A (features of G(A) for F_B); swap back.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from baselines.cut_codebase.model import CUTGeneratorTranslator
from baselines.cut_codebase.networks import CUTDiscriminator, CUTGenerator
from baselines.cyclegan_codebase import lsgan, xavier_init
from baselines.decent.flows import PatchDensityEstimator
from baselines.decent.optim import PolyakAdam
from bench.learned import LearnedTranslator, Schedule

_LN2 = 0.6931471805599453
_HEAD_LAYERS = 12  # CUT's generator layers before the first residual block


@dataclass(frozen=True)
class DecentConfig(Schedule):
    ARCHITECTURE_FIELDS = ("ngf", "ndf", "n_blocks", "flow_blocks", "bnaf_layers", "bnaf_dim")

    ngf: int = 64
    ndf: int = 64
    n_blocks: int = 9
    var_layers: tuple[int, ...] = (0, 4, 8, 12, 16)
    num_patches: int = 256
    lambda_gan: float = 1.0
    lambda_idt: float = 10.0
    lambda_var: float = 0.01
    var_all: bool = False  # variance over all patches of the batch instead of per image
    flow_blocks: int = 1
    bnaf_layers: int = 0
    bnaf_dim: int = 10
    flow_lr: float = 1e-3
    flow_ema: float = 0.998
    flow_clip: float = 0.1  # gradient norm clip per estimator
    init_gain: float = 0.02  # Xavier-normal gain of G and D (the flows keep BNAF's own initialisation)
    beta1: float = 0.5
    epochs: int = 400  # n_epochs 200 + n_epochs_decay 200
    epoch_decay: int = 200

    def __post_init__(self) -> None:
        object.__setattr__(self, "var_layers", tuple(self.var_layers))  # JSON gives a list back
        if list(self.var_layers) != sorted(set(self.var_layers)) or not self.var_layers:
            raise ValueError(f"var_layers must be increasing generator layer indices, got {list(self.var_layers)}")
        if self.var_layers[-1] >= _HEAD_LAYERS + self.n_blocks:
            raise ValueError(f"var_layers {list(self.var_layers)} reach past the generator's encoder "
                             f"({_HEAD_LAYERS + self.n_blocks} layers at n_blocks {self.n_blocks})")
        if self.flow_blocks < 1 or self.bnaf_dim < 1:
            raise ValueError(f"flow_blocks and bnaf_dim must be at least 1, got {self.flow_blocks} and {self.bnaf_dim}")


_QUICK = dict(ngf=16, ndf=16, n_blocks=6, num_patches=64, batch_size=4, load_size=None, fine_size=64,
              epochs=6, epoch_decay=3, max_steps=500, checkpoint_every=100)
_SMOKE = dict(ngf=8, ndf=8, n_blocks=5, num_patches=32, bnaf_dim=4, batch_size=2, load_size=None, fine_size=32,
              epochs=1, epoch_decay=1, max_steps=12, checkpoint_every=4, log_every=2)
PRESETS = {"paper": DecentConfig(), "quick": DecentConfig(**_QUICK), "smoke": DecentConfig(**_SMOKE)}


class Decent(CUTGeneratorTranslator, LearnedTranslator):
    METHOD, KIND = "decent", "a DECENT"
    CHECKPOINT_NETS = {"g": "g"}
    PRESETS = PRESETS

    def _build(self) -> None:
        c = self.config
        self.g = CUTGenerator(c.ngf, c.n_blocks)
        self.d = CUTDiscriminator(c.ndf)
        for m in (self.g, self.d):
            xavier_init(m, c.init_gain)
        channels = self.g.feature_channels(c.var_layers)
        self.f_a = PatchDensityEstimator(channels, c.flow_blocks, c.bnaf_layers, c.bnaf_dim)
        self.f_b = PatchDensityEstimator(channels, c.flow_blocks, c.bnaf_layers, c.bnaf_dim)
        for m in self.modules().values():
            m.to(self.device).eval()

    def modules(self) -> dict[str, nn.Module]:
        return {"g": self.g, "d": self.d, "f_a": self.f_a, "f_b": self.f_b}

    # ------------------------------------------------------------------ training
    def setup_training(self, seed: int) -> list[torch.optim.Optimizer]:
        c = self.config
        flows = [{"params": [*self.f_a.parameters(), *self.f_b.parameters()], "base_lr": c.flow_lr}]
        return [self.adam(self.g.parameters(), lr=c.lr, betas=(c.beta1, 0.999)),
                self.adam(self.d.parameters(), lr=c.lr, betas=(c.beta1, 0.999)),
                PolyakAdam(flows, lr=c.flow_lr, amsgrad=True, polyak=c.flow_ema)]

    def flow_nll(self, feats_a: list[torch.Tensor], feats_b: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        c = self.config
        log_a, _ = self.f_a(feats_a, c.num_patches, detach=True)
        log_b, _ = self.f_b(feats_b, c.num_patches, detach=True)
        return sum(-lp.mean() for lp in log_a), sum(-lp.mean() for lp in log_b)

    def density_change_variance(self, feats_a: list[torch.Tensor], fake_b: torch.Tensor) -> torch.Tensor:
        c = self.config
        feats_fake = self.g.encode(fake_b, c.var_layers)
        with torch.no_grad():
            log_a, ids = self.f_a(feats_a, c.num_patches, detach=True)
        log_b, _ = self.f_b(feats_fake, c.num_patches, ids)
        total = 0.0
        for la, lb, feat in zip(log_a, log_b, feats_a):
            change = (la.detach() - lb) / (feat.shape[1] * _LN2)  # per dimension, in bits
            total = total + (change.var() if c.var_all else change.view(len(feat), -1).var(dim=-1).mean())
        return total / len(c.var_layers)

    def train_step(self, real_a, real_b, optimizers) -> dict[str, torch.Tensor]:
        c = self.config
        opt_g, opt_d, opt_f = optimizers
        fake_b, feats_a = self.g.forward_with_features(real_a, c.var_layers)
        idt_b, feats_b = self.g.forward_with_features(real_b, c.var_layers)

        nll_a, nll_b = self.flow_nll(feats_a, feats_b)
        f_loss = (nll_a + nll_b) / len(c.var_layers)
        opt_f.zero_grad(set_to_none=True)
        f_loss.backward()
        self.clip_grad_norm(self.f_a.parameters(), c.flow_clip)
        self.clip_grad_norm(self.f_b.parameters(), c.flow_clip)
        opt_f.step()

        d_loss = 0.5 * (lsgan(self.d(fake_b.detach()), 0.0) + lsgan(self.d(real_b), 1.0))
        opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        opt_d.step()

        opt_f.swap()  # the generator is measured by the flows' running averages
        self.d.requires_grad_(False)
        for f in (self.f_a, self.f_b):
            f.requires_grad_(False)
        gan = lsgan(self.d(fake_b), 1.0) * c.lambda_gan
        idt = F.l1_loss(idt_b, real_b) * c.lambda_idt
        var = self.density_change_variance(feats_a, fake_b)
        g_total = gan + idt + (c.lambda_var * var if c.lambda_var > 0 else 0.0)
        opt_g.zero_grad(set_to_none=True)
        g_total.backward()
        opt_g.step()
        for m in (self.d, self.f_a, self.f_b):
            m.requires_grad_(True)
        opt_f.swap()
        return {"g_total": g_total.detach(), "g_gan": gan.detach(), "idt": idt.detach(), "var": var.detach(),
                "nll_a": nll_a.detach(), "nll_b": nll_b.detach(), "d_total": d_loss.detach()}
