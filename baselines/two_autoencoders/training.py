"""What MUNIT and UNIT share beyond their blocks: two auto-encoders, two multi-scale discriminators, the
authors' optimiser and step decay, and their two-network checkpoint files (``{"a": gen_a, "b": gen_b}``)."""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch
from torch import nn

from baselines.two_autoencoders.networks import MsImageDis, init_weights, step_decay
from bench.learned import LearnedTranslator, Schedule


@dataclass(frozen=True)
class TwoAutoencoderConfig(Schedule):
    """The fields MUNIT's and UNIT's configs share, with the authors' defaults (their configs: content encoder
    dim 64, 2 downsamplings, 4 residual blocks; D 64 wide, 4 layers, 3 scales; Adam 1e-4, betas (0.5, 0.999),
    weight decay 1e-4, x0.5 every 100k of 1M iterations)."""

    ARCHITECTURE_FIELDS = ("dim", "n_downsample", "n_res", "dis_dim", "dis_layers", "dis_scales")

    dim: int = 64
    n_downsample: int = 2
    n_res: int = 4
    dis_dim: int = 64
    dis_layers: int = 4
    dis_scales: int = 3
    gan_w: float = 1.0
    recon_x_w: float = 10.0
    recon_x_cyc_w: float = 10.0
    lr: float = 1e-4
    beta1: float = 0.5
    weight_decay: float = 1e-4
    step_size: int = 100_000
    gamma: float = 0.5
    epochs: int = 1  # the schedule is by iterations (max_steps), not epochs
    epoch_decay: int = 1
    max_steps: int | None = 1_000_000
    checkpoint_every: int = 1000


class TwoAutoencoderGAN(LearnedTranslator):
    CHECKPOINT_NETS = {"a": "gen_a", "b": "gen_b"}
    ENCODER_PREFIX = ""  # where the content encoder's blocks sit in an official file, e.g. "a.enc.model."

    def _generator(self) -> nn.Module:
        raise NotImplementedError

    def _build(self) -> None:
        c = self.config
        self.gen_a, self.gen_b = self._generator(), self._generator()
        self.dis_a = MsImageDis(c.dis_dim, c.dis_layers, c.dis_scales)
        self.dis_b = MsImageDis(c.dis_dim, c.dis_layers, c.dis_scales)
        for g in (self.gen_a, self.gen_b):
            init_weights(g, "kaiming")
        for d in (self.dis_a, self.dis_b):
            init_weights(d, "gaussian")
        for m in self.modules().values():
            m.to(self.device).eval()

    def modules(self) -> dict[str, nn.Module]:
        return {"gen_a": self.gen_a, "gen_b": self.gen_b, "dis_a": self.dis_a, "dis_b": self.dis_b}

    def lr_factor(self, step: int, total: int) -> float:
        return step_decay(step, self.config.step_size, self.config.gamma)

    def setup_training(self, seed: int) -> list[torch.optim.Optimizer]:
        c = self.config

        def adam(params):
            return self.adam(params, lr=c.lr, betas=(c.beta1, 0.999), weight_decay=c.weight_decay)

        return [adam([*self.gen_a.parameters(), *self.gen_b.parameters()]),
                adam([*self.dis_a.parameters(), *self.dis_b.parameters()])]

    def _set_requires_grad_d(self, flag: bool) -> None:
        for d in (self.dis_a, self.dis_b):
            d.requires_grad_(flag)

    # ------------------------------------------------------------------ the authors' files
    def official_state(self, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor] | None:
        """``gen_<iter>.pt`` ({"a": ..., "b": ...}, flattened to a./b. keys by bench.checkpoints)."""
        return state if any(k.startswith(self.ENCODER_PREFIX) for k in state) else None

    def config_from_official(self, state: dict[str, torch.Tensor]):
        p = self.ENCODER_PREFIX
        if p + "0.conv.weight" not in state:
            return None
        convs = {k[len(p):].split(".")[0] for k in state if k.startswith(p) and k[len(p):].count(".") == 2}
        blocks = {k[len(p):].split(".")[2] for k in state if k.startswith(p) and k[len(p):].count(".") >= 5}
        return replace(self.config, dim=state[p + "0.conv.weight"].shape[0], n_downsample=len(convs) - 1,
                       n_res=len(blocks), **self._extra_official_shapes(state))

    def _extra_official_shapes(self, state: dict[str, torch.Tensor]) -> dict:
        return {}
