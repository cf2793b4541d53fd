"""Santa (Xie et al., CVPR 2023): one generator that renders a latent anywhere on a path between the two domains,
trained so that the path from an image to its translation is short (path-length regularisation)."""

from __future__ import annotations

from baselines.santa.model import Santa
from bench.translator import register_translator

register_translator("santa", description="Santa: AdaIN generator with a domain-position code, shortest-path "
                                         "regularisation, reconstruction, identity and KL terms")(Santa)

__all__ = ["Santa"]
