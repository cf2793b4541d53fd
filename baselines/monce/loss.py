"""MoNCE's modulated contrastive loss, as the authors' ``CUT_MoNCE/models/monce.py`` and ``sinkhorn.py`` compute it.

PatchNCE pushes every negative key away from its query with the same force. MoNCE first solves an entropic optimal
transport problem between the query patches and the key patches of one image (Sinkhorn iterations on
``exp(score / eps)``), then adds ``log(plan * (num_patches - 1) * neg_term_weight)`` to each negative logit: harder
negatives (cost ``hard``: higher similarity) get more weight. The plan is computed from the queries *with*
gradient, as in the released code, so the generator is also trained through the Sinkhorn iterations.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def transport_plan(q: torch.Tensor, k: torch.Tensor, eps: float, cost_type: str, iters: int) -> torch.Tensor:
    """Sinkhorn plan between the P queries and P keys of each image. q, k: B x P x C (L2-normalised).
    Returns B x P x P (row i: query i) with uniform marginals, scaled as the released code leaves it."""
    similarity = q @ k.transpose(1, 2)
    score = similarity if cost_type == "hard" else 1 - similarity
    eye = torch.eye(score.shape[1], dtype=torch.bool, device=q.device)[None]
    kernel = torch.exp(score.masked_fill(eye, -10.0) / eps)  # a patch is not its own negative
    n, rows, cols = kernel.shape
    v = kernel.new_ones(n, cols)
    for _ in range(iters):
        u = (cols / rows) / (kernel @ v[..., None])[..., 0]
        v = 1.0 / (u[:, None, :] @ kernel)[:, 0, :]
    return u[..., None] * kernel * v[:, None, :]


def modulated_nce(q: torch.Tensor, k: torch.Tensor, batch_size: int, tau: float, *, num_patches: int,
                  eps: float = 1.0, cost_type: str = "hard", neg_term_weight: float = 1.0, iters: int = 50
                  ) -> torch.Tensor:
    """MoNCE per query patch. q, k: (B * P) x C, L2-normalised; keys detached. ``num_patches`` is the *configured*
    count (the released code scales by ``opt.num_patches - 1`` even where a layer has fewer positions)."""
    k = k.detach()
    dim = q.shape[1]
    qb, kb = q.view(batch_size, -1, dim), k.view(batch_size, -1, dim)
    weights = transport_plan(qb, kb, eps, cost_type, iters) * ((num_patches - 1) * neg_term_weight) + 1e-8
    pos = (q * k).sum(1, keepdim=True)
    neg = qb @ kb.transpose(1, 2) + torch.log(weights) * tau
    eye = torch.eye(neg.shape[1], dtype=torch.bool, device=q.device)[None]
    neg = neg.masked_fill(eye, -10.0).view(-1, neg.shape[2])
    logits = torch.cat([pos, neg], dim=1) / tau
    return F.cross_entropy(logits, torch.zeros(len(logits), dtype=torch.long, device=q.device), reduction="none")
