"""PatchNCE (Park et al., ECCV 2020) as the CUT code base computes it and UNSB reuses it: shared by ``baselines.cut``
and ``baselines.unsb``. ``PatchSampleF`` projects encoder features sampled at shared random positions; ``patch_nce``
asks each query patch to pick its own key among the other patches of the same image."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class PatchSampleF(nn.Module):
    """Per NCE layer, a 2-layer MLP (C -> nc -> nc) on features sampled at shared random positions, then L2
    normalisation. The official code builds the MLPs at the first batch from the feature shapes; the shapes are
    known from ngf, so we build them up front (same names: mlp_0 ... mlp_4)."""

    def __init__(self, channels: list[int], nc: int = 256) -> None:
        super().__init__()
        for i, c in enumerate(channels):
            setattr(self, f"mlp_{i}", nn.Sequential(nn.Linear(c, nc), nn.ReLU(), nn.Linear(nc, nc)))
        self.n = len(channels)

    def forward(self, feats: list[torch.Tensor], num_patches: int, patch_ids: list[torch.Tensor] | None = None
                ) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        out, ids = [], []
        for i, feat in enumerate(feats):
            flat = feat.permute(0, 2, 3, 1).flatten(1, 2)  # N x HW x C
            if patch_ids is None:
                pid = torch.randperm(flat.shape[1])[:min(num_patches, flat.shape[1])].to(feat.device)
            else:
                pid = patch_ids[i]
            x = getattr(self, f"mlp_{i}")(flat[:, pid, :].flatten(0, 1))
            out.append(x / (x.pow(2).sum(1, keepdim=True).sqrt() + 1e-7))  # the official Normalize(2)
            ids.append(pid)
        return out, ids


def patch_nce(q: torch.Tensor, k: torch.Tensor, batch_size: int, tau: float = 0.07) -> torch.Tensor:
    """PatchNCE: each query patch must pick its own key patch among the other patches of the same image.
    q, k: (N * P) x C, L2-normalised; keys are detached. Returns the per-patch loss ((N * P),)."""
    k = k.detach()
    pos = (q * k).sum(1, keepdim=True)
    qb, kb = q.view(batch_size, -1, q.shape[1]), k.view(batch_size, -1, k.shape[1])
    neg = torch.bmm(qb, kb.transpose(1, 2))
    eye = torch.eye(neg.shape[1], dtype=torch.bool, device=q.device)[None]
    neg = neg.masked_fill(eye, -10.0).view(-1, neg.shape[2])
    logits = torch.cat([pos, neg], dim=1) / tau
    return F.cross_entropy(logits, torch.zeros(len(logits), dtype=torch.long, device=q.device), reduction="none")
