"""UNIT (Liu et al., NeurIPS 2017) as a Translator: the authors' maintained PyTorch code (``UNIT_Trainer``).

Each domain has a VAE: a content encoder (IN residual blocks) giving the mean of a unit-variance Gaussian
latent, and a decoder (IN residual blocks, layer-norm upsampling). Translation decodes A's latent with
B's decoder. The paper's weight sharing between the encoders' last and the decoders' first layers is
in the authors' older ``version_02`` branch; their maintained code, which we follow, ties the two
latent spaces through the cross-domain decoding, the cycle and the KL terms alone.

Step (``dis_update`` then ``gen_update``; z = h + n, n ~ N(0, I)):
  D: LSGAN over 3 scales on x_ba, x_ab (detached) vs real; one Adam step.
  G: adversarial + 10 |x_aa - x_a| + 0.01 KL(h_a) + 10 |x_aba - x_a| + 0.01 KL(h_ab) (each domain),
     KL(h) = mean(h^2) (unit variance assumed); VGG term off (needs VGG16 weights).
Adam lr 1e-4, betas (0.5, 0.999), weight decay 1e-4, halved every 100k iterations (configs/unit_gta2city).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from baselines.two_autoencoders.training import TwoAutoencoderConfig, TwoAutoencoderGAN
from baselines.two_autoencoders.networks import ContentEncoder, Decoder
from bench.learned import padded_forward


@dataclass(frozen=True)
class UNITConfig(TwoAutoencoderConfig):
    recon_kl_w: float = 0.01
    recon_kl_cyc_w: float = 0.01


PRESETS = {
    "paper": UNITConfig(),
    "quick": UNITConfig(dim=16, n_res=3, dis_dim=16, dis_layers=3, batch_size=4, load_size=None, fine_size=64,
                        max_steps=500, step_size=250, checkpoint_every=100),
    "smoke": UNITConfig(dim=8, n_res=1, dis_dim=8, dis_layers=2, dis_scales=2, batch_size=2, load_size=None,
                        fine_size=32, max_steps=12, step_size=6, checkpoint_every=4, log_every=2),
}


class VAEGen(nn.Module):
    def __init__(self, c: UNITConfig) -> None:
        super().__init__()
        self.enc = ContentEncoder(c.n_downsample, c.n_res, c.dim)
        self.dec = Decoder(c.n_downsample, c.n_res, self.enc.output_dim, "in")

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.enc(x)
        return h, torch.randn_like(h)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.dec(z)


def kl(h: torch.Tensor) -> torch.Tensor:
    return h.pow(2).mean()


class UNIT(TwoAutoencoderGAN):
    METHOD, KIND = "unit", "a UNIT"
    PRESETS = PRESETS
    ENCODER_PREFIX = "a.enc.model."

    def _generator(self) -> nn.Module:
        return VAEGen(self.config)

    def train_step(self, x_a, x_b, optimizers) -> dict[str, torch.Tensor]:
        c = self.config
        opt_g, opt_d = optimizers
        with torch.no_grad():
            h_a, n_a = self.gen_a.encode(x_a)
            h_b, n_b = self.gen_b.encode(x_b)
            x_ba, x_ab = self.gen_a.decode(h_b + n_b), self.gen_b.decode(h_a + n_a)
        d_loss = c.gan_w * (self.dis_a.dis_loss(x_ba, x_a) + self.dis_b.dis_loss(x_ab, x_b))
        opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        opt_d.step()

        h_a, n_a = self.gen_a.encode(x_a)
        h_b, n_b = self.gen_b.encode(x_b)
        x_a_recon, x_b_recon = self.gen_a.decode(h_a + n_a), self.gen_b.decode(h_b + n_b)
        x_ba, x_ab = self.gen_a.decode(h_b + n_b), self.gen_b.decode(h_a + n_a)
        h_b_recon, n_b_recon = self.gen_a.encode(x_ba)
        h_a_recon, n_a_recon = self.gen_b.encode(x_ab)
        x_aba = self.gen_a.decode(h_a_recon + n_a_recon)
        x_bab = self.gen_b.decode(h_b_recon + n_b_recon)
        recon = F.l1_loss(x_a_recon, x_a) + F.l1_loss(x_b_recon, x_b)
        kl_recon = kl(h_a) + kl(h_b)
        cyc = F.l1_loss(x_aba, x_a) + F.l1_loss(x_bab, x_b)
        kl_cyc = kl(h_a_recon) + kl(h_b_recon)
        self._set_requires_grad_d(False)
        adv = self.dis_a.gen_loss(x_ba) + self.dis_b.gen_loss(x_ab)
        g_total = (c.gan_w * adv + c.recon_x_w * recon + c.recon_kl_w * kl_recon + c.recon_x_cyc_w * cyc
                   + c.recon_kl_cyc_w * kl_cyc)
        opt_g.zero_grad(set_to_none=True)
        g_total.backward()
        opt_g.step()
        self._set_requires_grad_d(True)
        return {"g_total": g_total.detach(), "g_adv": adv.detach(), "recon_x": recon.detach(), "kl": kl_recon.detach(),
                "cycle": cyc.detach(), "kl_cycle": kl_cyc.detach(), "d_total": d_loss.detach()}

    def translate(self, images: torch.Tensor) -> torch.Tensor:
        """x_ab = dec_b(mean of A's latent): the test-time translation of the official code (no noise)."""
        with torch.no_grad():
            y = padded_forward(lambda x: self.gen_b.decode(self.gen_a.enc(x)), images.to(self.device) * 2 - 1,
                               2 ** self.config.n_downsample)
        return ((y + 1) / 2).clamp(0, 1).float()
