"""U-GAT-IT (Kim, Kim, Kang and Lee, ICLR 2020): CycleGAN-style translation with class-activation-map attention in
the generators and discriminators and AdaLIN normalisation in the decoder."""

from __future__ import annotations

from baselines.ugatit.model import UGATIT
from bench.translator import register_translator

register_translator("ugatit", description="U-GAT-IT: CAM attention in generators and global/local discriminators, "
                                          "AdaLIN decoder, cycle, identity and CAM losses")(UGATIT)

__all__ = ["UGATIT"]
