"""Deterministic synthetic samples: one scene, rendered under day and an adverse condition.

A sample is a pure function of (condition, split, index, seed, size): the scene, its
textures and every noise draw come from a seed derived from those values by hashing, so two
machines render the same bytes and a test can re-render any single image.
Training splits are unpaired: the adverse (A) and day (B) training images come from
disjoint scene streams, as in real unpaired data.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

from bench.data.conditions import render_condition
from bench.data.raster import rasterize
from bench.data.scene import Scene, sample_scene

RENDERER_VERSION = "1"  # bump when the pictures change, so cached suites are re-rendered


def stable_seed(*parts: object) -> int:
    """A 63-bit seed from the parts' text (Python's hash() is salted per process, so it cannot be used)."""
    digest = hashlib.sha256("/".join(str(p) for p in parts).encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


@dataclass
class SyntheticSample:
    adverse: np.ndarray | None  # H x W x 3 uint8
    day: np.ndarray | None  # H x W x 3 uint8, pixel-aligned twin
    label: np.ndarray  # H x W uint8, Cityscapes train ids
    boxes: list[dict]
    scene: Scene


def _to_uint8(img: np.ndarray) -> np.ndarray:
    # Round, never truncate (clean-fid's finding): truncation shifts every image by half a level.
    return np.clip(np.round(img * 255.0), 0, 255).astype(np.uint8)


def render_sample(
    condition: str,
    stream: str,
    index: int,
    seed: int,
    height: int,
    width: int,
    want_adverse: bool = True,
    want_day: bool = True,
) -> SyntheticSample:
    """Render scene ``index`` of ``stream`` ('trainA', 'trainB', 'test') under day and ``condition``."""
    scene_rng = np.random.default_rng(stable_seed("scene", stream, index, seed, RENDERER_VERSION))
    scene = sample_scene(scene_rng)
    layers = rasterize(scene, height, width)
    adverse = day = None
    if want_adverse:
        rng = np.random.default_rng(stable_seed(condition, stream, index, seed, RENDERER_VERSION))
        adverse = _to_uint8(render_condition(scene, layers, condition, rng))
    if want_day:
        rng = np.random.default_rng(stable_seed("day", stream, index, seed, RENDERER_VERSION))
        day = _to_uint8(render_condition(scene, layers, "day", rng))
    return SyntheticSample(adverse=adverse, day=day, label=layers.label.copy(), boxes=layers.boxes(), scene=scene)
