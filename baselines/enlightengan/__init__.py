"""EnlightenGAN (Jiang et al., IEEE TIP 2021): unpaired low-light enhancement with a self-regularised attention U-Net;
the authors' released generator, applied as their predict script does (no training here)."""

from __future__ import annotations

from baselines.enlightengan.model import PUBLISHED, EnlightenGAN
from bench.translator import register_translator
from bench.weights import WEIGHTS

WEIGHTS.add(PUBLISHED.key, PUBLISHED, __name__)


@register_translator("enlightengan", learned=False,
                     description="EnlightenGAN: the authors' released attention U-Net (low-light enhancement), "
                                 "no training")
def enlightengan(preset: str = "quick", device: str = "cpu", **options) -> EnlightenGAN:
    return EnlightenGAN(preset, device, **options)


__all__ = ["EnlightenGAN"]
