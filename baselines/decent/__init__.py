"""DECENT (Xie, Ho and Zhang, NeurIPS 2022): CUT's generator trained so that every patch's density changes by the
same amount under translation (density-changing regularisation, with BNAF density estimators)."""

from __future__ import annotations

from baselines.decent.model import Decent
from bench.translator import register_translator

register_translator("decent", description="DECENT: CUT's generator, density-changing regularisation measured by "
                                          "BNAF patch density flows, identity L1")(Decent)

__all__ = ["Decent"]
