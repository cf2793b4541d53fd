"""ForkGAN (Zheng et al., ECCV 2020): fork-shaped generators, domain-agnostic classifier, three discriminator families."""

from __future__ import annotations

from baselines.forkgan.model import ForkGAN
from bench.translator import register_translator


@register_translator("forkgan", description="ForkGAN: shared encoder, translation + reconstruction decoders, "
                                            "domain-agnostic classifier, multi-scale discriminators")
def forkgan(preset: str = "quick", device: str = "cpu", **options) -> ForkGAN:
    return ForkGAN(preset, device, **options)


__all__ = ["ForkGAN"]
