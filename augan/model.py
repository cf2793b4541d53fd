"""AU-GAN as a Translator: the training loop (official AUGAN.py, step for step) and inference.

One training step:
  1. generators: fake B, A-reconstruction, features and sigma from G_A2B(real A); the cycle
     G_B2A(fake B); fake A and the B-reconstruction from G_B2A(real B); the cycle G_A2B(fake A);
     loss = adversarial (sum over the n_d discriminators, mean over scales, both directions)
          + lambda_L1 * (self-reconstruction A + self-reconstruction B + cycle B)
          + uncertainty-aware cycle A (or lambda_L1 * L1 without uncertainty)
          + asymmetric feature matching;
  2. the history pool swaps in older fakes;
  3. each discriminator pair (D_A_i, D_B_i) takes one Adam step on
     0.5 * (LSGAN(real, 1) + LSGAN(fake, 0)) for both domains.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn as nn

from augan.config import AUGANConfig, preset_config
from augan.losses import asymmetric_feature_matching, uncertainty_cycle
from baselines.tf_exact.losses import l1, lsgan
from baselines.tf_exact.networks import Generator, MultiScaleDiscriminator
from baselines.tf_exact.pool import HistoryPool
from bench.learned import (  # noqa: F401 - the errors are part of this module's interface (tests, callers)
    CheckpointMismatch,
    LearnedTranslator,
    TrainingDiverged,
    padded_forward,
)


class AUGAN(LearnedTranslator):
    """Adverse -> normal translation with AU-GAN; also ``uncertainty`` and ``translate_back``."""

    METHOD, KIND = "augan", "an AU-GAN"
    CHECKPOINT_NETS = {"g_a2b": "g_a2b", "g_b2a": "g_b2a"}

    def __init__(self, preset: str = "quick", device: str = "cpu", variant: str = "augan",
                 config: AUGANConfig | None = None) -> None:
        self.name = variant
        self.device = torch.device(device)
        self.config = config or preset_config(preset, variant)
        self._build()

    def _build(self) -> None:
        c = self.config
        self.g_a2b = Generator(c.ngf, transfer=c.use_tnet, confidence=c.use_uncertainty, noise_std=c.noise_std)
        self.g_b2a = Generator(c.ngf, noise_std=c.noise_std)
        self.d_a = nn.ModuleList(MultiScaleDiscriminator(c.df_dim, c.n_scale) for _ in range(c.n_d))
        self.d_b = nn.ModuleList(MultiScaleDiscriminator(c.df_dim, c.n_scale) for _ in range(c.n_d))
        memory = torch.channels_last if c.channels_last else torch.contiguous_format
        for m in self.modules().values():
            m.to(self.device, memory_format=memory)
            m.eval()

    def modules(self) -> dict[str, nn.Module]:
        return {"g_a2b": self.g_a2b, "g_b2a": self.g_b2a, "d_a": self.d_a, "d_b": self.d_b}

    # ------------------------------------------------------------------ training (loop: bench.learned)
    def setup_training(self, seed: int) -> list[torch.optim.Optimizer]:
        c = self.config
        opt_g = self.adam([*self.g_a2b.parameters(), *self.g_b2a.parameters()], lr=c.lr, betas=(c.beta1, 0.999))
        opt_d = [self.adam([*self.d_a[i].parameters(), *self.d_b[i].parameters()], lr=c.lr, betas=(c.beta1, 0.999))
                 for i in range(c.n_d)]
        self.pool = HistoryPool(c.pool_size, seed=seed)
        return [opt_g, *opt_d]

    def extra_train_state(self) -> dict:
        return {"pool": self.pool.state_dict()}

    def load_extra_train_state(self, state: dict) -> None:
        self.pool.load_state_dict(state["pool"], self.device)

    def train_step(self, real_a, real_b, optimizers) -> dict[str, torch.Tensor]:
        c = self.config
        opt_g, *opt_d = optimizers
        a2b = self.g_a2b(real_a)
        fake_b = a2b.image
        cyc_a = self.g_b2a(fake_b, reconstruct=False)
        b2a = self.g_b2a(real_b)
        fake_a = b2a.image
        cyc_b = self.g_a2b(fake_a, reconstruct=False, confidence=False)
        adv = sum(lsgan(self.d_a[i](fake_a), 1.0) + lsgan(self.d_b[i](fake_b), 1.0) for i in range(c.n_d))
        rec = c.lambda_l1 * (l1(a2b.reconstruction, real_a) + l1(b2a.reconstruction, real_b))
        if c.use_uncertainty:
            cycle_a = c.lambda_conf * uncertainty_cycle(real_a.float(), cyc_a.image.float(), a2b.sigma.float(),
                                                        c.uncertainty_form)
        else:
            cycle_a = c.lambda_l1 * l1(real_a, cyc_a.image)
        cycle_b = c.lambda_l1 * l1(real_b, cyc_b.image)
        if c.use_afm:
            trans = a2b.transfer if a2b.transfer is not None else a2b.features
            afm = asymmetric_feature_matching(trans, cyc_a.features, b2a.features, cyc_b.features)
        else:
            afm = torch.zeros((), device=real_a.device)
        g_total = adv + rec + cycle_a + cycle_b + afm
        opt_g.zero_grad(set_to_none=True)
        g_total.backward()
        opt_g.step()

        pooled_a, pooled_b = self.pool(fake_a.detach(), fake_b.detach())
        d_losses = []
        for i in range(c.n_d):
            d_b = 0.5 * (lsgan(self.d_b[i](real_b), 1.0) + lsgan(self.d_b[i](pooled_b), 0.0))
            d_a = 0.5 * (lsgan(self.d_a[i](real_a), 1.0) + lsgan(self.d_a[i](pooled_a), 0.0))
            d_loss = d_a + d_b
            opt_d[i].zero_grad(set_to_none=True)  # also drops the grads the G step left on D
            d_loss.backward()
            opt_d[i].step()
            d_losses.append(d_loss.detach())
        return {"g_total": g_total.detach(), "g_adv": adv.detach(), "rec": rec.detach(), "cycle_a": cycle_a.detach(),
                "cycle_b": cycle_b.detach(), "afm": afm.detach(), "d_total": torch.stack(d_losses).sum()}

    # ------------------------------------------------------------------ inference
    def _run(self, net: nn.Module, images: torch.Tensor, sigma: bool = False) -> torch.Tensor:
        """Translation (or sigma) at the input's size; images in [0, 1]."""

        def forward(x: torch.Tensor) -> torch.Tensor:
            out = net(x, reconstruct=False, confidence=sigma)
            return out.sigma if sigma else out.image

        with torch.no_grad():
            y = padded_forward(forward, images.to(self.device) * 2 - 1).float()
        return y.clamp(min=0) if sigma else ((y + 1) / 2).clamp(0, 1)

    def translate(self, images: torch.Tensor) -> torch.Tensor:
        return self._run(self.g_a2b, images)

    def translate_back(self, images: torch.Tensor) -> torch.Tensor:
        """Normal -> adverse with G_B2A."""
        return self._run(self.g_b2a, images)

    def uncertainty(self, images: torch.Tensor) -> torch.Tensor:
        """Per-pixel sigma (N x 1 x H x W) of A -> B -> A: high where the cycle is expected to fail."""
        if self.g_a2b.confidence is None:
            raise ValueError(f"{self.name} has no uncertainty head (use_uncertainty is off)")
        return self._run(self.g_a2b, images, sigma=True)

    # ------------------------------------------------------------------ weights (checkpoints: LearnedTranslator)
    def import_tf_checkpoint(self, path: Path) -> None:
        """Adopt the architecture and generator weights of an official TensorFlow checkpoint."""
        from augan.tf_import import config_from_variables, convert, read_tf_checkpoint

        variables = read_tf_checkpoint(path)
        self.config = config_from_variables(variables)
        self._build()
        converted = convert(variables, self.state_dict())
        for prefix, net in (("g_a2b.", self.g_a2b), ("g_b2a.", self.g_b2a)):
            net.load_state_dict({k[len(prefix):]: v for k, v in converted.items() if k.startswith(prefix)})
