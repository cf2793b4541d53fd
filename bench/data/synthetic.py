"""Deterministic synthetic samples: one scene, rendered under day and an adverse condition.

A sample is a pure function of (condition, split, index, seed, size): the scene, its
textures and every noise draw come from a seed derived from those values by hashing, so two
machines render the same bytes and a test can re-render any single image.
Training splits are unpaired: the adverse (A) and day (B) training images come from
disjoint scene streams, as in real unpaired data.
"""

from __future__ import annotations

import hashlib
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
from tqdm import tqdm

from bench.data.conditions import render_condition
from bench.data.io import write_png
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


@dataclass(frozen=True)
class RenderJob:
    """One sample to render into files: ``adverse``/``day``/``label`` paths (None: not wanted)."""

    condition: str
    stream: str
    index: int
    seed: int
    height: int
    width: int
    adverse: Path | None = None
    day: Path | None = None
    label: Path | None = None


def run_job(job: RenderJob) -> list[dict]:
    """Render ``job``'s missing files (a resumed job skips those on disk) and return the sample's boxes.

    The boxes come from the scene alone, so a job whose files all exist only rasterizes.
    """
    missing = {k: p for k, p in (("adverse", job.adverse), ("day", job.day), ("label", job.label))
               if p is not None and not p.is_file()}
    s = render_sample(job.condition, job.stream, job.index, job.seed, job.height, job.width,
                      want_adverse="adverse" in missing, want_day="day" in missing)
    for kind, path in missing.items():
        write_png(path, getattr(s, kind))
    return s.boxes


def run_jobs(jobs: Sequence[RenderJob], desc: str) -> list[list[dict]]:
    """Every job's boxes, in order, rendered in one thread per available core.

    Each sample is a pure function of its job, so the files are the same bytes however they are split.
    Threads, not processes: numpy's array loops, OpenCV and PNG encoding release the GIL, and a forked
    worker of a parent that has run torch's or OpenCV's thread pools can deadlock (seen in the tests).
    """
    progress = dict(total=len(jobs), desc=desc, unit="img", leave=False)
    with ThreadPoolExecutor(min(len(os.sched_getaffinity(0)), 8)) as pool:
        return list(tqdm(pool.map(run_job, jobs), **progress))
