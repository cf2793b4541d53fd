"""ToDayGAN as a Translator: the authors' ``combogan_model.py`` step for step with two domains, on bench.learned's
loop. Domain indices follow their published Oxford RobotCar model (0 = day, 1 = night: ``night_domain``).

One step (A = night, B = day): D predictions on the real images first; then G: the relativistic LSGAN of each
translation against its target domain's real predictions (three views, multi-scale), plus 10 x the smooth-L1 cycle
loss each way (A -> B -> A through B's encoder and A's decoder), one Adam step per domain's encoder + decoder; then
D: per domain 0.5 x the relativistic loss of its real predictions (from before G's step, unchanged since D has not
moved) against a pooled translation (CycleGAN's 50-image pool), one Adam step per domain. Their identity and
forward terms default to 0 and are kept as options; their latent-cycle term (0 by default, ramped in over training
when set) is not ported.

Their loader draws which domain plays A at each step; the terms are symmetric, so fixing A = night computes the
same sum in a fixed order (the pools' draws fall differently).
"""

from __future__ import annotations

import re
import tempfile
import zipfile
from dataclasses import dataclass, replace
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from baselines.cyclegan_codebase import ImagePool
from baselines.todaygan.networks import ComboGenerator, ViewsDiscriminator, views_loss
from bench.learned import CheckpointMismatch, LearnedTranslator, Schedule, padded_forward

_AUTHORS_FILE = re.compile(r"(\d+)_net_G(\d+)\.pth$")


@dataclass(frozen=True)
class ToDayGANConfig(Schedule):
    ARCHITECTURE_FIELDS = ("ngf", "ndf", "n_blocks", "n_layers_d")

    ngf: int = 64
    ndf: int = 64
    n_blocks: int = 9  # netG_n_blocks: 4 in each encoder, 5 in each decoder
    n_layers_d: int = 4  # netD_n_layers
    night_domain: int = 1  # their RobotCar model: test0 = day, test1 = night
    lambda_cycle: float = 10.0
    lambda_identity: float = 0.0
    lambda_forward: float = 0.0
    pool_size: int = 50
    beta1: float = 0.5
    epochs: int = 150  # scripts/train_combogan.sh: --niter 75 --niter_decay 75
    epoch_decay: int = 75
    load_size: int | None = 512  # --loadSize 512 --fineSize 384 (theirs: square crops of a 512-short-side resize)
    fine_size: int = 384

    def __post_init__(self) -> None:
        if self.night_domain not in (0, 1):
            raise ValueError(f"night_domain must be 0 or 1 (two domains), got {self.night_domain}")
        if self.n_layers_d < 2:
            raise ValueError(f"n_layers_d must be at least 2 (the gradient view has one layer fewer), got {self.n_layers_d}")


_QUICK = dict(ngf=16, ndf=16, n_blocks=6, n_layers_d=3, batch_size=4, load_size=None, fine_size=64,
              epochs=6, epoch_decay=3, max_steps=500, checkpoint_every=100)
_SMOKE = dict(ngf=8, ndf=8, n_blocks=4, n_layers_d=3, batch_size=2, load_size=None, fine_size=32, epochs=1,
              epoch_decay=1, max_steps=12, checkpoint_every=4, log_every=2, pool_size=4)
PRESETS = {"paper": ToDayGANConfig(), "quick": ToDayGANConfig(**_QUICK), "smoke": ToDayGANConfig(**_SMOKE)}


def _normal_init(module: nn.Module) -> None:
    """ComboGAN's ``weights_init``: conv and transposed-conv weights N(0, 0.02), biases 0 (PReLU slopes stay 0.25)."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(m.weight, 0.0, 0.02)
            nn.init.zeros_(m.bias)


class ToDayGAN(LearnedTranslator):
    METHOD, KIND = "todaygan", "a ToDayGAN"
    CHECKPOINT_NETS = {"g": "g"}
    PRESETS = PRESETS

    def _build(self) -> None:
        c = self.config
        self.g = ComboGenerator(c.ngf, c.n_blocks)
        self.d = nn.ModuleList(ViewsDiscriminator(c.ndf, c.n_layers_d) for _ in range(2))
        for m in (self.g, self.d):
            _normal_init(m)
            m.to(self.device).eval()

    def modules(self) -> dict[str, nn.Module]:
        return {"g": self.g, "d": self.d}

    @property
    def domains(self) -> tuple[int, int]:
        """(night, day) domain indices."""
        return self.config.night_domain, 1 - self.config.night_domain

    # ------------------------------------------------------------------ training
    def setup_training(self, seed: int) -> list[torch.optim.Optimizer]:
        c = self.config
        self.pools = [ImagePool(c.pool_size, seed + d) for d in range(2)]
        betas = (c.beta1, 0.999)
        g_opts = [self.adam([*self.g.encoders[d].parameters(), *self.g.decoders[d].parameters()], lr=c.lr, betas=betas)
                  for d in range(2)]
        return [*g_opts, *(self.adam(self.d[d].parameters(), lr=c.lr, betas=betas) for d in range(2))]

    def extra_train_state(self) -> dict:
        return {f"pool_{d}": p.state_dict() for d, p in enumerate(self.pools)}

    def load_extra_train_state(self, state: dict) -> None:
        for d, p in enumerate(self.pools):
            p.load_state_dict(state[f"pool_{d}"], self.device)

    @staticmethod
    def _downsampled_l1(y: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return F.smooth_l1_loss(F.avg_pool2d(y, 3, stride=2), F.avg_pool2d(t, 3, stride=2))

    def train_step(self, real_a, real_b, optimizers) -> dict[str, torch.Tensor]:
        c = self.config
        da, db = self.domains
        g_opts, d_opts = optimizers[:2], optimizers[2:]
        enc, dec, d = self.g.encoders, self.g.decoders, self.d
        pred_real_a, pred_real_b = d[da](real_a), d[db](real_b)

        enc_a, enc_b = enc[da](real_a), enc[db](real_b)
        idt = torch.zeros((), device=real_a.device)
        if c.lambda_identity > 0:
            idt = self._downsampled_l1(dec[da](enc_a), real_a) + self._downsampled_l1(dec[db](enc_b), real_b)
        fake_b = dec[db](enc_a)
        gan_a = views_loss(pred_real_b, d[db](fake_b), discriminator=False)
        fake_a = dec[da](enc_b)
        gan_b = views_loss(pred_real_a, d[da](fake_a), discriminator=False)
        cyc_a = F.smooth_l1_loss(dec[da](enc[db](fake_b)), real_a)
        cyc_b = F.smooth_l1_loss(dec[db](enc[da](fake_a)), real_b)
        fwd = torch.zeros((), device=real_a.device)
        if c.lambda_forward > 0:
            fwd = self._downsampled_l1(fake_b, real_a) + self._downsampled_l1(fake_a, real_b)
        g_total = gan_a + gan_b + (cyc_a + cyc_b) * c.lambda_cycle + idt * c.lambda_identity + fwd * c.lambda_forward
        for opt in g_opts:
            opt.zero_grad(set_to_none=True)
        g_total.backward()
        g_opts[da].step()
        g_opts[db].step()

        for opt in d_opts:
            opt.zero_grad(set_to_none=True)
        pooled_b = self.pools[db](fake_b.detach())
        d_b = views_loss(pred_real_b, d[db](pooled_b), discriminator=True) * 0.5
        d_b.backward()
        pooled_a = self.pools[da](fake_a.detach())
        d_a = views_loss(pred_real_a, d[da](pooled_a), discriminator=True) * 0.5
        d_a.backward()
        d_opts[da].step()
        d_opts[db].step()
        return {"g_total": g_total.detach(), "g_gan_a": gan_a.detach(), "g_gan_b": gan_b.detach(),
                "cycle_a": cyc_a.detach(), "cycle_b": cyc_b.detach(), "d_a": d_a.detach(), "d_b": d_b.detach()}

    # ------------------------------------------------------------------ inference
    def translate(self, images: torch.Tensor) -> torch.Tensor:
        night, day = self.domains
        with torch.no_grad():
            y = padded_forward(lambda x: self.g.translate(x, night, day), images.to(self.device) * 2 - 1)
        return ((y + 1) / 2).clamp(0, 1).float()

    # ------------------------------------------------------------------ the authors' files
    def load_file(self, path: Path) -> None:
        """The authors' checkpoint: ``<epoch>_net_G0.pth`` .. ``G3.pth`` (encoders 0, 1, decoders 0, 1), given as one
        of those files (its siblings of the same epoch are read) or the zip the authors publish."""
        from bench.checkpoints import load_tensor_dict

        path = Path(path)
        with tempfile.TemporaryDirectory() as tmp:
            if path.suffix == ".zip":
                with zipfile.ZipFile(path) as zf:
                    members = [m for m in zf.namelist() if _AUTHORS_FILE.search(m)]
                    for m in members:
                        (Path(tmp) / Path(m).name).write_bytes(zf.read(m))
                folder = Path(tmp)
            else:
                folder = path.parent
            found = {}
            for f in sorted(folder.iterdir()):
                match = _AUTHORS_FILE.search(f.name)
                if match:
                    found.setdefault(int(match.group(1)), {})[int(match.group(2))] = f
            own = _AUTHORS_FILE.search(path.name)
            epochs = [int(own.group(1))] if own else sorted(found)
            if not epochs or sorted(found.get(epochs[-1], {})) != [0, 1, 2, 3]:
                raise CheckpointMismatch(
                    f"{path}: not a ToDayGAN checkpoint of two domains: expected <epoch>_net_G0.pth .. G3.pth (two "
                    f"encoders, two decoders) {'beside it' if own else 'in it'}, found "
                    f"{sorted(f.name for e in found.values() for f in e.values())[:6] or 'none'}")
            files = found[epochs[-1]]
            parts = {i: load_tensor_dict(files[i]) for i in range(4)}
        weights = {**{f"encoders.{i}.{k}": v for i in (0, 1) for k, v in parts[i].items()},
                   **{f"decoders.{i - 2}.{k}": v for i in (2, 3) for k, v in parts[i].items()}}
        if "model.1.weight" not in parts[0]:
            raise CheckpointMismatch(f"{files[0]}: not a ToDayGAN encoder (it has no model.1.weight)")
        blocks = lambda part: len({k.split(".")[3] for k in weights if k.startswith(part) and ".conv_block." in k})  # noqa: E731
        enc_blocks, dec_blocks = blocks("encoders.0."), blocks("decoders.0.")
        config = replace(self.config, ngf=parts[0]["model.1.weight"].shape[0], n_blocks=enc_blocks + dec_blocks)
        if enc_blocks != config.n_blocks // 2:
            raise CheckpointMismatch(f"{path}: {enc_blocks} encoder and {dec_blocks} decoder blocks: this port splits "
                                     "n_blocks as the authors do (n // 2 in the encoder)")
        self.config = config
        self._build()
        self._load_network(self.g, weights, "g")  # missing, unexpected or misshapen weights: one named error
        self.g.eval()
