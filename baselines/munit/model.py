"""MUNIT (Huang et al., ECCV 2018) as a Translator: official ``MUNIT_Trainer`` step for step.

Each domain has an auto-encoder: a content encoder, a style encoder (8-d code) and an AdaIN decoder
whose AdaIN scales and shifts come from the style code through an MLP. A -> B translation decodes
A's content with a day style code.

Step (official ``dis_update`` then ``gen_update``, each with fresh random styles s ~ N(0, I)):
  D: LSGAN summed over 3 scales, on x_ab and x_ba (detached) against real images; one Adam step.
  G: adversarial + 10 |x_a_recon - x_a| + |s_recon - s| + |c_recon - c| (each domain)
     + 10 |x_aba - x_a| (style-augmented cycle; recon_x_cyc_w 10 as the summer2winter and synthia2cityscape
     configs) ; the VGG perceptual term (vgg_w) is off: it needs VGG16 weights, and the configs without it
     are the published defaults for most tasks.
Adam lr 1e-4, betas (0.5, 0.999), weight decay 1e-4, halved every 100k iterations, 1M iterations,
Kaiming init (discriminators N(0, 0.02)).

Style policy at test time (documented, deterministic): one style code z ~ N(0, I) drawn from a
generator seeded with ``style_seed`` (default 0) is used for every test image; ``translate_styles``
draws K codes from the same seeded generator for diversity (``bench translate --style-samples K``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from baselines.two_autoencoders.training import TwoAutoencoderConfig, TwoAutoencoderGAN
from baselines.two_autoencoders.networks import MLP, AdaptiveInstanceNorm2d, ContentEncoder, Decoder, StyleEncoder
from bench.learned import padded_forward


@dataclass(frozen=True)
class MUNITConfig(TwoAutoencoderConfig):
    ARCHITECTURE_FIELDS = TwoAutoencoderConfig.ARCHITECTURE_FIELDS + ("style_dim", "mlp_dim")

    style_dim: int = 8
    mlp_dim: int = 256
    recon_s_w: float = 1.0
    recon_c_w: float = 1.0
    style_seed: int = 0


PRESETS = {
    "paper": MUNITConfig(),
    "quick": MUNITConfig(dim=16, mlp_dim=64, n_res=3, dis_dim=16, dis_layers=3, batch_size=4, load_size=None,
                         fine_size=64, max_steps=500, step_size=250, checkpoint_every=100),
    "smoke": MUNITConfig(dim=8, mlp_dim=16, n_res=1, dis_dim=8, dis_layers=2, dis_scales=2, batch_size=2,
                         load_size=None, fine_size=32, max_steps=12, step_size=6, checkpoint_every=4, log_every=2),
}


class AdaINGen(nn.Module):
    def __init__(self, c: MUNITConfig) -> None:
        super().__init__()
        self.enc_style = StyleEncoder(4, c.dim, c.style_dim)
        self.enc_content = ContentEncoder(c.n_downsample, c.n_res, c.dim)
        self.dec = Decoder(c.n_downsample, c.n_res, self.enc_content.output_dim, "adain")
        self.adain = [m for m in self.dec.modules() if isinstance(m, AdaptiveInstanceNorm2d)]
        self.mlp = MLP(c.style_dim, sum(2 * m.num_features for m in self.adain), c.mlp_dim)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.enc_content(x), self.enc_style(x)

    def decode(self, content: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        params = self.mlp(style)
        for m in self.adain:  # per layer: C means (shift) then C stds (scale), as assign_adain_params
            c = m.num_features
            m.bias = params[:, :c].contiguous().view(-1)
            m.weight = params[:, c:2 * c].contiguous().view(-1)
            params = params[:, 2 * c:]
        return self.dec(content)


class MUNIT(TwoAutoencoderGAN):
    METHOD, KIND = "munit", "a MUNIT"
    PRESETS = PRESETS
    ENCODER_PREFIX = "a.enc_content.model."

    def _generator(self) -> nn.Module:
        return AdaINGen(self.config)

    def _extra_official_shapes(self, state: dict[str, torch.Tensor]) -> dict:
        fc = state["a.mlp.model.0.fc.weight"]
        return {"style_dim": fc.shape[1], "mlp_dim": fc.shape[0]}

    def _styles(self, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        shape = (n, self.config.style_dim, 1, 1)
        return torch.randn(shape, device=self.device), torch.randn(shape, device=self.device)

    def train_step(self, x_a, x_b, optimizers) -> dict[str, torch.Tensor]:
        c = self.config
        opt_g, opt_d = optimizers
        # D update (dis_update): its own style draws and forward pass.
        s_a, s_b = self._styles(len(x_a))
        with torch.no_grad():
            x_ba = self.gen_a.decode(self.gen_b.enc_content(x_b), s_a)
            x_ab = self.gen_b.decode(self.gen_a.enc_content(x_a), s_b)
        d_loss = c.gan_w * (self.dis_a.dis_loss(x_ba, x_a) + self.dis_b.dis_loss(x_ab, x_b))
        opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        opt_d.step()
        # G update (gen_update).
        s_a, s_b = self._styles(len(x_a))
        c_a, s_a_prime = self.gen_a.encode(x_a)
        c_b, s_b_prime = self.gen_b.encode(x_b)
        x_a_recon, x_b_recon = self.gen_a.decode(c_a, s_a_prime), self.gen_b.decode(c_b, s_b_prime)
        x_ba, x_ab = self.gen_a.decode(c_b, s_a), self.gen_b.decode(c_a, s_b)
        c_b_recon, s_a_recon = self.gen_a.encode(x_ba)
        c_a_recon, s_b_recon = self.gen_b.encode(x_ab)
        recon_x = F.l1_loss(x_a_recon, x_a) + F.l1_loss(x_b_recon, x_b)
        recon_s = F.l1_loss(s_a_recon, s_a) + F.l1_loss(s_b_recon, s_b)
        recon_c = F.l1_loss(c_a_recon, c_a) + F.l1_loss(c_b_recon, c_b)
        cyc = torch.zeros((), device=x_a.device)
        if c.recon_x_cyc_w > 0:
            x_aba, x_bab = self.gen_a.decode(c_a_recon, s_a_prime), self.gen_b.decode(c_b_recon, s_b_prime)
            cyc = F.l1_loss(x_aba, x_a) + F.l1_loss(x_bab, x_b)
        self._set_requires_grad_d(False)
        adv = self.dis_a.gen_loss(x_ba) + self.dis_b.gen_loss(x_ab)
        g_total = (c.gan_w * adv + c.recon_x_w * recon_x + c.recon_s_w * recon_s + c.recon_c_w * recon_c
                   + c.recon_x_cyc_w * cyc)
        opt_g.zero_grad(set_to_none=True)
        g_total.backward()
        opt_g.step()
        self._set_requires_grad_d(True)
        return {"g_total": g_total.detach(), "g_adv": adv.detach(), "recon_x": recon_x.detach(),
                "recon_s": recon_s.detach(), "recon_c": recon_c.detach(), "cycle": cyc.detach(),
                "d_total": d_loss.detach()}

    # ------------------------------------------------------------------ inference
    def style_codes(self, k: int) -> torch.Tensor:
        """k day style codes from the seeded generator (the first is the one ``translate`` uses)."""
        g = torch.Generator().manual_seed(self.config.style_seed)
        # One code per draw: torch samples long vectors with another algorithm, and code i must not depend on k.
        return torch.cat([torch.randn((1, self.config.style_dim, 1, 1), generator=g) for _ in range(k)]).to(self.device)

    def _translate_with(self, images: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        def forward(x: torch.Tensor) -> torch.Tensor:
            return self.gen_b.decode(self.gen_a.enc_content(x), style.expand(len(x), -1, -1, -1))

        multiple = 2 ** self.config.n_downsample
        with torch.no_grad():
            y = padded_forward(forward, images.to(self.device) * 2 - 1, multiple)
        return ((y + 1) / 2).clamp(0, 1).float()

    def translate(self, images: torch.Tensor) -> torch.Tensor:
        return self._translate_with(images, self.style_codes(1))

    def translate_styles(self, images: torch.Tensor, k: int) -> list[torch.Tensor]:
        """One translation of ``images`` per style code, for diversity (same seeded codes every call)."""
        return [self._translate_with(images, s[None]) for s in self.style_codes(k)]
