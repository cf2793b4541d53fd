"""AU-GAN's own loss terms (official AUGAN.py and loss_utils.py); the LSGAN and L1 terms it shares with ForkGAN
are in ``baselines.tf_exact.losses``."""

from __future__ import annotations

import torch

from baselines.tf_exact.losses import l1

EPS = 1e-7  # loss_utils.epsilon


def uncertainty_cycle(real: torch.Tensor, cycled: torch.Tensor, sigma: torch.Tensor, form: str) -> torch.Tensor:
    """The uncertainty-aware cycle loss of A -> B -> A.

    'official' (conf_criterion, used in training): mean(exp(-sigma) * 5 * |a - a'| + sigma / 2).
    'paper' (conf_criterion_lp, the Laplacian NLL): mean(|a - a'| * 2 / (sigma + eps) + log(2 sigma + eps)).
    """
    err = (real - cycled).abs()
    if form == "official":
        return (torch.exp(-sigma) * 5 * err + sigma / 2).mean()
    if form == "paper":
        return (err * 2 / (sigma + EPS) + torch.log(sigma * 2 + EPS)).mean()
    raise ValueError(f"unknown uncertainty form {form!r}")


def asymmetric_feature_matching(
    trans_real_a: torch.Tensor, enc_fake_b: torch.Tensor, enc_real_b: torch.Tensor, enc_fake_a: torch.Tensor
) -> torch.Tensor:
    """mean|avg_c(T-net(real A)) - avg_c(E_B2A(fake B))| + mean|avg_c(E_B2A(real B)) - avg_c(E_A2B(fake A))|."""
    return l1(trans_real_a.mean(1), enc_fake_b.mean(1)) + l1(enc_real_b.mean(1), enc_fake_a.mean(1))
