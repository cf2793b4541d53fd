"""ToDayGAN (Anoosheh et al., ICRA 2019): night-to-day translation with per-domain encoders and decoders (ComboGAN)
and three discriminators per domain on the blurred colour image, its luminance and its gradients."""

from __future__ import annotations

from baselines.todaygan.model import ToDayGAN
from bench.translator import register_translator

register_translator("todaygan", description="ToDayGAN: per-domain encoder/decoder pairs, relativistic multi-scale "
                                            "discriminators on colour, luminance and gradients, cycle loss")(ToDayGAN)

__all__ = ["ToDayGAN"]
