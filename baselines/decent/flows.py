"""DECENT's patch density estimators: block neural autoregressive flows (BNAF; De Cao, Titov and Aziz, UAI 2019) as
the authors' ``models/bnaf.py`` builds them, one flow per feature layer (``PatchDensityEstimator``).

A BNAF layer is a linear map whose weight is block lower-triangular over the ``dim`` input dimensions, with
positive (exponentiated) diagonal blocks and weight normalisation; with tanh between layers the whole map is
autoregressive and monotone, so its Jacobian is triangular and its log-determinant is carried along as the log of
the diagonal blocks (``grad``), combined layer to layer by log-sum-exp. A flow's log-density of x is
``log N(f(x); 0, I) + log |det df/dx|``. Module and buffer names follow the authors' code.
"""

from __future__ import annotations

import math

import torch
from torch import nn


class MaskedWeight(nn.Module):
    """Block-triangular linear layer: ``in_features`` and ``out_features`` are whole widths, split into ``dim``
    equal blocks; block (i, j) is zero for j > i and exp()-positive for j = i."""

    def __init__(self, in_features: int, out_features: int, dim: int) -> None:
        super().__init__()
        self.in_features, self.out_features, self.dim = in_features, out_features, dim
        rows, cols = out_features // dim, in_features // dim
        weight = torch.zeros(out_features, in_features)
        for i in range(dim):  # the authors' initialisation: Xavier-uniform on each block row's visible part
            weight[i * rows:(i + 1) * rows, :(i + 1) * cols] = nn.init.xavier_uniform_(torch.empty(rows, (i + 1) * cols))
        self._weight = nn.Parameter(weight)
        self._diag_weight = nn.Parameter(nn.init.uniform_(torch.empty(out_features, 1)).log())
        bound = 1 / math.sqrt(out_features)
        self.bias = nn.Parameter(nn.init.uniform_(torch.empty(out_features), -bound, bound))
        mask_d = torch.zeros(out_features, in_features)
        mask_o = torch.ones(out_features, in_features)
        for i in range(dim):
            mask_d[i * rows:(i + 1) * rows, i * cols:(i + 1) * cols] = 1
            mask_o[i * rows:(i + 1) * rows, i * cols:] = 0
        self.register_buffer("mask_d", mask_d)  # the diagonal blocks
        self.register_buffer("mask_o", mask_o)  # strictly below them

    def weights(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The weight (in x out) and the log of its diagonal blocks (dim x in/dim x out/dim)."""
        w = torch.exp(self._weight) * self.mask_d + self._weight * self.mask_o
        norm_sq = (w ** 2).sum(-1, keepdim=True)
        w = self._diag_weight.exp() * w / norm_sq.sqrt()
        log_diag = self._diag_weight + self._weight - 0.5 * torch.log(norm_sq)
        return w.t(), log_diag.t()[self.mask_d.bool().t()].view(self.dim, self.in_features // self.dim,
                                                               self.out_features // self.dim)

    def forward(self, x: torch.Tensor, grad: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        w, log_diag = self.weights()
        g = log_diag.transpose(-2, -1).unsqueeze(0).repeat(x.shape[0], 1, 1, 1)
        if grad is not None:  # chain rule on the diagonal blocks, in log space
            g = torch.logsumexp(g.unsqueeze(-2) + grad.transpose(-2, -1).unsqueeze(-3), -1)
        return x @ w + self.bias, g


class Tanh(nn.Module):
    def forward(self, x: torch.Tensor, grad: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        g = -2 * (x - math.log(2) + nn.functional.softplus(-2 * x))  # log tanh'(x), stably
        return torch.tanh(x), (g.view(grad.shape) + grad) if grad is not None else g


class BNAFBlock(nn.Sequential):
    """One flow: MaskedWeight, (Tanh, MaskedWeight) x n, with an optional gated residual (all but the last)."""

    def __init__(self, *layers: nn.Module, gated: bool = False) -> None:
        super().__init__(*layers)
        self.gated = gated
        if gated:
            self.gate = nn.Parameter(nn.init.normal_(torch.empty(1)))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out, grad = x, None
        for layer in self:
            out, grad = layer(out, grad)
        if self.gated:
            a = self.gate.sigmoid()
            return a * out + (1 - a) * x, (nn.functional.softplus(grad.squeeze() + self.gate)
                                           - nn.functional.softplus(self.gate)).sum(-1)
        return out, grad.squeeze().sum(-1)


class Flip(nn.Module):
    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, float]:
        return x.flip(-1), 0.0


class Chain(nn.Sequential):
    """Flows one after another, their log-determinants summed."""

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        log_det = 0.0
        for flow in self:
            x, ld = flow(x)
            log_det = log_det + ld
        return x, log_det


class BNAF(nn.Module):
    """The authors' ``BNAFModel``: ``n_flows`` BNAF blocks separated by a flip of the dimensions."""

    def __init__(self, dim: int, n_flows: int = 1, n_layers: int = 0, hidden_dim: int = 10) -> None:
        super().__init__()
        flows: list[nn.Module] = []
        for f in range(n_flows):
            hidden = []
            for _ in range(n_layers - 1):
                hidden += [MaskedWeight(dim * hidden_dim, dim * hidden_dim, dim), Tanh()]
            flows.append(BNAFBlock(MaskedWeight(dim, dim * hidden_dim, dim), Tanh(), *hidden,
                                   MaskedWeight(dim * hidden_dim, dim, dim), gated=f < n_flows - 1))
            if f < n_flows - 1:
                flows.append(Flip())
        self.model = Chain(*flows)

    def log_probs(self, x: torch.Tensor) -> torch.Tensor:
        y, log_det = self.model(x)
        # the standard normal's log-density, term for term as torch.distributions.Normal computes it
        return (-(y ** 2) / 2 - math.log(math.sqrt(2 * math.pi))).sum(-1) + log_det


class PatchDensityEstimator(nn.Module):
    """One BNAF per feature layer (``flow_0`` ...), fitted to features sampled at random positions."""

    def __init__(self, channels: list[int], n_flows: int, n_layers: int, hidden_dim: int) -> None:
        super().__init__()
        for i, c in enumerate(channels):
            setattr(self, f"flow_{i}", BNAF(c, n_flows, n_layers, hidden_dim))
        self.n = len(channels)

    def forward(self, feats: list[torch.Tensor], num_patches: int, patch_ids: list[torch.Tensor] | None = None,
                detach: bool = False) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """Per layer, the log-density of each sampled patch (batch x patches, image-major) and the positions used."""
        log_probs, ids = [], []
        for i, feat in enumerate(feats):
            flat = feat.permute(0, 2, 3, 1).flatten(1, 2)
            pid = (torch.randperm(flat.shape[1])[:min(num_patches, flat.shape[1])].to(feat.device)
                   if patch_ids is None else patch_ids[i])
            x = flat[:, pid, :].flatten(0, 1)
            log_probs.append(getattr(self, f"flow_{i}").log_probs(x.detach() if detach else x))
            ids.append(pid)
        return log_probs, ids
