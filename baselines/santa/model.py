"""Santa as a Translator: the authors' ``santa_model.py`` step for step, on bench.learned's loop.

One step: encode A and B together; add unit Gaussian noise to the latents (their ``noise_std``); decode A's latent
at d = 0 (reconstruction), A's at d = 1 (the translation) and B's at d = 1 (identity). D: 0.5 (LSGAN(D(fake), 0) +
LSGAN(D(B), 1)), one Adam step (their image pool is off: ``pool_size 0``). G: LSGAN(D(fake), 1) + 5 L1(rec, A) +
5 L1(idt, B) + 0.01 mean(latent^2) (the KL term on the noise-free latents) + lambda_path x path length, one Adam
step. The path length: for each image a random centre c ~ U(0, 1) and half-width h ~ U(0.05, 0.10), the decoder's
features at d1 = clip(c + h) and d2 = clip(c - h) on five layers, ``mean(((f(d1) - f(d2)) / max(d1 - d2, 0.1))^2)``
averaged over the layers: a finite-difference Jacobian norm along the domain path, so the shortest path is the
one the generator learns. One-sided: no B -> A network; translation decodes the noise-free latent at d = 1.

The released code runs with batch size 1 only: its domain values (``d_A``, ``d_B``, ``d1 - d2``) are shaped for one
image, so a larger batch fails or broadcasts along the image width. We use one domain value per image, which is
their computation at batch size 1 (the ``paper`` preset) and the evident one above it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F
from torch import nn

from baselines.cut_codebase.networks import CUTDiscriminator
from baselines.cyclegan_codebase import lsgan, xavier_init
from baselines.santa.networks import SantaGenerator
from bench.learned import LearnedTranslator, Schedule, padded_forward

_DECODER_EXTRA = 11  # decoder layers after the residual blocks: 2 x (up, conv, AdaIN, ReLU), pad, conv, tanh


def decoder_layers(n_blocks: int) -> int:
    return n_blocks - n_blocks // 2 + _DECODER_EXTRA


@dataclass(frozen=True)
class SantaConfig(Schedule):
    ARCHITECTURE_FIELDS = ("ngf", "ndf", "n_blocks", "style_dim")

    ngf: int = 64
    ndf: int = 64
    n_blocks: int = 9  # netG adain_resnet_9blocks: 4 blocks in the encoder, 5 in the decoder
    style_dim: int = 8
    lambda_gan: float = 1.0
    lambda_rec: float = 5.0
    lambda_idt: float = 5.0
    lambda_kl: float = 0.01
    lambda_path: float = 0.1  # their README's training command (the option's own default is 0.01)
    path_layers: tuple[int, ...] = (0, 3, 6, 10, 14)  # decoder indices: blocks 1 and 4, both up-convs, last conv
    path_interval_min: float = 0.05
    path_interval_max: float = 0.10
    noise_std: float = 1.0
    init_gain: float = 0.02  # Xavier-normal gain (init_type xavier)
    beta1: float = 0.5
    epochs: int = 400  # n_epochs 200 + n_epochs_decay 200
    epoch_decay: int = 200

    def __post_init__(self) -> None:
        object.__setattr__(self, "path_layers", tuple(self.path_layers))  # JSON gives a list back
        if list(self.path_layers) != sorted(set(self.path_layers)) or not self.path_layers:
            raise ValueError(f"path_layers must be increasing decoder layer indices, got {list(self.path_layers)}")
        if self.path_layers[-1] >= decoder_layers(self.n_blocks):
            raise ValueError(f"path_layers {list(self.path_layers)} reach past the decoder's "
                             f"{decoder_layers(self.n_blocks)} layers (n_blocks {self.n_blocks})")
        if not 0 <= self.path_interval_min <= self.path_interval_max:
            raise ValueError(f"need 0 <= path_interval_min <= path_interval_max, got {self.path_interval_min} and "
                             f"{self.path_interval_max}")


# Smaller generators: the same five positions relative to the decoder's blocks (3 decoder blocks at n_blocks 5-6).
_SMALL_PATH = (0, 1, 4, 8, 12)
_QUICK = dict(ngf=16, ndf=16, n_blocks=6, path_layers=_SMALL_PATH, batch_size=4, load_size=None, fine_size=64,
              epochs=6, epoch_decay=3, max_steps=500, checkpoint_every=100)
_SMOKE = dict(ngf=8, ndf=8, n_blocks=5, style_dim=4, path_layers=_SMALL_PATH, batch_size=2, load_size=None,
              fine_size=32, epochs=1, epoch_decay=1, max_steps=12, checkpoint_every=4, log_every=2)
PRESETS = {"paper": SantaConfig(), "quick": SantaConfig(**_QUICK), "smoke": SantaConfig(**_SMOKE)}


class Santa(LearnedTranslator):
    METHOD, KIND = "santa", "a Santa"
    CHECKPOINT_NETS = {"g": "g"}
    PRESETS = PRESETS

    def _build(self) -> None:
        c = self.config
        self.g = SantaGenerator(c.ngf, c.n_blocks, c.style_dim)
        self.d = CUTDiscriminator(c.ndf)
        for m in (self.g, self.d):
            xavier_init(m, c.init_gain, embeddings=True)
            m.to(self.device).eval()

    def modules(self) -> dict[str, nn.Module]:
        return {"g": self.g, "d": self.d}

    # ------------------------------------------------------------------ training
    def setup_training(self, seed: int) -> list[torch.optim.Optimizer]:
        c = self.config
        return [self.adam(m.parameters(), lr=c.lr, betas=(c.beta1, 0.999)) for m in (self.g, self.d)]

    def path_length(self, latent_a: torch.Tensor) -> torch.Tensor:
        c = self.config
        n = len(latent_a)
        centre = torch.empty(n, device=latent_a.device).uniform_(0, 1)
        half = torch.empty(n, device=latent_a.device).uniform_(c.path_interval_min, c.path_interval_max)
        d1, d2 = (centre + half).clamp(0, 1), (centre - half).clamp(0, 1)
        feats = self.g.decode_features(torch.cat([latent_a, latent_a]), torch.cat([d1, d2]), c.path_layers)
        step = torch.clamp(d1 - d2, min=0.1).view(n, 1, 1, 1)
        energies = [((f1 - f2) / step).pow(2).mean() for f1, f2 in (f.chunk(2) for f in feats)]
        return sum(energies) / len(energies)

    def train_step(self, real_a, real_b, optimizers) -> dict[str, torch.Tensor]:
        c = self.config
        opt_g, opt_d = optimizers
        n = len(real_a)
        mu = self.g.encode(torch.cat([real_a, real_b]))
        latents = mu + torch.randn_like(mu) * c.noise_std if c.noise_std > 0 else mu
        latent_a, latent_b = latents[:n], latents[n:]
        d = torch.cat([torch.zeros(n), torch.ones(n), torch.ones(len(real_b))]).to(real_a.device)
        images = self.g.decode(torch.cat([latent_a, latent_a, latent_b]), d)
        rec_a, fake_b, idt_b = images[:n], images[n:2 * n], images[2 * n:]

        d_loss = 0.5 * (lsgan(self.d(fake_b.detach()), 0.0) + lsgan(self.d(real_b), 1.0))
        opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        opt_d.step()

        self.d.requires_grad_(False)
        gan = lsgan(self.d(fake_b), 1.0)
        rec = F.l1_loss(rec_a, real_a)
        idt = F.l1_loss(idt_b, real_b)
        kl = mu.pow(2).mean() if c.noise_std > 0 else torch.zeros((), device=real_a.device)
        path = self.path_length(latent_a) if c.lambda_path > 0 else torch.zeros((), device=real_a.device)
        g_total = (c.lambda_gan * gan + c.lambda_rec * rec + c.lambda_idt * idt + c.lambda_kl * kl
                   + c.lambda_path * path)
        opt_g.zero_grad(set_to_none=True)
        g_total.backward()
        opt_g.step()
        self.d.requires_grad_(True)
        return {"g_total": g_total.detach(), "g_gan": gan.detach(), "rec": rec.detach(), "idt": idt.detach(),
                "kl": kl.detach(), "path": path.detach(), "d_total": d_loss.detach()}

    # ------------------------------------------------------------------ inference
    def translate(self, images: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            y = padded_forward(self.g, images.to(self.device) * 2 - 1)
        return ((y + 1) / 2).clamp(0, 1).float()

    # ------------------------------------------------------------------ weights (checkpoints: LearnedTranslator)
    def official_state(self, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor] | None:
        """``latest_net_G.pth`` of the authors' code: ``encoder.`` / ``decoder.`` / ``domain_embedding`` keys."""
        return {f"g.{k}": v for k, v in state.items()} if "domain_embedding.weight" in state else None

    def config_from_official(self, state: dict[str, torch.Tensor]) -> SantaConfig | None:
        if "domain_embedding.weight" not in state:
            return None
        blocks = lambda part: len({k.split(".")[1] for k in state if k.startswith(part) and ".conv_block." in k})  # noqa: E731
        n_blocks = blocks("encoder.") + blocks("decoder.")
        c = replace(self.config, ngf=state["encoder.1.weight"].shape[0], n_blocks=n_blocks,
                    style_dim=state["domain_embedding.weight"].shape[1])
        if c.path_layers[-1] >= decoder_layers(n_blocks):  # a training-only field: fit it to the file's depth
            c = replace(c, path_layers=_SMALL_PATH)
        return c
