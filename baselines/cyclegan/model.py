"""CycleGAN as a Translator: the official training step, on the shared loop (bench.learned).

One step (official ``CycleGANModel.optimize_parameters``):
  fake_B = G_A(A), rec_A = G_B(fake_B), fake_A = G_B(B), rec_B = G_A(fake_A);
  G: LSGAN(D_B(fake_B), 1) + LSGAN(D_A(fake_A), 1) + lambda (|rec_A - A| + |rec_B - B|)
     + lambda_identity * lambda (|G_A(B) - B| + |G_B(A) - A|);  one Adam step on both generators;
  D: 0.5 (LSGAN(D(real), 1) + LSGAN(D(pool(fake)), 0)) per domain; one Adam step on both.
Our ``d_b`` judges domain B (the official code calls it D_A, after the generator it trains).
Checkpoints of the official repository (``latest_net_G_A.pth``) load into ``g_a2b``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F
from torch import nn

from baselines.cyclegan.networks import NLayerDiscriminator, ResnetGenerator, generator_shape_from_state, init_normal
from baselines.cyclegan_codebase import ImagePool, lsgan
from bench.learned import LearnedTranslator, Schedule, padded_forward


@dataclass(frozen=True)
class CycleGANConfig(Schedule):
    ARCHITECTURE_FIELDS = ("ngf", "ndf", "n_blocks", "n_layers_d")

    ngf: int = 64
    ndf: int = 64
    n_blocks: int = 9  # resnet_9blocks
    n_layers_d: int = 3  # 70x70 PatchGAN
    lambda_cycle: float = 10.0
    lambda_identity: float = 0.5  # times lambda_cycle, as the official code scales it
    pool_size: int = 50
    beta1: float = 0.5
    epochs: int = 200  # n_epochs 100 + n_epochs_decay 100


PRESETS = {
    "paper": CycleGANConfig(),
    "quick": CycleGANConfig(ngf=16, ndf=16, n_blocks=6, batch_size=4, load_size=None, fine_size=64, epochs=6,
                            epoch_decay=3, max_steps=500, checkpoint_every=100),
    "smoke": CycleGANConfig(ngf=8, ndf=8, n_blocks=2, batch_size=2, load_size=None, fine_size=32, epochs=1,
                            epoch_decay=1, max_steps=12, checkpoint_every=4, log_every=2, pool_size=4),
}


class CycleGAN(LearnedTranslator):
    METHOD, KIND = "cyclegan", "a CycleGAN"
    PRESETS = PRESETS
    CHECKPOINT_NETS = {"g_a2b": "g_a2b", "g_b2a": "g_b2a"}


    def _build(self) -> None:
        c = self.config
        self.g_a2b, self.g_b2a = ResnetGenerator(c.ngf, c.n_blocks), ResnetGenerator(c.ngf, c.n_blocks)
        self.d_a, self.d_b = NLayerDiscriminator(c.ndf, c.n_layers_d), NLayerDiscriminator(c.ndf, c.n_layers_d)
        for m in self.modules().values():
            init_normal(m)
            m.to(self.device, memory_format=torch.channels_last if c.channels_last else torch.contiguous_format).eval()

    def modules(self) -> dict[str, nn.Module]:
        return {"g_a2b": self.g_a2b, "g_b2a": self.g_b2a, "d_a": self.d_a, "d_b": self.d_b}

    # ------------------------------------------------------------------ training
    def setup_training(self, seed: int) -> list[torch.optim.Optimizer]:
        c = self.config
        self.pool_a, self.pool_b = ImagePool(c.pool_size, seed), ImagePool(c.pool_size, seed + 1)
        betas = (c.beta1, 0.999)
        return [self.adam([*self.g_a2b.parameters(), *self.g_b2a.parameters()], lr=c.lr, betas=betas),
                self.adam([*self.d_a.parameters(), *self.d_b.parameters()], lr=c.lr, betas=betas)]

    def extra_train_state(self) -> dict:
        return {"pool_a": self.pool_a.state_dict(), "pool_b": self.pool_b.state_dict()}

    def load_extra_train_state(self, state: dict) -> None:
        self.pool_a.load_state_dict(state["pool_a"], self.device)
        self.pool_b.load_state_dict(state["pool_b"], self.device)

    def train_step(self, real_a, real_b, optimizers) -> dict[str, torch.Tensor]:
        c = self.config
        opt_g, opt_d = optimizers
        fake_b, fake_a = self.g_a2b(real_a), self.g_b2a(real_b)
        rec_a, rec_b = self.g_b2a(fake_b), self.g_a2b(fake_a)
        for d in (self.d_a, self.d_b):
            d.requires_grad_(False)
        adv = lsgan(self.d_b(fake_b), 1.0) + lsgan(self.d_a(fake_a), 1.0)
        cycle = c.lambda_cycle * (F.l1_loss(rec_a, real_a) + F.l1_loss(rec_b, real_b))
        identity = torch.zeros((), device=real_a.device)
        if c.lambda_identity > 0:
            identity = c.lambda_cycle * c.lambda_identity * (F.l1_loss(self.g_a2b(real_b), real_b)
                                                             + F.l1_loss(self.g_b2a(real_a), real_a))
        g_total = adv + cycle + identity
        opt_g.zero_grad(set_to_none=True)
        g_total.backward()
        opt_g.step()
        for d in (self.d_a, self.d_b):
            d.requires_grad_(True)
        pooled_b, pooled_a = self.pool_b(fake_b.detach()), self.pool_a(fake_a.detach())  # D trains on fixed fakes
        d_b = 0.5 * (lsgan(self.d_b(real_b), 1.0) + lsgan(self.d_b(pooled_b), 0.0))
        d_a = 0.5 * (lsgan(self.d_a(real_a), 1.0) + lsgan(self.d_a(pooled_a), 0.0))
        opt_d.zero_grad(set_to_none=True)
        (d_a + d_b).backward()
        opt_d.step()
        return {"g_total": g_total.detach(), "g_adv": adv.detach(), "cycle": cycle.detach(),
                "identity": identity.detach(), "d_a": d_a.detach(), "d_b": d_b.detach()}

    # ------------------------------------------------------------------ inference
    def _run(self, net: nn.Module, images: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            y = padded_forward(net, images.to(self.device) * 2 - 1)
        return ((y + 1) / 2).clamp(0, 1).float()

    def translate(self, images: torch.Tensor) -> torch.Tensor:
        return self._run(self.g_a2b, images)

    def translate_back(self, images: torch.Tensor) -> torch.Tensor:
        return self._run(self.g_b2a, images)

    # ------------------------------------------------------------------ weights (checkpoints: LearnedTranslator)
    def official_state(self, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor] | None:
        """``latest_net_G_A.pth`` of the official repository (``model.<i>...`` keys: the night -> day generator).
        The running statistics old PyTorch versions stored for InstanceNorm are dropped by the shared loader
        (``bench.learned.without_instance_norm_statistics``), as the official loader does."""
        if not any(k.startswith("model.") for k in state):
            return None
        return {f"g_a2b.{k}": v for k, v in state.items()}

    def config_from_official(self, state: dict[str, torch.Tensor]) -> CycleGANConfig | None:
        if not any(k.startswith("model.") for k in state):
            return None
        ngf, n_blocks = generator_shape_from_state(state)
        return replace(self.config, ngf=ngf, n_blocks=n_blocks)
