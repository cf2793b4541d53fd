"""The embedded suites: procedural driving scenes under night, rainy night and fog.

A suite is rendered once per (condition, preset, size, seed, renderer version) into the cache
folder, in the CycleGAN/ForkGAN layout plus labels, so every later run (and every method)
reads the same PNG files. Rendering resumes file by file if it is interrupted.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, replace
from pathlib import Path

from bench.atomic import atomic_write_json
from bench.cache import cache_dir
from bench.data.scene import BOX_CATEGORIES, CLASS_NAMES
from bench.data.synthetic import RENDERER_VERSION, RenderJob, run_jobs
from bench.suites.base import Suite, SuiteFiles

SYNTHETIC_PRESETS: dict[str, dict] = {
    # n_train images per domain, n_test adverse test images (each with its day twin), n_val validation images (each
    # with its day twin and label map: curves and checkpoint selection during training)
    "smoke": {"n_train": 24, "n_test": 12, "n_val": 8, "height": 64, "width": 128},
    "quick": {"n_train": 400, "n_test": 100, "n_val": 50, "height": 128, "width": 256},
    "paper": {"n_train": 2000, "n_test": 500, "n_val": 200, "height": 128, "width": 256},
}
DATA_SEED = 0  # the suite's content is fixed; method seeds vary training, not the data
LAYOUT_VERSION = 3  # 2: trainB_labels/ (day training labels for the downstream segmenter); 3: trainB_boxes.json


@dataclass(frozen=True)
class SyntheticSuite(Suite):
    def spec(self, preset: str, size: tuple[int, int] | None) -> dict:
        p = dict(self.presets[preset])
        if size is not None:
            p["height"], p["width"] = size
        return p

    def prepare(self, preset: str, data_root: Path | None = None, size: tuple[int, int] | None = None) -> SuiteFiles:
        p = self.spec(preset, size)
        return materialize(self.condition, p["n_train"], p["n_test"], p["height"], p["width"], DATA_SEED,
                           n_val=p["n_val"])


def materialize(condition: str, n_train: int, n_test: int, height: int, width: int, seed: int,
                root: Path | None = None, n_val: int = 0) -> SuiteFiles:
    """Render (or reuse) a synthetic suite as PNG files; returns its file lists.

    The validation split is rendered from a scene stream of its own ('val'), so it shares no scene with training or
    test; it lives in ``val/`` under its own completion mark, so a suite rendered before it had one is reused and
    only its validation images are added."""
    key = json.dumps([condition, n_train, n_test, height, width, seed, RENDERER_VERSION, LAYOUT_VERSION])
    if root is None:
        digest = hashlib.sha256(key.encode()).hexdigest()[:12]
        root = cache_dir("suites") / f"synthetic-{condition}-{height}x{width}-{n_train}-{n_test}-{digest}"
    files = _layout(root, n_train, n_test, height, width, day_training_recipe(n_train, height, width, seed))
    files = _with_validation(files, condition, n_val, seed)
    done = root / "complete.json"
    if done.is_file():
        return files
    job = lambda stream, i, **out: RenderJob(condition, stream, i, seed, height, width, **out)  # noqa: E731
    train_b = [job("trainB", i, day=d, label=lab) for i, (d, lab) in enumerate(zip(files.train_b, files.train_b_labels))]
    test = [job("test", i, adverse=a, day=d, label=lab)
            for i, (a, d, lab) in enumerate(zip(files.test_a, files.twins, files.labels))]
    jobs = [job("trainA", i, adverse=a) for i, a in enumerate(files.train_a)] + train_b + test
    boxes = dict(zip(jobs, run_jobs(jobs, f"rendering synthetic-{condition}")))
    _write_boxes(root / "testA_boxes.json", {j.adverse.name: boxes[j] for j in test})
    _write_boxes(root / "trainB_boxes.json", {j.day.name: boxes[j] for j in train_b})
    atomic_write_json(done, {"condition": condition, "n_train": n_train, "n_test": n_test, "height": height,
                             "width": width, "seed": seed, "renderer_version": RENDERER_VERSION})
    return files


def _with_validation(files: SuiteFiles, condition: str, n_val: int, seed: int) -> SuiteFiles:
    """``files`` with its ``n_val`` validation images (adverse, day twin, label map), rendered if missing."""
    if n_val <= 0:
        return files
    folder = files.root / "val"
    names = [f"{i:05d}.png" for i in range(n_val)]
    files = replace(files, val_a=tuple(folder / "valA" / n for n in names),
                    val_b=tuple(folder / "valB" / n for n in names),
                    val_labels=tuple(folder / "valA_labels" / n for n in names))
    done = folder / f"complete-{n_val}.json"
    if not done.is_file():
        jobs = [RenderJob(condition, "val", i, seed, files.height, files.width, adverse=a, day=d, label=lab)
                for i, (a, d, lab) in enumerate(zip(files.val_a, files.val_b, files.val_labels))]
        run_jobs(jobs, f"rendering synthetic-{condition} validation")
        atomic_write_json(done, {"condition": condition, "n_val": n_val, "seed": seed,
                                 "renderer_version": RENDERER_VERSION})
    return files


def day_training_recipe(n_train: int, height: int, width: int, seed: int) -> str:
    """What the day training split is a function of. Not the condition: day images are rendered from the scene alone,
    so the three suites share their day training images (and one shipped segmenter and detector per preset)."""
    return json.dumps(["trainB", n_train, height, width, seed, RENDERER_VERSION, LAYOUT_VERSION])


def _layout(root: Path, n_train: int, n_test: int, height: int, width: int, recipe: str) -> SuiteFiles:
    names = lambda n: tuple(f"{i:05d}.png" for i in range(n))  # noqa: E731
    return SuiteFiles(
        root=root,
        train_a=tuple(root / "trainA" / n for n in names(n_train)),
        train_b=tuple(root / "trainB" / n for n in names(n_train)),
        train_b_labels=tuple(root / "trainB_labels" / n for n in names(n_train)),
        test_a=tuple(root / "testA" / n for n in names(n_test)),
        # The day twins double as the target-domain reference set: same scenes, same count.
        test_b=tuple(root / "testB" / n for n in names(n_test)),
        twins=tuple(root / "testB" / n for n in names(n_test)),
        labels=tuple(root / "testA_labels" / n for n in names(n_test)),
        boxes=root / "testA_boxes.json",
        train_b_boxes=root / "trainB_boxes.json",
        height=height,
        width=width,
        train_b_recipe=recipe,
    )


def _write_boxes(path: Path, boxes: dict[str, list]) -> None:
    """COCO-format detection ground truth of the test split."""
    images, annotations = [], []
    for img_id, (name, items) in enumerate(sorted(boxes.items()), start=1):
        images.append({"id": img_id, "file_name": name})
        for b in items:
            annotations.append({"id": len(annotations) + 1, "image_id": img_id, "category_id": b["category_id"],
                                "bbox": b["bbox"], "area": b["area"], "iscrowd": 0, "depth": b["depth"]})
    atomic_write_json(path, {
        "images": images,
        "annotations": annotations,
        "categories": [{"id": k, "name": v} for k, v in BOX_CATEGORIES.items()],
        "semantic_classes": {str(k): v for k, v in CLASS_NAMES.items()},
    })


_CLASSICAL = ("identity", "gamma", "clahe", "histmatch")
_METRICS = ("fid", "kid", "fd-dinov2", "fid-clean", "kid-clean", "lpips", "psnr", "ssim", "sift", "miou", "map", "ap50", "hallucinated", "hallucination-share", "removed",
            "fd-synthseg")

SUITES = [
    SyntheticSuite(
        name="synthetic-night",
        description="procedural driving scenes, night (street lamps, headlights, sensor noise) -> day; pixel-aligned twins",
        condition="night",
        metrics=_METRICS,
        default_methods=_CLASSICAL,
        presets=SYNTHETIC_PRESETS,
    ),
    SyntheticSuite(
        name="synthetic-rain",
        description="procedural driving scenes, rainy night (streaks, wet-road reflections, droplets) -> day",
        condition="rain",
        metrics=_METRICS,
        default_methods=_CLASSICAL,
        presets=SYNTHETIC_PRESETS,
    ),
    SyntheticSuite(
        name="synthetic-fog",
        description="procedural driving scenes, depth-dependent fog (Koschmieder, visibility 33-86 m) -> clear day",
        condition="fog",
        metrics=_METRICS,
        default_methods=_CLASSICAL,
        presets=SYNTHETIC_PRESETS,
    ),
]
