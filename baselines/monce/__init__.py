"""MoNCE (Zhan et al., CVPR 2022): CUT with the modulated contrastive loss, whose negatives are reweighted by an
optimal-transport plan between query and key patches."""

from __future__ import annotations

from baselines.monce.model import MoNCE
from bench.translator import register_translator


@register_translator("monce", description="MoNCE: CUT whose PatchNCE negatives are reweighted by a Sinkhorn "
                                          "optimal-transport plan (the authors' CUT_MoNCE variant)")
def monce(preset: str = "quick", device: str = "cpu", **options) -> MoNCE:
    return MoNCE(preset, device, **options)


__all__ = ["MoNCE"]
