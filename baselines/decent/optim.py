"""The optimizer DECENT trains its density flows with (the authors' ``models/bnaf.py`` ``Adam``, from the BNAF code):
Adam in its original form (epsilon added to the root of the *uncorrected* second moment, the bias corrections folded
into the step size), optionally AMSGrad, plus a Polyak average of the parameters that ``swap`` exchanges with them.

As released, the average starts at zero and is never bias-corrected: after t steps it holds
``(1 - polyak^t)`` of the parameters' scale (about 18% after 100 steps at polyak 0.998), and the generator's
density-changing loss is computed with these averaged flows. Every published DECENT number carries this, so we
keep it.
"""

from __future__ import annotations

import math

import torch


class PolyakAdam(torch.optim.Optimizer):
    def __init__(self, params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 amsgrad: bool = True, polyak: float = 0.998) -> None:
        if not 0.0 <= polyak <= 1.0:
            raise ValueError(f"polyak must be in [0, 1], got {polyak}")
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, amsgrad=amsgrad, polyak=polyak))

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if not state:
                    state["step"] = 0
                    state["exp_avg"] = torch.zeros_like(p)
                    state["exp_avg_sq"] = torch.zeros_like(p)
                    state["exp_avg_param"] = torch.zeros_like(p)
                    if group["amsgrad"]:
                        state["max_exp_avg_sq"] = torch.zeros_like(p)
                state["step"] += 1
                t = state["step"]
                state["exp_avg"].mul_(beta1).add_(p.grad, alpha=1 - beta1)
                state["exp_avg_sq"].mul_(beta2).addcmul_(p.grad, p.grad, value=1 - beta2)
                second = state["exp_avg_sq"]
                if group["amsgrad"]:
                    torch.maximum(state["max_exp_avg_sq"], second, out=state["max_exp_avg_sq"])
                    second = state["max_exp_avg_sq"]
                step_size = group["lr"] * math.sqrt(1 - beta2 ** t) / (1 - beta1 ** t)
                p.addcdiv_(state["exp_avg"], second.sqrt().add_(group["eps"]), value=-step_size)
                polyak = group["polyak"]
                state["exp_avg_param"] = polyak * state["exp_avg_param"] + (1 - polyak) * p
        return None

    @torch.no_grad()
    def swap(self) -> None:
        """Exchange every parameter with its running average (call twice to undo)."""
        for group in self.param_groups:
            for p in group["params"]:
                state = self.state.get(p)
                if state:
                    current = p.detach().clone()
                    p.copy_(state["exp_avg_param"])
                    state["exp_avg_param"] = current
