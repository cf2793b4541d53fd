"""UNIT (Liu et al., NeurIPS 2017): coupled VAE-GANs with a shared latent space, KL and cycle terms."""

from __future__ import annotations

from baselines.unit.model import UNIT
from bench.translator import register_translator


@register_translator("unit", description="UNIT: coupled VAE-GANs, shared latent space via cross-domain decoding, "
                                         "KL and cycle terms")
def unit(preset: str = "quick", device: str = "cpu", **options) -> UNIT:
    return UNIT(preset, device, **options)


__all__ = ["UNIT"]
