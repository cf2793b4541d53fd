"""ForkGAN (Zheng et al., ECCV 2020), AU-GAN's ancestor, from AU-GAN's own building blocks.

Written from the paper and the official TensorFlow code (github.com/zhengziqiang/ForkGAN, model.py).
Differences from AU-GAN, all visible here: five encoder blocks instead of four, no T-net and no
uncertainty head; a domain-agnostic classifier on the shared code trained adversarially against
the generators; and three discriminator families per domain (translation, reconstruction,
refinement of the reconstruction of the translation), each n_d multi-scale discriminators.

One step (official ``_build_model`` / ``train``):
  fake_B, rec_A, code(A) = G_A2B(A);  cyc_A, rec_fake_B, code(fake_B) = G_B2A(fake_B);
  fake_A, rec_B, code(B) = G_B2A(B);  cyc_B, rec_fake_A, code(fake_A) = G_A2B(fake_A);
  G: sum over the n_d discriminators of 0.5 [translation + refinement + reconstruction LSGAN terms of both domains]
     + 10 (|A - cyc_A| + |B - cyc_B|) + 10 (|rec_A - A| + |rec_B - B|)
     + perceptual |mean_c code(A) - mean_c code(fake_B)| + |mean_c code(B) - mean_c code(fake_A)|
     + 0.5 CE(cls(code(fake_A)), A) + 0.5 CE(cls(code(fake_B)), B);
  classifier (same step, same forward): 0.25 CE on real A, real B as themselves and fake B as A, fake A as B;
  then one shared history pool is queried three times (fakes, reconstructions, refinements) and each
  of the 3 n_d discriminator pairs takes an Adam step on 0.5 (LSGAN(real, 1) + LSGAN(pooled, 0)).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from baselines.tf_exact.layers import Conv, InstanceNorm
from baselines.tf_exact.losses import l1, lsgan
from baselines.tf_exact.networks import Generator, MultiScaleDiscriminator
from baselines.tf_exact.pool import HistoryPool
from bench.learned import LearnedTranslator, Schedule, padded_forward

ENCODER_BLOCKS = 5  # g_r1 .. g_r5


@dataclass(frozen=True)
class ForkGANConfig(Schedule):
    ARCHITECTURE_FIELDS = ("ngf", "ndf", "n_d", "n_scale")

    ngf: int = 64
    ndf: int = 64  # split over the n_d discriminators (df_dim = ndf // n_d), as in AU-GAN
    n_d: int = 2
    n_scale: int = 2
    lambda_l1: float = 10.0
    noise_std: float = 0.02
    pool_size: int = 50
    beta1: float = 0.5
    epochs: int = 20  # Alderley: 20 epochs, decay after 10 (BDD100K: 10 epochs at 512x1024)
    epoch_decay: int = 10

    @property
    def df_dim(self) -> int:
        return self.ndf // self.n_d


PRESETS = {
    # The official loader stretches each training image to 0..255 before its anti-aliased resize (scipy.misc.imresize
    # on a float image); the small presets keep images as they are.
    "paper": ForkGANConfig(stretch_input=True),
    "quick": ForkGANConfig(ngf=16, ndf=16, batch_size=4, load_size=None, fine_size=64, epochs=6, epoch_decay=3,
                           max_steps=500, checkpoint_every=100),
    "smoke": ForkGANConfig(ngf=8, ndf=8, batch_size=2, load_size=None, fine_size=32, epochs=1, epoch_decay=1,
                           max_steps=12, checkpoint_every=4, log_every=2, pool_size=4),
}


class DomainClassifier(nn.Module):
    """domain_agnostic_classifier: three stride-2 4x4 conv-IN-LeakyReLU stages, a 4x4 conv to 2 logits, averaged
    over the batch and all positions (one prediction per batch, as the official code)."""

    def __init__(self, in_channels: int, df_dim: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            Conv(in_channels, 4 * df_dim, 4, 2), InstanceNorm(4 * df_dim), nn.LeakyReLU(0.2),
            Conv(4 * df_dim, 2 * df_dim, 4, 2), InstanceNorm(2 * df_dim), nn.LeakyReLU(0.2),
            Conv(2 * df_dim, 2 * df_dim, 4, 2), InstanceNorm(2 * df_dim), nn.LeakyReLU(0.2),
            Conv(2 * df_dim, 2, 4, 1),
        )

    def forward(self, code: torch.Tensor) -> torch.Tensor:
        return self.body(code).mean((0, 2, 3))


def domain_ce(logits: torch.Tensor, domain: int) -> torch.Tensor:
    """Sigmoid cross-entropy against the one-hot label of ``domain`` (0 = A, 1 = B), mean over the 2 logits."""
    target = torch.zeros_like(logits)
    target[domain] = 1.0
    return F.binary_cross_entropy_with_logits(logits, target)


def _discriminators(c: ForkGANConfig) -> nn.ModuleList:
    return nn.ModuleList(MultiScaleDiscriminator(c.df_dim, c.n_scale) for _ in range(c.n_d))


class ForkGAN(LearnedTranslator):
    METHOD, KIND = "forkgan", "a ForkGAN"
    PRESETS = PRESETS
    CHECKPOINT_NETS = {"g_a2b": "g_a2b", "g_b2a": "g_b2a"}


    def _build(self) -> None:
        c = self.config
        self.g_a2b = Generator(c.ngf, noise_std=c.noise_std, encoder_blocks=ENCODER_BLOCKS)
        self.g_b2a = Generator(c.ngf, noise_std=c.noise_std, encoder_blocks=ENCODER_BLOCKS)
        self.classifier = DomainClassifier(4 * c.ngf, c.df_dim)
        # Per domain: translation (judges fakes), reconstruction (judges self-reconstructions) and
        # refinement (judges reconstructions of translations) discriminators.
        self.d_a, self.d_b = _discriminators(c), _discriminators(c)
        self.rec_a, self.rec_b = _discriminators(c), _discriminators(c)
        self.ref_a, self.ref_b = _discriminators(c), _discriminators(c)
        for m in self.modules().values():
            m.to(self.device).eval()

    def modules(self) -> dict[str, nn.Module]:
        return {"g_a2b": self.g_a2b, "g_b2a": self.g_b2a, "classifier": self.classifier, "d_a": self.d_a,
                "d_b": self.d_b, "rec_a": self.rec_a, "rec_b": self.rec_b, "ref_a": self.ref_a, "ref_b": self.ref_b}

    def _discriminator_pairs(self) -> list[tuple[nn.ModuleList, nn.ModuleList]]:
        return [(self.d_a, self.d_b), (self.rec_a, self.rec_b), (self.ref_a, self.ref_b)]

    # ------------------------------------------------------------------ training
    def setup_training(self, seed: int) -> list[torch.optim.Optimizer]:
        c = self.config
        adam = lambda params: self.adam(params, lr=c.lr, betas=(c.beta1, 0.999))  # noqa: E731
        self.pool = HistoryPool(c.pool_size, seed=seed)  # one pool, queried for all three pairs (official)
        opts = [adam([*self.g_a2b.parameters(), *self.g_b2a.parameters()]), adam(self.classifier.parameters())]
        for da, db in self._discriminator_pairs():
            opts += [adam([*da[i].parameters(), *db[i].parameters()]) for i in range(c.n_d)]
        return opts

    def extra_train_state(self) -> dict:
        return {"pool": self.pool.state_dict()}

    def load_extra_train_state(self, state: dict) -> None:
        self.pool.load_state_dict(state["pool"], self.device)

    def train_step(self, real_a, real_b, optimizers) -> dict[str, torch.Tensor]:
        c = self.config
        opt_g, opt_cls, *opt_d = optimizers
        a2b = self.g_a2b(real_a)
        cyc_a = self.g_b2a(a2b.image)
        b2a = self.g_b2a(real_b)
        cyc_b = self.g_a2b(b2a.image)
        fake_a, fake_b = b2a.image, a2b.image
        rec_a, rec_b = a2b.reconstruction, b2a.reconstruction
        ref_a, ref_b = cyc_b.reconstruction, cyc_a.reconstruction  # rec_fakeA, rec_fakeB

        adv = sum(0.5 * (lsgan(self.d_a[i](fake_a), 1.0) + lsgan(self.d_b[i](fake_b), 1.0))
                  + 0.5 * (lsgan(self.ref_b[i](ref_b), 1.0) + lsgan(self.ref_a[i](ref_a), 1.0))
                  + 0.5 * (lsgan(self.rec_a[i](rec_a), 1.0) + lsgan(self.rec_b[i](rec_b), 1.0)) for i in range(c.n_d))
        cycle = c.lambda_l1 * (l1(real_a, cyc_a.image) + l1(real_b, cyc_b.image))
        rec = c.lambda_l1 * (l1(rec_a, real_a) + l1(rec_b, real_b))
        percep = (l1(a2b.features.mean(1), cyc_a.features.mean(1)) + l1(b2a.features.mean(1), cyc_b.features.mean(1)))
        g_cls = 0.5 * domain_ce(self.classifier(cyc_b.features), 0) + 0.5 * domain_ce(self.classifier(cyc_a.features), 1)
        g_total = adv + cycle + rec + percep + g_cls
        # The classifier learns from the same forward pass (codes detached: its loss trains only it).
        codes = [t.detach() for t in (a2b.features, b2a.features, cyc_a.features, cyc_b.features)]
        cls = 0.25 * (domain_ce(self.classifier(codes[0]), 0) + domain_ce(self.classifier(codes[1]), 1)
                      + domain_ce(self.classifier(codes[2]), 0) + domain_ce(self.classifier(codes[3]), 1))
        opt_g.zero_grad(set_to_none=True)
        g_total.backward()
        opt_cls.zero_grad(set_to_none=True)  # drop what the generator loss left on the classifier
        cls.backward()
        opt_g.step()
        opt_cls.step()

        pooled = [self.pool(fake_a.detach(), fake_b.detach()), self.pool(rec_a.detach(), rec_b.detach()),
                  self.pool(ref_a.detach(), ref_b.detach())]
        d_total = torch.zeros((), device=real_a.device)
        for family, ((da, db), (pa, pb)) in enumerate(zip(self._discriminator_pairs(), pooled)):
            for i in range(c.n_d):
                loss = (0.5 * (lsgan(da[i](real_a), 1.0) + lsgan(da[i](pa), 0.0))
                        + 0.5 * (lsgan(db[i](real_b), 1.0) + lsgan(db[i](pb), 0.0)))
                opt = opt_d[family * c.n_d + i]
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                d_total = d_total + loss.detach()
        return {"g_total": g_total.detach(), "g_adv": adv.detach(), "cycle": cycle.detach(), "rec": rec.detach(),
                "percep": percep.detach(), "g_cls": g_cls.detach(), "cls": cls.detach(), "d_total": d_total}

    # ------------------------------------------------------------------ inference
    def _run(self, net: Generator, images: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            y = padded_forward(lambda x: net(x, reconstruct=False).image, images.to(self.device) * 2 - 1)
        return ((y + 1) / 2).clamp(0, 1).float()

    def translate(self, images: torch.Tensor) -> torch.Tensor:
        return self._run(self.g_a2b, images)

    def translate_back(self, images: torch.Tensor) -> torch.Tensor:
        return self._run(self.g_b2a, images)
