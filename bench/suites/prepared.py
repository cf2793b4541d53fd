"""What every real-data suite shares: selected dataset files -> resized, cached PNGs -> SuiteFiles.

A suite decides which files form trainA/trainB/testA/testB (and which label map or boxes go with
each adverse test image); this module decodes each once (any mode PIL reads, to 8-bit RGB), resizes
it to the preset's size (bilinear; label maps nearest), and writes it under
``$AUGAN_BENCH_CACHE/suites/<suite>-<HxW>-<key>/``, keyed by the source files' paths, sizes and
modification times. Problems are counted and reported (``Skips``), never silent; an interrupted
preparation resumes, keeping the PNGs already written.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from bench.atomic import atomic_write_json
from bench.cache import cache_dir
from bench.data.io import ImageReadError, read_label, read_rgb, write_png
from bench.suites.base import Suite, SuiteFiles
from bench.suites.folder import SuiteDataError

LAYOUT_VERSION = 1
SPLITS = ("trainA", "trainB", "testA", "testB")
VAL_SPLITS = ("valA", "valB")  # held out of the training split (optional: a small dataset may have none)
# Per preset: images per training domain and adverse test images (None: all), validation images per domain held
# out of the training split before the training images are chosen (at most a tenth of it), and the size they are
# resized to (paper: 256x512, AU-GAN's and N2D3's resolution).
PRESETS = {
    "smoke": {"n_train": 24, "n_test": 12, "n_val": 6, "height": 64, "width": 128},
    "quick": {"n_train": 400, "n_test": 100, "n_val": 32, "height": 128, "width": 256},
    "paper": {"n_train": None, "n_test": None, "n_val": 200, "height": 256, "width": 512},
}


def preset_spec(preset: str, size: tuple[int, int] | None, presets: dict | None = None) -> dict:
    p = dict((presets or PRESETS)[preset])
    if size is not None:
        p["height"], p["width"] = size
    return p


def dataset_root(suite: str, data_root: Path | None, env_var: str, dataset: str, expected_tree: str) -> Path:
    """``--data-root``, else ``$env_var``; with neither, an error that shows where the data should be."""
    root = data_root or (Path(os.environ[env_var]) if os.environ.get(env_var) else None)
    if root is None:
        raise SuiteDataError(f"{suite} reads {dataset} from --data-root or ${env_var}. Expected layout:\n"
                             f"{expected_tree}")
    return Path(root).expanduser()


@dataclass(frozen=True)
class SourceImage:
    path: Path  # the dataset's own file
    name: str  # its PNG name in the prepared suite (unique within a split)
    label: Path | None = None  # semantic label map (Cityscapes train ids, 255 ignore) of an adverse test image
    boxes: tuple = ()  # (COCO category id, (x1, y1, x2, y2)) in source pixels
    twin: Path | None = None  # the matched normal-condition frame of an adverse test image (SIFT localisation)


@dataclass
class Skips:
    counts: Counter = field(default_factory=Counter)  # reason -> count
    examples: dict[str, str] = field(default_factory=dict)  # reason -> first file

    def add(self, reason: str, name: str, count: int = 1) -> None:
        self.counts[reason] += count
        self.examples.setdefault(reason, name)

    def notes(self) -> list[str]:
        return [f"skipped {n} file(s): {why} (e.g. {self.examples[why]})" for why, n in self.counts.items()]


def _stat(path: Path) -> list:
    st = path.stat()
    return [str(path), st.st_size, st.st_mtime_ns]


def prepare(suite: str, chosen: dict[str, list[SourceImage]], height: int, width: int, skips: Skips,
            box_categories: dict[int, str] | None = None) -> SuiteFiles:
    for split in SPLITS:
        if not chosen.get(split):
            raise SuiteDataError(f"{suite}: no usable {split} images ({'; '.join(skips.notes()) or 'none skipped'})")
    stats = {k: [[*_stat(s.path), s.name, *(_stat(s.label) if s.label else []), *(_stat(s.twin) if s.twin else [])]
                 for s in v] for k, v in chosen.items()}
    key = hashlib.sha256(json.dumps([suite, height, width, LAYOUT_VERSION, stats]).encode()).hexdigest()[:12]
    out = cache_dir("suites") / f"{suite}-{height}x{width}-{key}"
    done = out / "complete.json"
    if done.is_file():
        info = json.loads(done.read_text())
    else:
        info = _write(suite, chosen, out, height, width, skips, box_categories)
        atomic_write_json(done, info)
    files = {k: tuple(out / k / n for n in names) for k, names in info["files"].items()}
    labels = tuple(out / "testA_labels" / p.name for p in files["testA"]) if info["labels"] else None
    twins = tuple(out / "testA_twins" / p.name for p in files["testA"]) if info.get("twins") else None
    return SuiteFiles(root=out, train_a=files["trainA"], train_b=files["trainB"], test_a=files["testA"],
                      test_b=files["testB"], labels=labels, twins=twins, val_a=files.get("valA", ()),
                      val_b=files.get("valB", ()),
                      boxes=out / "testA_boxes.json" if info["boxes"] else None,
                      height=height, width=width, notes=tuple(info["notes"]))


def _write(suite: str, chosen: dict[str, list[SourceImage]], out: Path, h: int, w: int, skips: Skips,
           box_categories: dict[int, str] | None) -> dict:
    names: dict[str, list[str]] = {k: [] for k in (*SPLITS, *VAL_SPLITS) if k in chosen}
    boxes: dict[str, list] = {}
    with_labels = all(s.label is not None for s in chosen["testA"])
    with_twins = all(s.twin is not None for s in chosen["testA"])
    jobs = [(k, s) for k in names for s in chosen[k]]
    def read(reader, path: Path, what: str):
        """The decoded file, or None after counting it as skipped."""
        try:
            return reader(path)
        except ImageReadError as exc:
            skips.add(f"undecodable {what} ({str(exc).split(': ', 1)[-1]})", path.name)
            return None

    for split, s in tqdm(jobs, desc=f"preparing {suite}", unit="img", leave=False):
        img = read(read_rgb, s.path, "image")
        if img is None:
            continue
        h0, w0 = img.shape[:2]
        label = twin = None
        if split == "testA" and with_labels:
            label = read(read_label, s.label, "label map")
            if label is None:
                continue
            if label.shape != (h0, w0):
                skips.add(f"label map size {label.shape[1]}x{label.shape[0]} differs from its image's", s.label.name)
                continue
        if split == "testA" and with_twins:
            twin = read(read_rgb, s.twin, "matched day frame")
            if twin is None:
                continue
        if split == "testA" and any(x2 > w0 + 1 or y2 > h0 + 1 or x1 < -1 or y1 < -1
                                    for _, (x1, y1, x2, y2) in s.boxes):
            skips.add(f"boxes outside the image (labels made for another image size than {w0}x{h0})", s.path.name)
            continue
        target = out / split / s.name
        if not target.is_file():
            if label is not None:  # label and twin first: the image marks the set as done
                write_png(out / "testA_labels" / s.name,
                          np.array(Image.fromarray(label).resize((w, h), Image.NEAREST)))
            if twin is not None:
                write_png(out / "testA_twins" / s.name, np.array(Image.fromarray(twin).resize((w, h), Image.BILINEAR)))
            write_png(target, np.array(Image.fromarray(img).resize((w, h), Image.BILINEAR)))
        names[split].append(s.name)
        if split == "testA" and box_categories is not None:
            sx, sy = w / w0, h / h0
            boxes[s.name] = [(cid, (x1 * sx, y1 * sy, x2 * sx, y2 * sy)) for cid, (x1, y1, x2, y2) in s.boxes]
    for split in SPLITS:
        if not names[split]:
            raise SuiteDataError(f"{suite}: every {split} image was skipped: {'; '.join(skips.notes())}")
    if box_categories is not None:
        _write_coco(out / "testA_boxes.json", boxes, box_categories)
    return {"files": names, "notes": skips.notes(), "labels": with_labels, "twins": with_twins,
            "boxes": box_categories is not None}



def _write_coco(path: Path, boxes: dict[str, list], categories: dict[int, str]) -> None:
    images, annotations = [], []
    for img_id, (name, items) in enumerate(sorted(boxes.items()), start=1):
        images.append({"id": img_id, "file_name": name})
        for cid, (x1, y1, x2, y2) in items:
            bw, bh = max(x2 - x1, 0.0), max(y2 - y1, 0.0)
            annotations.append({"id": len(annotations) + 1, "image_id": img_id, "category_id": cid,
                                "bbox": [x1, y1, bw, bh], "area": bw * bh, "iscrowd": 0})
    atomic_write_json(path, {"images": images, "annotations": annotations,
                             "categories": [{"id": k, "name": v} for k, v in categories.items()]})


@dataclass(frozen=True)
class ListedSuite(Suite):
    """A real-data suite that lists its dataset's files per split (``sources``); preparing it takes the preset's
    share of each split and resizes it (ACDC, Dark Zurich, Alderley; BDD100K selects through its labels)."""

    def sources(self, data_root: Path | None) -> tuple[dict[str, list[SourceImage]], Skips]:
        raise NotImplementedError  # each dataset overrides this

    def choose(self, found: dict[str, list[SourceImage]], spec: dict) -> dict[str, list[SourceImage]]:
        """n_test images of each test split; n_val held out of each training split, then n_train of the rest."""
        return choose_splits(found, spec)

    def prepare(self, preset: str, data_root: Path | None = None, size: tuple[int, int] | None = None) -> SuiteFiles:
        found, skips = self.sources(data_root)
        spec = preset_spec(preset, size, self.presets)
        return prepare(self.name, self.choose(found, spec), spec["height"], spec["width"], skips)


def choose_splits(found: dict[str, list[SourceImage]], spec: dict) -> dict[str, list[SourceImage]]:
    """Each split's share: n_test of the test splits, and from each training split (trainA, trainB) first its
    validation images (valA, valB: ``hold_out``), then n_train of the rest."""
    # A validation split needs both domains (KID needs its reference set): a training split too small to give a
    # tenth gives none, and then neither domain holds any image out.
    n_val = spec.get("n_val", 0)
    if any(not hold_out(items, n_val)[0] for key, items in found.items() if key.startswith("train")):
        n_val = 0
    chosen = {}
    for key, items in found.items():
        if key.startswith("test"):
            chosen[key] = subset(items, spec["n_test"])
            continue
        val, rest = hold_out(items, n_val)
        chosen[key] = subset(rest, spec["n_train"])
        if val:
            chosen["val" + key[-1]] = val
    return chosen


def hold_out(items: list[SourceImage], n_val: int) -> tuple[list[SourceImage], list[SourceImage]]:
    """(validation, the rest): the ``n_val`` files (at most a tenth of ``items``) first in the order of a salted hash
    of their names, so the list is fixed by the dataset's file names alone, and unrelated to ``subset``'s order."""
    n = min(n_val, len(items) // 10)
    ranked = sorted(items, key=lambda s: hashlib.sha256(f"validation:{s.path.name}".encode()).hexdigest())
    val = {id(s) for s in ranked[:n]}
    return ranked[:n], [s for s in items if id(s) not in val]


def subset(items: list[SourceImage], n: int | None) -> list[SourceImage]:
    """A fixed pseudo-random subset: ordered by a hash of the file name, so independent of listing order."""
    ordered = sorted(items, key=lambda s: hashlib.sha256(s.path.name.encode()).hexdigest())
    return ordered if n is None else ordered[:n]
