"""CycleGAN (Zhu et al., ICCV 2017): ResNet-9-block generators, 70x70 PatchGAN, LSGAN, cycle + identity losses."""

from __future__ import annotations

from baselines.cyclegan.model import CycleGAN
from bench.translator import register_translator


@register_translator("cyclegan", description="CycleGAN: ResNet-9-block generators, PatchGAN, LSGAN, cycle + identity")
def cyclegan(preset: str = "quick", device: str = "cpu", **options) -> CycleGAN:
    return CycleGAN(preset, device, **options)


__all__ = ["CycleGAN"]
