"""fd-dinov2: the Fréchet distance in DINOv2 ViT-L/14 feature space.

Stein et al. (NeurIPS 2023, dgm-eval) found Inception features a poor judge of image realism and
recommend DINOv2's instead. We compute it exactly as torch-fidelity >= 0.4 does with
``--feature-extractor dinov2-vit-l-14`` (so users can cross-check with the ``fidelity`` CLI): the
official ``dinov2_vitl14`` backbone (torch hub file ``dinov2_vitl14_pretrain.pth``), uint8 images
resized to 224 x 224 by torch-fidelity's TF1-compatible bilinear resize, ImageNet mean/std
normalisation, the final-LayerNorm CLS token (1024-d) as the feature, and the FID formula.
(dgm-eval resizes with torchvision's antialiased bicubic instead; numbers differ slightly.)

The ViT is written here, not fetched through torch hub (which imports code from GitHub at run
time); it loads the official state dict and reproduces the official forward pass, including the
position-embedding interpolation with its 0.1 offset. Its sizes (width, depth) are read off the
state dict; heads are 64 channels wide in every DINOv2 model.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from bench.weights import DINOV2_VITL14, ResolvedWeights, resolve

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
INPUT_SIZE = 224
HEAD_DIM = 64


class _Attention(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.heads = dim // HEAD_DIM
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        q, k, v = self.qkv(x).reshape(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        return self.proj(F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(b, n, d))


class _Mlp(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, 4 * dim)
        self.fc2 = nn.Linear(4 * dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.gelu(self.fc1(x)))


class _LayerScale(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.gamma = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gamma


class _Block(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = _Attention(dim)
        self.ls1 = _LayerScale(dim)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = _Mlp(dim)
        self.ls2 = _LayerScale(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.ls1(self.attn(self.norm1(x)))
        return x + self.ls2(self.mlp(self.norm2(x)))


class DinoV2(nn.Module):
    """The DINOv2 ViT (no registers, MLP feed-forward: S/14, B/14, L/14) in the official key layout."""

    def __init__(self, dim: int = 1024, depth: int = 24, patch: int = 14, grid: int = 37) -> None:
        super().__init__()
        self.patch = patch
        self.patch_embed = nn.Module()
        self.patch_embed.proj = nn.Conv2d(3, dim, patch, patch)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, 1 + grid * grid, dim))
        self.mask_token = nn.Parameter(torch.zeros(1, dim))  # used in training only; kept for the key layout
        self.blocks = nn.ModuleList(_Block(dim) for _ in range(depth))
        self.norm = nn.LayerNorm(dim, eps=1e-6)

    @classmethod
    def from_state_dict(cls, state: dict[str, torch.Tensor]) -> "DinoV2":
        dim = state["cls_token"].shape[-1]
        depth = len({k.split(".")[1] for k in state if k.startswith("blocks.")})
        patch = state["patch_embed.proj.weight"].shape[-1]
        grid = math.isqrt(state["pos_embed"].shape[1] - 1)
        model = cls(dim, depth, patch, grid)
        model.load_state_dict(state)
        return model.eval()

    def _pos_embed(self, h_patches: int, w_patches: int) -> torch.Tensor:
        n = self.pos_embed.shape[1] - 1
        if h_patches * w_patches == n and h_patches == w_patches:
            return self.pos_embed
        m = math.isqrt(n)
        grid = self.pos_embed[:, 1:].reshape(1, m, m, -1).permute(0, 3, 1, 2).float()
        # The official model asks for a scale factor of (patches + 0.1) / m, so the output size is
        # exactly `patches` while the sampling positions differ slightly from size=(patches, patches).
        grid = F.interpolate(grid, scale_factor=((h_patches + 0.1) / m, (w_patches + 0.1) / m), mode="bicubic",
                             align_corners=False)
        grid = grid.to(self.pos_embed.dtype).permute(0, 2, 3, 1).reshape(1, -1, self.pos_embed.shape[-1])
        return torch.cat([self.pos_embed[:, :1], grid], dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Final-LayerNorm CLS token of images normalised with ImageNet statistics."""
        b, _, h, w = x.shape
        tokens = self.patch_embed.proj(x).flatten(2).transpose(1, 2)
        tokens = torch.cat([self.cls_token.expand(b, -1, -1), tokens], dim=1)
        tokens = tokens + self._pos_embed(h // self.patch, w // self.patch)
        for block in self.blocks:
            tokens = block(tokens)
        return self.norm(tokens)[:, 0]


class DinoV2Extractor:
    """uint8 image batches -> DINOv2 CLS features, in the dgm-eval protocol (module docstring)."""

    def __init__(self, weights: ResolvedWeights | None = None, device: str = "cpu") -> None:
        # Never downloaded implicitly (1.2 GB): fd-dinov2 is computed when the file is present.
        self.weights = weights or resolve(DINOV2_VITL14, download=False)
        self.model = DinoV2.from_state_dict(self.weights.load_state_dict())
        self.device = torch.device(device)
        self.model.to(self.device)
        self.id = f"{self.weights.spec.key}:{self.weights.sha256[:16]}:cls@{INPUT_SIZE}"

    @torch.no_grad()
    def __call__(self, batch_uint8: torch.Tensor) -> torch.Tensor:
        from torch_fidelity.interpolate_compat_tensorflow import interpolate_bilinear_2d_like_tensorflow1x

        x = batch_uint8.to(self.device).float()  # 0..255, as torch-fidelity feeds it
        x = interpolate_bilinear_2d_like_tensorflow1x(x, size=(INPUT_SIZE, INPUT_SIZE), align_corners=False)
        mean = 255 * torch.tensor(IMAGENET_MEAN, device=self.device).view(1, 3, 1, 1)
        std = 255 * torch.tensor(IMAGENET_STD, device=self.device).view(1, 3, 1, 1)
        return self.model((x - mean) / std).cpu()
