"""Zero-DCE (Guo et al., CVPR 2020): the low-light-enhancement representative of published night -> day tables."""

from __future__ import annotations

from baselines.zerodce.model import ZeroDCE
from bench.translator import register_translator


@register_translator("zero-dce", description="Zero-DCE: per-pixel light-enhancement curves, non-reference losses, "
                                             "trained on adverse images only")
def zero_dce(preset: str = "quick", device: str = "cpu", **options) -> ZeroDCE:
    return ZeroDCE(preset, device, **options)


__all__ = ["ZeroDCE"]
