"""UNSB (Kim et al., ICLR 2024): unpaired translation as a neural Schrödinger bridge, a multi-step generator trained
with adversarial, entropy (MINE) and PatchNCE terms."""

from __future__ import annotations

from baselines.unsb.model import UNSB, UNSBConfig
from bench.translator import register_translator


@register_translator("unsb", description="UNSB: a 5-step Schrödinger bridge on CUT's generator, adversarial + "
                                         "entropy + PatchNCE; nfe chain steps at test time")
def unsb(preset: str = "quick", device: str = "cpu", **options) -> UNSB:
    return UNSB(preset, device, **options)


__all__ = ["UNSB", "UNSBConfig"]
