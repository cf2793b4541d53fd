"""UNSB as a Translator (the authors' ``sb_model.py`` step for step, on bench.learned's loop).

The Schrödinger bridge from A to B is discretised at T + 1 times t_0 = 0 < t_1 = 0.5 < ... < t_T = 1 (the released
schedule: harmonic steps that shrink toward 1). G(x_t, t, z) predicts the endpoint x_1 from the state x_t; the next
state x_k mixes x_{k-1} with that prediction (weight delta / (1 - t_{k-1}), delta = t_k - t_{k-1}) and adds Gaussian
noise of variance tau * delta * (1 - delta / (1 - t_{k-1})): a Brownian bridge from x_{k-1} to the prediction.

One training step: a step index k is drawn uniformly from 0..T-1; without gradients, x_k is simulated by k steps of
the chain from real A (twice, from two independent batches of A, and from real B for the identity term). Then
G(x_k) gives fake B (and G(x_k of B) the identity output, and G(x_k of A2) the second fake).
D: 0.5 (LSGAN(D(fake, k), 0) + LSGAN(D(B, k), 1)), one Adam step. E (a time-conditioned PatchGAN on pairs): the
MINE-style entropy estimate, -mean E((x, fake), (x, fake)) + L + L^2 with L = logsumexp E((x, fake), (x2, fake2)),
one Adam step. G and F, with D and E frozen: LSGAN(D(fake), 1) + lambda_SB * SB + lambda_NCE * PatchNCE, where
SB = -(T - k) / T * tau * (mean E(pair, pair) - L) + tau * mean((x_k - fake)^2) and PatchNCE as CUT's (encoder
features at step 0 with a fresh z), averaged with the identity term's. As released, the PatchNCE terms carry
lambda_NCE twice (inside the layer sum and in the total): the same at the default 1.0.

At test time the chain runs ``nfe`` steps from the input (``nfe`` = T, the authors' default, writes their last
output ``fake_T``; smaller values stop earlier, as their ``fake_k`` folders). The chain's noise (z per step, the
image noise between steps) is drawn per image from a CPU generator seeded with ``sample_seed`` and the image's
content, so a translation depends on neither the batch it came in nor the device.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace

import numpy as np
import torch
from torch import nn

from baselines.patch_nce import PatchSampleF, patch_nce
from baselines.cyclegan_codebase import lsgan, xavier_init
from baselines.unsb.networks import UNSBDiscriminator, UNSBGenerator
from bench.learned import LearnedTranslator, Schedule, padded_forward

_HEAD_LAYERS = 12  # len(UNSBGenerator.model): residual block i is NCE layer 12 + i


@dataclass(frozen=True)
class UNSBConfig(Schedule):
    ARCHITECTURE_FIELDS = ("ngf", "ndf", "n_blocks", "n_mlp", "netf_nc")
    TEST_TIME_FIELDS = ("nfe", "sample_seed")  # chosen when translating, not fixed by the checkpoint

    ngf: int = 64
    ndf: int = 64
    n_blocks: int = 9
    n_mlp: int = 3  # extra Linear layers of the noise mapping network
    netf_nc: int = 256
    num_timesteps: int = 5  # T
    tau: float = 0.01  # entropy weight: the bridge's noise level
    nfe: int = 5  # steps of the chain at test time, 1..T (the authors' test writes all; T is their last)
    sample_seed: int = 0
    nce_layers: tuple[int, ...] = (0, 4, 8, 12, 16)
    num_patches: int = 256
    nce_t: float = 0.07
    lambda_gan: float = 1.0
    lambda_nce: float = 1.0
    lambda_sb: float = 1.0  # their README's and run_train.sh's 1.0 (the option's own default is 0.1)
    nce_idt: bool = True  # --mode sb
    init_gain: float = 0.02  # Xavier-normal gain (init_type xavier)
    beta1: float = 0.5
    epochs: int = 400  # n_epochs 200 + n_epochs_decay 200
    epoch_decay: int = 200

    def __post_init__(self) -> None:
        object.__setattr__(self, "nce_layers", tuple(self.nce_layers))  # JSON gives a list back
        if self.num_timesteps < 2:
            raise ValueError(f"num_timesteps must be at least 2 (the released schedule divides by its last "
                             f"increment), got {self.num_timesteps}")
        if not 1 <= self.nfe <= self.num_timesteps:
            raise ValueError(f"nfe must be between 1 and num_timesteps ({self.num_timesteps}), got {self.nfe}")
        if max(self.nce_layers) >= _HEAD_LAYERS + self.n_blocks:
            raise ValueError(f"nce_layers {list(self.nce_layers)} reach past the generator's "
                             f"{_HEAD_LAYERS + self.n_blocks} layers (n_blocks {self.n_blocks})")


_QUICK = dict(ngf=16, ndf=16, n_blocks=6, netf_nc=64, num_patches=64, batch_size=4, load_size=None, fine_size=64,
              epochs=6, epoch_decay=3, max_steps=500, checkpoint_every=100)
_SMOKE = dict(ngf=8, ndf=8, n_blocks=5, netf_nc=32, num_patches=32, batch_size=2, load_size=None, fine_size=32,
              epochs=1, epoch_decay=1, max_steps=12, checkpoint_every=4, log_every=2)
PRESETS = {"paper": UNSBConfig(), "quick": UNSBConfig(**_QUICK), "smoke": UNSBConfig(**_SMOKE)}


def bridge_times(steps: int) -> torch.Tensor:
    """t_0 .. t_T of the released code: 0, then 0.5 + 0.5 * the normalised partial sums of 0, 1, 1/2, .., 1/(T-1)."""
    partial = np.cumsum([0.0] + [1.0 / (i + 1) for i in range(steps - 1)])
    partial = partial / partial[-1]
    return torch.tensor(np.concatenate([[0.0], 0.5 * partial[-1] + 0.5 * partial]), dtype=torch.float32)


def mutual_information_terms(e: nn.Module, pair: torch.Tensor, pair2: torch.Tensor, t: torch.Tensor
                             ) -> tuple[torch.Tensor, torch.Tensor]:
    """The two halves of the MINE estimate E trains for and G's entropy term uses: the mean of E on matched pairs
    (x_k, x_1) and the log-sum-exp of E on pairs matched against the other batch's pairs."""
    return e(pair, t, pair).mean(), torch.logsumexp(e(pair, t, pair2).reshape(-1), dim=0)


def entropy_network_loss(e: nn.Module, pair: torch.Tensor, pair2: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    joint, log_partition = mutual_information_terms(e, pair, pair2, t)
    return -joint + log_partition + log_partition ** 2


def schrodinger_bridge_loss(e: nn.Module, x_k: torch.Tensor, fake: torch.Tensor, pair2: torch.Tensor, k: int,
                            config: UNSBConfig) -> torch.Tensor:
    """G's SB term at step k: -(T - k) / T * tau * (MI estimate) + tau * the transport cost mean((x_k - fake)^2)."""
    t = torch.full((1,), k, dtype=torch.long, device=x_k.device)
    joint, log_partition = mutual_information_terms(e, torch.cat([x_k, fake], 1), pair2, t)
    weight = (config.num_timesteps - k) / config.num_timesteps * config.tau
    return -weight * (joint - log_partition) + config.tau * ((x_k - fake) ** 2).mean()


class UNSB(LearnedTranslator):
    METHOD, KIND = "unsb", "a UNSB"
    CHECKPOINT_NETS = {"g": "g"}
    PRESETS = PRESETS
    A_BATCHES = 2  # the entropy term compares pairs from two independent batches of A
    config: UNSBConfig

    def _build(self) -> None:
        c = self.config
        self.g = UNSBGenerator(c.ngf, c.n_blocks, c.n_mlp)
        self.d = UNSBDiscriminator(3, c.ndf)
        self.e = UNSBDiscriminator(12, c.ndf)
        with torch.no_grad():  # F's input widths: the generator's features at the NCE layers
            probe = self.g.encode(torch.zeros(1, 3, 16, 16), torch.zeros(1, dtype=torch.long),
                                  torch.zeros(1, 4 * c.ngf), c.nce_layers)
        self.f = PatchSampleF([t.shape[1] for t in probe], c.netf_nc)
        for m in self.modules().values():
            xavier_init(m, c.init_gain)  # as the authors' init_net, which also zeroes the style layers' biases
            m.to(self.device).eval()
        self.times = bridge_times(c.num_timesteps).to(self.device)

    def modules(self) -> dict[str, nn.Module]:
        return {"g": self.g, "d": self.d, "e": self.e, "f": self.f}

    # ------------------------------------------------------------------ the bridge
    def _next_state(self, x: torch.Tensor, endpoint: torch.Tensor, k: int, noise: torch.Tensor) -> torch.Tensor:
        """x_k from x_{k-1} and G's endpoint prediction (k >= 1)."""
        times = self.times
        delta, rest = times[k] - times[k - 1], times[-1] - times[k - 1]
        inter, scale = delta / rest, delta * (1 - delta / rest)
        return (1 - inter) * x + inter * endpoint + (scale * self.config.tau).sqrt() * noise

    def _z(self, n: int) -> torch.Tensor:
        return torch.randn(n, 4 * self.config.ngf, device=self.device)

    def _step_index(self, n: int, k: int) -> torch.Tensor:
        return torch.full((n,), k, dtype=torch.long, device=self.device)

    # ------------------------------------------------------------------ training
    def setup_training(self, seed: int) -> list[torch.optim.Optimizer]:
        c = self.config
        return [self.adam(m.parameters(), lr=c.lr, betas=(c.beta1, 0.999)) for m in (self.g, self.d, self.e, self.f)]

    def _nce(self, src: torch.Tensor, tgt: torch.Tensor) -> torch.Tensor:
        c = self.config
        t0, z = self._step_index(len(src), 0), self._z(len(src))
        feat_q = self.g.encode(tgt, t0, z, c.nce_layers)
        feat_k = self.g.encode(src, t0, z, c.nce_layers)
        k_pool, ids = self.f(feat_k, c.num_patches)
        q_pool, _ = self.f(feat_q, c.num_patches, ids)
        total = sum(patch_nce(q, k, len(src), c.nce_t).mean() * c.lambda_nce for q, k in zip(q_pool, k_pool))
        return total / len(c.nce_layers)

    def train_step(self, real_a, real_b, optimizers) -> dict[str, torch.Tensor]:
        c = self.config
        opt_g, opt_d, opt_e, opt_f = optimizers
        if len(real_a) != 2 * len(real_b):
            raise ValueError(f"UNSB's step takes two independent batches of A one after another (A_BATCHES = 2): "
                             f"got {len(real_a)} A images for {len(real_b)} B images")
        real_a, real_a2 = real_a.chunk(2)
        n = len(real_a)
        k = int(torch.randint(c.num_timesteps, (1,)))
        t = self._step_index(1, k)  # D and E broadcast one step embedding over the batch
        # Simulate x_k for every stream at once (instance norm and the noise are per image): A, A2 [, B].
        x = torch.cat([real_a, real_a2, real_b] if c.nce_idt else [real_a, real_a2])
        with torch.no_grad():  # (the authors also predict at step k itself, and discard it)
            for step in range(1, k + 1):
                endpoint = self.g(x, self._step_index(len(x), step - 1), self._z(len(x)))
                noise = torch.randn(x.shape, device=x.device, dtype=x.dtype)  # (randn_like would follow channels_last)
                x = self._next_state(x, endpoint, step, noise)
        xt_a, xt_a2 = x[:n], x[n:2 * n]
        fake = self.g(x, self._step_index(len(x), k), self._z(len(x)))
        fake_b, fake_b2, idt_b = fake[:n], fake[n:2 * n], (fake[2 * n:] if c.nce_idt else None)

        d_loss = 0.5 * (lsgan(self.d(fake_b.detach(), t), 0.0) + lsgan(self.d(real_b, t), 1.0))
        opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        opt_d.step()

        e_loss = entropy_network_loss(self.e, torch.cat([xt_a, fake_b.detach()], 1),
                                      torch.cat([xt_a2, fake_b2.detach()], 1), t)
        opt_e.zero_grad(set_to_none=True)
        e_loss.backward()
        opt_e.step()

        self.d.requires_grad_(False)
        self.e.requires_grad_(False)
        gan = lsgan(self.d(fake_b, t), 1.0) * c.lambda_gan
        sb = schrodinger_bridge_loss(self.e, xt_a, fake_b, torch.cat([xt_a2, fake_b2], 1), k, c)
        nce = self._nce(real_a, fake_b)
        nce_y = self._nce(real_b, idt_b) if idt_b is not None else None
        g_total = gan + c.lambda_sb * sb + c.lambda_nce * (0.5 * (nce + nce_y) if nce_y is not None else nce)
        opt_g.zero_grad(set_to_none=True)
        opt_f.zero_grad(set_to_none=True)
        g_total.backward()
        opt_g.step()
        opt_f.step()
        self.d.requires_grad_(True)
        self.e.requires_grad_(True)
        losses = {"g_total": g_total.detach(), "g_gan": gan.detach(), "sb": sb.detach(), "nce": nce.detach(),
                  "d_total": d_loss.detach(), "e_total": e_loss.detach()}
        if nce_y is not None:
            losses["nce_y"] = nce_y.detach()
        return losses

    # ------------------------------------------------------------------ inference
    def _image_seed(self, image: torch.Tensor) -> int:
        pixels = (image.detach().float().clamp(0, 1) * 255).round().to(torch.uint8).cpu().numpy().tobytes()
        digest = hashlib.sha256(f"{self.config.sample_seed}:{tuple(image.shape)}:".encode() + pixels).digest()
        return int.from_bytes(digest[:8], "little") >> 1

    def _sample(self, x: torch.Tensor, seeds: list[int]) -> torch.Tensor:
        c = self.config
        # One CPU generator per image: the same draws in any batch, on any device (z for every step first, then
        # the image noise of each later step).
        gens = [torch.Generator().manual_seed(seed) for seed in seeds]
        z = torch.stack([torch.randn(c.nfe, 4 * c.ngf, generator=g) for g in gens], 1).to(self.device)
        endpoint = self.g(x, self._step_index(len(x), 0), z[0])
        for step in range(1, c.nfe):
            noise = torch.stack([torch.randn(x.shape[1:], generator=g) for g in gens]).to(self.device, x.dtype)
            x = self._next_state(x, endpoint, step, noise)
            endpoint = self.g(x, self._step_index(len(x), step), z[step])
        return endpoint

    def translate(self, images: torch.Tensor) -> torch.Tensor:
        seeds = [self._image_seed(img) for img in images]
        with torch.no_grad():
            y = padded_forward(lambda x: self._sample(x, seeds), images.to(self.device) * 2 - 1)
        return ((y + 1) / 2).clamp(0, 1).float()

    # ------------------------------------------------------------------ weights (checkpoints: LearnedTranslator)
    def official_state(self, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor] | None:
        """``latest_net_G.pth`` of the authors' repository (``model.``, ``model_res.``, ``z_transform.`` keys)."""
        return {f"g.{k}": v for k, v in state.items()} if "z_transform.1.weight" in state else None

    def config_from_official(self, state: dict[str, torch.Tensor]) -> UNSBConfig | None:
        if "z_transform.1.weight" not in state or "model.1.weight" not in state:
            return None
        n_blocks = len({k.split(".")[1] for k in state if k.startswith("model_res.")})
        n_linear = len([k for k in state if k.startswith("z_transform.") and k.endswith(".weight")])
        return replace(self.config, ngf=state["model.1.weight"].shape[0], n_blocks=n_blocks, n_mlp=n_linear - 1)
