"""MUNIT (Huang et al., ECCV 2018): multimodal translation with content/style codes and an AdaIN decoder."""

from __future__ import annotations

from baselines.munit.model import MUNIT
from bench.translator import register_translator


@register_translator("munit", description="MUNIT: content + style codes, AdaIN decoder; test style from a seeded "
                                          "generator (one code for all images)")
def munit(preset: str = "quick", device: str = "cpu", **options) -> MUNIT:
    return MUNIT(preset, device, **options)


__all__ = ["MUNIT"]
