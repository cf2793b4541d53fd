"""CycleGAN-Turbo (Parmar et al., arXiv 2403.12036): the authors' one-step SD-Turbo translators, published for
BDD100K night -> day and rainy -> clear. Inference only; needs the ``diffusion`` extra and a local SD-Turbo."""

from __future__ import annotations

from baselines.cyclegan_turbo.model import BASE_WEIGHTS, PUBLISHED, CycleGANTurbo, CycleGANTurboConfig
from bench.translator import register_translator
from bench.weights import WEIGHTS

for _wf in (*(p.file for p in PUBLISHED.values()), *BASE_WEIGHTS):
    WEIGHTS.add(_wf.key, _wf, __name__)


@register_translator("cyclegan-turbo", learned=False,
                     description="CycleGAN-Turbo: one-step SD-Turbo with LoRA and VAE skips, the authors' published "
                                 "BDD100K models (night_to_day, rainy_to_clear); inference only")
def cyclegan_turbo(preset: str = "quick", device: str = "cpu", config: CycleGANTurboConfig | None = None
                   ) -> CycleGANTurbo:
    return CycleGANTurbo(preset, device, config)


__all__ = ["CycleGANTurbo", "CycleGANTurboConfig"]
