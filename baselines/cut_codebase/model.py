"""CUT and FastCUT as Translators (official ``cut_model.py`` step for step, on bench.learned's loop).

One step: G translates A (and, with the identity term, B in the same batch); with flip equivariance
(FastCUT) the whole input is flipped at random. D: 0.5 (LSGAN(D(fake), 0) + LSGAN(D(B), 1)), one Adam
step. G and F: LSGAN(D(fake), 1) + PatchNCE(A, fake) (averaged with PatchNCE(B, G(B)) when the identity
term is on), one Adam step each. PatchNCE: the generator's own encoder features at layers 0, 4, 8,
12, 16 of the translation (queries) and of the input (keys, detached), 256 random positions per
layer shared between the two, a 2-layer MLP and L2 normalisation (F), temperature 0.07, negatives
from the same image; averaged over layers, times lambda_NCE. One-sided: no B -> A generator.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch
from torch import nn

from baselines.cut_codebase.networks import CUTDiscriminator, CUTGenerator
from baselines.patch_nce import PatchSampleF, patch_nce
from baselines.cyclegan_codebase import lsgan, xavier_init
from bench.learned import LearnedTranslator, Schedule, padded_forward


@dataclass(frozen=True)
class CUTConfig(Schedule):
    ARCHITECTURE_FIELDS = ("ngf", "ndf", "n_blocks", "netf_nc")

    ngf: int = 64
    ndf: int = 64
    n_blocks: int = 9
    netf_nc: int = 256
    nce_layers: tuple[int, ...] = (0, 4, 8, 12, 16)
    num_patches: int = 256
    nce_t: float = 0.07
    lambda_gan: float = 1.0
    lambda_nce: float = 1.0
    nce_idt: bool = True  # CUT: True; FastCUT: False
    flip_equivariance: bool = False  # FastCUT: True
    init_gain: float = 0.02  # Xavier-normal gain (official init_type xavier)
    beta1: float = 0.5
    epochs: int = 400  # n_epochs 200 + n_epochs_decay 200 (FastCUT: 150 + 50)
    epoch_decay: int = 200

    def __post_init__(self) -> None:
        object.__setattr__(self, "nce_layers", tuple(self.nce_layers))  # JSON gives a list back


QUICK = dict(ngf=16, ndf=16, n_blocks=6, netf_nc=64, num_patches=64, batch_size=4, load_size=None, fine_size=64,
              epochs=6, epoch_decay=3, max_steps=500, checkpoint_every=100)
SMOKE = dict(ngf=8, ndf=8, n_blocks=5, netf_nc=32, num_patches=32, batch_size=2, load_size=None, fine_size=32,
              epochs=1, epoch_decay=1, max_steps=12, checkpoint_every=4, log_every=2)
FAST = dict(nce_idt=False, lambda_nce=10.0, flip_equivariance=True, epochs=200, epoch_decay=150)
PRESETS = {
    "cut": {"paper": CUTConfig(), "quick": CUTConfig(**QUICK), "smoke": CUTConfig(**SMOKE)},
    "fastcut": {"paper": CUTConfig(**FAST), "quick": CUTConfig(**{**QUICK, **FAST, "epochs": 6, "epoch_decay": 3}),
                "smoke": CUTConfig(**{**SMOKE, **FAST, "epochs": 1, "epoch_decay": 1})},
}


class CUTGeneratorTranslator:
    """What every method whose generator is CUT's shares (CUT, FastCUT, MoNCE, DECENT): translation with ``self.g``
    (in [-1, 1], padded to a multiple of 4) and the authors' ``latest_net_G.pth`` in the CUT repository's layout
    (``model.<i>...`` keys, blur buffers included; width and depth read off the keys). Listed before
    ``LearnedTranslator`` among a translator's bases."""

    g: CUTGenerator
    config: Schedule
    device: torch.device

    def translate(self, images: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            y = padded_forward(self.g, images.to(self.device) * 2 - 1)
        return ((y + 1) / 2).clamp(0, 1).float()

    def official_state(self, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor] | None:
        return {f"g.{k}": v for k, v in state.items()} if any(k.startswith("model.") for k in state) else None

    def config_from_official(self, state: dict[str, torch.Tensor]) -> Schedule | None:
        if "model.1.weight" not in state:
            return None
        n_blocks = len({k.split(".")[1] for k in state if ".conv_block." in k})
        return replace(self.config, ngf=state["model.1.weight"].shape[0], n_blocks=n_blocks)


class CUT(CUTGeneratorTranslator, LearnedTranslator):
    METHOD, KIND = "cut", "a CUT"
    CHECKPOINT_NETS = {"g": "g"}

    def __init__(self, preset: str = "quick", device: str = "cpu", variant: str = "cut",
                 config: CUTConfig | None = None) -> None:
        self.name = variant
        self.device = torch.device(device)
        self.config = config or PRESETS[variant][preset]
        self._build()

    def _build(self) -> None:
        c = self.config
        self.g = CUTGenerator(c.ngf, c.n_blocks)
        self.d = CUTDiscriminator(c.ndf)
        self.f = PatchSampleF(self.g.feature_channels(c.nce_layers), c.netf_nc)
        for m in self.modules().values():
            xavier_init(m, c.init_gain)
            m.to(self.device).eval()

    def modules(self) -> dict[str, nn.Module]:
        return {"g": self.g, "d": self.d, "f": self.f}

    # ------------------------------------------------------------------ training
    def setup_training(self, seed: int) -> list[torch.optim.Optimizer]:
        c = self.config
        return [self.adam(m.parameters(), lr=c.lr, betas=(c.beta1, 0.999)) for m in (self.g, self.d, self.f)]

    def _nce(self, src: torch.Tensor, tgt: torch.Tensor, flipped: bool) -> torch.Tensor:
        c = self.config
        feat_q = self.g.encode(tgt, c.nce_layers)
        if flipped:
            feat_q = [f.flip(3) for f in feat_q]
        feat_k = self.g.encode(src, c.nce_layers)
        k_pool, ids = self.f(feat_k, c.num_patches)
        q_pool, _ = self.f(feat_q, c.num_patches, ids)
        total = sum(self.patch_loss(q, k, src.shape[0]).mean() * c.lambda_nce for q, k in zip(q_pool, k_pool))
        return total / len(c.nce_layers)

    def patch_loss(self, q: torch.Tensor, k: torch.Tensor, batch_size: int) -> torch.Tensor:
        """The contrastive loss per query patch on one layer's projected features: MoNCE replaces it."""
        return patch_nce(q, k, batch_size, self.config.nce_t)

    def train_step(self, real_a, real_b, optimizers) -> dict[str, torch.Tensor]:
        c = self.config
        opt_g, opt_d, opt_f = optimizers
        real = torch.cat([real_a, real_b]) if c.nce_idt else real_a
        flipped = c.flip_equivariance and bool(torch.rand(()) < 0.5)
        if flipped:
            real = real.flip(3)
        fake = self.g(real)
        fake_b = fake[:len(real_a)]
        idt_b = fake[len(real_a):] if c.nce_idt else None

        d_loss = 0.5 * (lsgan(self.d(fake_b.detach()), 0.0) + lsgan(self.d(real_b), 1.0))
        opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        opt_d.step()

        self.d.requires_grad_(False)
        gan = lsgan(self.d(fake_b), 1.0) * c.lambda_gan
        nce = self._nce(real_a, fake_b, flipped)
        nce_y = self._nce(real_b, idt_b, flipped) if idt_b is not None else None
        g_total = gan + (0.5 * (nce + nce_y) if nce_y is not None else nce)
        opt_g.zero_grad(set_to_none=True)
        opt_f.zero_grad(set_to_none=True)
        g_total.backward()
        opt_g.step()
        opt_f.step()
        self.d.requires_grad_(True)
        losses = {"g_total": g_total.detach(), "g_gan": gan.detach(), "nce": nce.detach(), "d_total": d_loss.detach()}
        if nce_y is not None:
            losses["nce_y"] = nce_y.detach()
        return losses
