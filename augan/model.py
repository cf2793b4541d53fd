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

import json
import math
import os
from dataclasses import replace
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F
from tqdm import tqdm

from augan.config import AUGANConfig, preset_config
from augan.data import UnpairedBatches
from augan.losses import asymmetric_feature_matching, l1, lsgan, uncertainty_cycle
from augan.networks import Generator, MultiScaleDiscriminator
from augan.pool import HistoryPool
from bench.translator import TrainBudget, TranslatorError, UnpairedData

META_CONFIG = "_meta.config"
META_METHOD = "_meta.method"
TRAIN_STATE = "train_state.pt"


class TrainingDiverged(TranslatorError, RuntimeError):
    pass


class CheckpointMismatch(TranslatorError, ValueError):
    pass


def _encode(text: str) -> torch.Tensor:
    return torch.frombuffer(bytearray(text.encode()), dtype=torch.uint8).clone()


def _decode(t: torch.Tensor) -> str:
    return bytes(t.to(torch.uint8).tolist()).decode()


def _strip_prefixes(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Accept weights saved from DDP ('module.') or torch.compile ('_orig_mod.') wrappers."""
    out = {}
    for k, v in state.items():
        for prefix in ("module.", "_orig_mod."):
            k = k.replace(prefix, "")
        out[k] = v
    return out


def _atomic_torch_save(obj, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        torch.save(obj, tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


class AUGAN:
    """Adverse -> normal translation with AU-GAN; also ``uncertainty`` and ``translate_back``."""

    learned = True

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

    # ------------------------------------------------------------------ training
    def fit(self, data: UnpairedData, budget: TrainBudget, out_dir: Path) -> None:
        c = self.config
        if budget.max_steps is not None:
            c = self.config = replace(c, max_steps=budget.max_steps)
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        batches = UnpairedBatches(data.train_a, data.train_b, c.batch_size, c.load_size, c.fine_size, budget.seed)
        total = batches.steps_per_epoch * c.epochs
        if c.max_steps is not None:
            total = c.max_steps
        opt_g = torch.optim.Adam([*self.g_a2b.parameters(), *self.g_b2a.parameters()], lr=c.lr, betas=(c.beta1, 0.999))
        opt_d = [torch.optim.Adam([*self.d_a[i].parameters(), *self.d_b[i].parameters()], lr=c.lr,
                                  betas=(c.beta1, 0.999)) for i in range(c.n_d)]
        pool = HistoryPool(c.pool_size, seed=budget.seed)
        start = self._resume(out_dir, opt_g, opt_d, pool)
        for m in self.modules().values():
            m.train()
        log_path = out_dir / "train_log.jsonl"
        pending: list[tuple[int, dict[str, torch.Tensor]]] = []
        bar = tqdm(range(start, total), initial=start, total=total, desc=f"train {self.name}", unit="step", leave=False)
        for step in bar:
            lr = c.lr * self._lr_factor(step, total)
            for opt in (opt_g, *opt_d):
                for group in opt.param_groups:
                    group["lr"] = lr
            real_a, real_b = (t.to(self.device, non_blocking=True) for t in batches.batch(step))
            if c.channels_last:
                real_a, real_b = real_a.contiguous(memory_format=torch.channels_last), real_b.contiguous(
                    memory_format=torch.channels_last)
            losses = self._train_step(real_a, real_b, opt_g, opt_d, pool)
            pending.append((step, losses))
            done = step + 1
            # Losses are read back (a host sync) only every log_every steps and before a checkpoint.
            if done % c.log_every == 0 or done % c.checkpoint_every == 0 or done == total:
                self._flush_log(pending, log_path, out_dir)
                bar.set_postfix(g=f"{pending[-1][1]['g_total']:.3f}" if pending else "")
                pending.clear()
            if done % c.checkpoint_every == 0 or done == total:
                self._save_train_state(out_dir, done, opt_g, opt_d, pool)
        for m in self.modules().values():
            m.eval()

    def _lr_factor(self, step: int, total: int) -> float:
        """Constant for epoch_decay epochs, then linear to 0 (per epoch, as the official loop)."""
        c = self.config
        epoch = min(c.epochs - 1, int(step * c.epochs / total))
        if epoch < c.epoch_decay:
            return 1.0
        return (c.epochs - epoch) / (c.epochs - c.epoch_decay)

    def _train_step(self, real_a, real_b, opt_g, opt_d, pool) -> dict[str, torch.Tensor]:
        c = self.config
        autocast = torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=c.amp_bf16)
        with autocast:
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

        pooled_a, pooled_b = pool(fake_a.detach(), fake_b.detach())
        d_losses = []
        for i in range(c.n_d):
            with autocast:
                d_b = 0.5 * (lsgan(self.d_b[i](real_b), 1.0) + lsgan(self.d_b[i](pooled_b), 0.0))
                d_a = 0.5 * (lsgan(self.d_a[i](real_a), 1.0) + lsgan(self.d_a[i](pooled_a), 0.0))
                d_loss = d_a + d_b
            opt_d[i].zero_grad(set_to_none=True)  # also drops the grads the G step left on D
            d_loss.backward()
            opt_d[i].step()
            d_losses.append(d_loss.detach())
        return {"g_total": g_total.detach(), "g_adv": adv.detach(), "rec": rec.detach(), "cycle_a": cycle_a.detach(),
                "cycle_b": cycle_b.detach(), "afm": afm.detach(), "d_total": torch.stack(d_losses).sum()}

    def _flush_log(self, pending, log_path: Path, out_dir: Path) -> None:
        if not pending:
            return
        rows = []
        for step, losses in pending:
            values = {k: float(v) for k, v in losses.items()}
            if not all(math.isfinite(v) for v in values.values()):
                last = out_dir / TRAIN_STATE
                keep = f"the last good checkpoint is {last}" if last.is_file() else "no checkpoint was written yet"
                bad = ", ".join(k for k, v in values.items() if not math.isfinite(v))
                raise TrainingDiverged(f"{self.name}: non-finite loss ({bad}) at step {step + 1}; training stopped, {keep}")
            rows.append(json.dumps({"step": step + 1, **values}))
        with open(log_path, "a") as fh:
            fh.write("\n".join(rows) + "\n")

    def _save_train_state(self, out_dir: Path, step: int, opt_g, opt_d, pool: HistoryPool) -> None:
        state = {
            "step": step,
            "config": self.config.to_json(),
            "models": {k: m.state_dict() for k, m in self.modules().items()},
            "opt_g": opt_g.state_dict(),
            "opt_d": [o.state_dict() for o in opt_d],
            "pool": pool.state_dict(),
            "torch_rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state_all() if self.device.type == "cuda" else [],
        }
        _atomic_torch_save(state, out_dir / TRAIN_STATE)

    def _resume(self, out_dir: Path, opt_g, opt_d, pool: HistoryPool) -> int:
        path = out_dir / TRAIN_STATE
        if not path.is_file():
            return 0
        state = torch.load(path, map_location="cpu", weights_only=True)
        saved = AUGANConfig.from_json(state["config"])
        mismatch = self.config.architecture_mismatch(saved)
        if mismatch:
            raise CheckpointMismatch(f"{path} was made with another AU-GAN configuration ({'; '.join(mismatch)}); "
                                     "delete it or use the matching preset")
        for k, m in self.modules().items():
            m.load_state_dict(state["models"][k])
        opt_g.load_state_dict(state["opt_g"])
        for o, s in zip(opt_d, state["opt_d"]):
            o.load_state_dict(s)
        pool.load_state_dict(state["pool"], self.device)
        torch.set_rng_state(state["torch_rng"])
        if state["cuda_rng"]:
            torch.cuda.set_rng_state_all(state["cuda_rng"])
        # Log lines past the checkpoint belong to the interrupted attempt: drop them.
        log = out_dir / "train_log.jsonl"
        if log.is_file():
            keep = [ln for ln in log.read_text().splitlines() if ln and json.loads(ln)["step"] <= state["step"]]
            log.write_text("".join(ln + "\n" for ln in keep))
        return int(state["step"])

    # ------------------------------------------------------------------ inference
    def _run(self, net: nn.Module, images: torch.Tensor, sigma: bool = False) -> torch.Tensor:
        """Pad to a multiple of 4 (two stride-2 stages), run, crop back to the input size."""
        h, w = images.shape[-2:]
        ph, pw = (-h) % 4, (-w) % 4
        x = images.to(self.device) * 2 - 1
        if ph or pw:
            mode = "reflect" if min(h, w) > max(ph, pw) else "replicate"
            x = F.pad(x, (0, pw, 0, ph), mode=mode)
        with torch.no_grad(), torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.config.amp_bf16):
            out = net(x, reconstruct=False, confidence=sigma)
        y = (out.sigma if sigma else (out.image + 1) / 2).float()
        return y[..., :h, :w].clamp(min=0) if sigma else y[..., :h, :w].clamp(0, 1)

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

    # ------------------------------------------------------------------ weights
    def state_dict(self) -> dict[str, torch.Tensor]:
        state = {f"g_a2b.{k}": v for k, v in self.g_a2b.state_dict().items()}
        state.update({f"g_b2a.{k}": v for k, v in self.g_b2a.state_dict().items()})
        state[META_CONFIG] = _encode(self.config.to_json())
        state[META_METHOD] = _encode("augan")
        return state

    def _checkpoint_config(self, state: dict[str, torch.Tensor]) -> AUGANConfig:
        if META_METHOD not in state or _decode(state[META_METHOD]) != "augan":
            sample = ", ".join(list(state)[:3])
            raise CheckpointMismatch(f"not an AU-GAN checkpoint (no AU-GAN metadata; first keys: {sample})")
        return AUGANConfig.from_json(_decode(state[META_CONFIG]))

    def configure_from_state(self, state: dict[str, torch.Tensor]) -> None:
        """Adopt the checkpoint's architecture (for `bench translate`, where no preset is implied)."""
        self.config = self._checkpoint_config(state)
        self._build()

    def import_tf_checkpoint(self, path: Path) -> None:
        """Adopt the architecture and generator weights of an official TensorFlow checkpoint."""
        from augan.tf_import import config_from_variables, convert, read_tf_checkpoint

        variables = read_tf_checkpoint(path)
        self.config = config_from_variables(variables)
        self._build()
        converted = convert(variables, self.state_dict())
        for prefix, net in (("g_a2b.", self.g_a2b), ("g_b2a.", self.g_b2a)):
            net.load_state_dict({k[len(prefix):]: v for k, v in converted.items() if k.startswith(prefix)})

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        state = _strip_prefixes(state)
        saved = self._checkpoint_config(state)
        mismatch = self.config.architecture_mismatch(saved)
        if mismatch:
            raise CheckpointMismatch(f"AU-GAN checkpoint does not fit this model: {'; '.join(mismatch)}")
        for prefix, net in (("g_a2b.", self.g_a2b), ("g_b2a.", self.g_b2a)):
            net.load_state_dict({k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)})
