"""CUT and FastCUT (Park et al., ECCV 2020): one-sided translation with a patchwise contrastive (PatchNCE) loss."""

from __future__ import annotations

from baselines.cut_codebase.model import CUT
from bench.translator import register_translator

_DESCRIPTIONS = {
    "cut": "CUT: one-sided GAN with PatchNCE on 5 encoder layers and the identity NCE term",
    "fastcut": "FastCUT: CUT without the identity term, lambda_NCE 10, flip equivariance",
}


def _register(variant: str) -> None:
    def factory(preset: str = "quick", device: str = "cpu", **options) -> CUT:
        return CUT(preset, device, variant=variant, **options)

    factory.__name__ = factory.__qualname__ = variant
    register_translator(variant, description=_DESCRIPTIONS[variant])(factory)


for _variant in _DESCRIPTIONS:
    _register(_variant)

__all__ = ["CUT"]
