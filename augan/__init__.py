"""AU-GAN (Kwak et al., BMVC 2021, arXiv 2112.04283) in PyTorch, and its ablations as methods.

Written from the paper and the official TensorFlow code (github.com/jgkwak95/AU-GAN); see
``docs/augan.md`` for where the two differ and which behaviour is the default.
"""

from __future__ import annotations

from augan.config import ABLATIONS
from augan.model import AUGAN
from bench.translator import register_translator

_DESCRIPTIONS = {
    "augan": "AU-GAN: asymmetric generators with T-net, feature matching, uncertainty-aware cycle loss",
    "augan-no-tnet": "AU-GAN ablation without the T-net",
    "augan-no-afm": "AU-GAN ablation without asymmetric feature matching",
    "augan-no-uncertainty": "AU-GAN ablation with a plain L1 cycle loss for A -> B -> A",
}


def _register(variant: str) -> None:
    def factory(preset: str = "quick", device: str = "cpu", **options) -> AUGAN:
        return AUGAN(preset, device, variant=variant, **options)

    factory.__name__ = factory.__qualname__ = variant.replace("-", "_")
    register_translator(variant, description=_DESCRIPTIONS[variant])(factory)


for _variant in ABLATIONS:
    _register(_variant)

__all__ = ["AUGAN"]
