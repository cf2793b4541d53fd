"""BDD100K night and rain suites, read from the dataset as Berkeley DeepDrive ships it.

Layout (doc.bdd100k.com, "Understanding the Data"; labels in the Scalabel format, doc.bdd100k.com/format.html)::

    bdd100k/
      images/100k/{train,val,test}/<name>.jpg       1280x720 frames (the 10th second of each video)
      labels/bdd100k_labels_images_{train,val}.json the original labels, or
      labels/det_20/det_{train,val}.json            the 2020 detection labels (same frame format)

Each label file is a JSON list of frames: ``name`` (the image file name), ``attributes`` with
``weather`` (rainy|snowy|clear|overcast|partly cloudy|foggy|undefined) and ``timeofday``
(daytime|night|dawn/dusk|undefined), and ``labels``: objects with ``category`` and, for boxes,
``box2d`` {x1, y1, x2, y2} in pixels.

Splits, as ForkGAN and AU-GAN arrange BDD100K (../shared/papers.md): train on the train split,
test on the val split. ``bdd100k-night``: A = timeofday night, B = timeofday daytime.
``bdd100k-rain``: A = weather rainy in daytime, B = weather clear in daytime
(``bdd100k-rainy-night``: A = rainy at night, B = clear daytime). ``bdd100k-night-seg`` tests on the
images of the 10K segmentation set (``images/10k/val``, masks in ``labels/sem_seg/masks/val``: 8-bit
Cityscapes train ids, 255 ignore, doc.bdd100k.com/format.html) whose name the val labels list as
night: the set N2D3 scores mIoU on (its text counts 329 such images). The val-split B
images are the FID/KID reference set; the val-split A boxes score detection (with ``--detector``),
their 10 BDD classes mapped to COCO category ids (pedestrian and rider -> person; traffic sign has
no COCO class and is dropped).

The selected frames are decoded once, resized to the preset's size (paper: 256x512, AU-GAN's
resolution) and cached as PNGs under ``$AUGAN_BENCH_CACHE/suites/``; presets below ``paper`` take a
fixed pseudo-random subset (ordered by a hash of the file name, so it does not depend on file order).
Frames whose image is missing or undecodable, or whose boxes lie outside the image, are skipped,
counted and reported (in the run's manifest), never silently.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from bench.suites import prepared
from bench.suites.base import Suite, SuiteFiles
from bench.suites.folder import SuiteDataError

ENV_VAR = "AUGAN_BENCH_BDD100K"
EXPECTED_TREE = """bdd100k/                                  (--data-root or $AUGAN_BENCH_BDD100K)
  images/100k/train/*.jpg
  images/100k/val/*.jpg
  labels/bdd100k_labels_images_train.json    (or labels/det_20/det_train.json)
  labels/bdd100k_labels_images_val.json      (or labels/det_20/det_val.json)
  images/10k/val/*.jpg                       (bdd100k-night-seg only: "10K Images")
  labels/sem_seg/masks/val/*.png             (bdd100k-night-seg only: "Semantic Segmentation")
Download "100K Images" and "Labels" (or "Detection 2020 Labels") from https://bdd-data.berkeley.edu/"""

# BDD100K detection classes -> COCO category ids (the ids the suites' box files use everywhere).
COCO_IDS = {"pedestrian": 1, "person": 1, "rider": 1, "car": 3, "truck": 8, "bus": 6, "train": 7,
            "motorcycle": 4, "motor": 4, "bicycle": 2, "bike": 2, "traffic light": 10}
COCO_NAMES = {1: "person", 2: "bicycle", 3: "car", 4: "motorcycle", 6: "bus", 7: "train", 8: "truck",
              10: "traffic light"}

@dataclass(frozen=True)
class Frame:
    name: str
    timeofday: str
    weather: str
    boxes: tuple[tuple[int, tuple[float, float, float, float]], ...]  # (COCO id, x1 y1 x2 y2)


def _label_file(root: Path, split: str) -> Path:
    for candidate in (root / "labels" / "det_20" / f"det_{split}.json",
                      root / "labels" / f"bdd100k_labels_images_{split}.json"):
        if candidate.is_file():
            return candidate
    raise SuiteDataError(f"BDD100K: no {split} labels under {root / 'labels'} (looked for det_20/det_{split}.json "
                         f"and bdd100k_labels_images_{split}.json). Expected layout:\n{EXPECTED_TREE}")


def read_frames(path: Path) -> list[Frame]:
    """Parse a Scalabel-format label file; names that would leave the image folder are rejected."""
    try:
        data = json.loads(Path(path).read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise SuiteDataError(f"{path}: not valid JSON ({exc}); download the label file again") from None
    if isinstance(data, dict) and isinstance(data.get("frames"), list):  # Scalabel's {"frames": [...]} form
        data = data["frames"]
    if not isinstance(data, list):
        raise SuiteDataError(f"{path}: expected a JSON list of frames (Scalabel format), got {type(data).__name__}")
    frames = []
    for i, f in enumerate(data):
        if not isinstance(f, dict) or not isinstance(f.get("name"), str):
            raise SuiteDataError(f"{path}: frame #{i} has no 'name' string; is this a BDD100K label file?")
        name = f["name"]
        if "/" in name or "\\" in name or name in ("", ".", "..") or Path(name).is_absolute():
            raise SuiteDataError(f"{path}: frame #{i} names {name!r}, a path outside the image folder; rejected "
                                 "(BDD100K names are plain file names)")
        attrs = f.get("attributes") or {}
        boxes = []
        for lab in f.get("labels") or []:
            b = lab.get("box2d") if isinstance(lab, dict) else None
            cid = COCO_IDS.get(str(lab.get("category", "")).lower()) if isinstance(lab, dict) else None
            if b is None or cid is None:
                continue
            try:
                boxes.append((cid, (float(b["x1"]), float(b["y1"]), float(b["x2"]), float(b["y2"]))))
            except (KeyError, TypeError, ValueError):
                raise SuiteDataError(f"{path}: frame {name!r} has a box2d without numeric x1, y1, x2, y2") from None
        frames.append(Frame(name, str(attrs.get("timeofday", "undefined")), str(attrs.get("weather", "undefined")),
                            tuple(boxes)))
    return frames


@dataclass
class Scan:
    """What the labels select, per split, and what was skipped on the way."""

    selected: dict[str, list[Frame]] = field(default_factory=dict)  # trainA, trainB, testA, testB
    frames_read: dict[str, int] = field(default_factory=dict)
    skips: prepared.Skips = field(default_factory=prepared.Skips)


@dataclass(frozen=True)
class BDD100KSuite(Suite):
    adverse: dict = field(default_factory=dict)  # attribute -> accepted values
    normal: dict = field(default_factory=dict)
    segmentation: bool = False  # test on the 10K segmentation images (with their masks) instead of the 100K val

    def root(self, data_root: Path | None) -> Path:
        root = prepared.dataset_root(self.name, data_root, ENV_VAR, "BDD100K", EXPECTED_TREE)
        if not (root / "images").is_dir() and (root / "bdd100k" / "images").is_dir():
            root = root / "bdd100k"  # the folder the archives unpack into
        needed = [root / "images" / "100k"]
        if self.segmentation:
            needed += [root / "images" / "10k" / "val", root / "labels" / "sem_seg" / "masks" / "val"]
        for folder in needed:
            if not folder.is_dir():
                raise SuiteDataError(f"{self.name}: {folder} is missing. Expected layout:\n{EXPECTED_TREE}")
        return root

    def _accepts(self, rule: dict, f: Frame) -> bool:
        return all(getattr(f, attr) in values for attr, values in rule.items())

    def image_path(self, root: Path, key: str, f: Frame) -> Path:
        if self.segmentation and key == "testA":
            return root / "images" / "10k" / "val" / f.name
        return root / "images" / "100k" / ("val" if key.startswith("test") else "train") / f.name

    def mask_path(self, root: Path, f: Frame) -> Path:
        return root / "labels" / "sem_seg" / "masks" / "val" / (Path(f.name).stem + ".png")

    def scan(self, data_root: Path | None) -> tuple[Path, Scan]:
        """Read both label files and select frames; images are only checked for presence here."""
        root = self.root(data_root)
        scan = Scan()
        for split, (a, b) in (("train", ("trainA", "trainB")), ("val", ("testA", "testB"))):
            frames = read_frames(_label_file(root, split))
            scan.frames_read[split] = len(frames)
            for key, rule in ((a, self.adverse), (b, self.normal)):
                picked = []
                for f in frames:
                    if not self._accepts(rule, f):
                        continue
                    if self.segmentation and key == "testA":
                        # only the night frames that are also in the 10K segmentation set; each needs its mask
                        if not self.image_path(root, key, f).is_file():
                            continue
                        if not self.mask_path(root, f).is_file():
                            scan.skips.add("10K val image without its mask in labels/sem_seg/masks/val/", f.name)
                            continue
                    elif not self.image_path(root, key, f).is_file():
                        scan.skips.add(f"label names an image that is not in images/100k/{split}/", f.name)
                        continue
                    picked.append(f)
                scan.selected[key] = picked
        return root, scan

    def prepare(self, preset: str, data_root: Path | None = None, size: tuple[int, int] | None = None) -> SuiteFiles:
        root, scan = self.scan(data_root)
        p = prepared.preset_spec(preset, size)
        for key, frames in scan.selected.items():
            if not frames:
                split = "val" if key.startswith("test") else "train"
                raise SuiteDataError(f"{self.name}: no usable {key} images ({self._describe(key)}) in the {split} split "
                                     f"of {root} ({scan.frames_read[split]} frames read; "
                                     f"{'; '.join(scan.skips.notes()) or 'none skipped'})")
        found = {}
        for key, frames in scan.selected.items():
            seg = self.segmentation and key == "testA"
            found[key] = [prepared.SourceImage(self.image_path(root, key, f), Path(f.name).stem + ".png",
                                               boxes=f.boxes if key == "testA" and not seg else (),
                                               label=self.mask_path(root, f) if seg else None) for f in frames]
        chosen = prepared.choose_splits(found, p)
        return prepared.prepare(self.name, chosen, p["height"], p["width"], scan.skips,
                                box_categories=None if self.segmentation else COCO_NAMES)

    def _describe(self, key: str) -> str:
        rule = self.adverse if key.endswith("A") else self.normal
        return ", ".join(f"{k} {'/'.join(sorted(v))}" for k, v in rule.items())


_METRICS = ("fid", "kid", "fd-dinov2", "fid-clean", "kid-clean", "map", "ap50", "hallucinated", "hallucination-share", "removed")
_DEFAULT_METHODS = ("identity", "gamma", "clahe", "histmatch")


SUITES = (
    BDD100KSuite(name="bdd100k-night", description="BDD100K night -> daytime (train: train split, test: val night)",
                 condition="night", metrics=_METRICS, default_methods=_DEFAULT_METHODS, needs_data_root=True,
                 presets=prepared.PRESETS, adverse={"timeofday": {"night"}}, normal={"timeofday": {"daytime"}}),
    BDD100KSuite(name="bdd100k-night-seg", description="BDD100K night -> daytime, tested on the 10K segmentation "
                 "images whose labels say night (mIoU)", condition="night",
                 metrics=("fid", "kid", "fd-dinov2", "fid-clean", "kid-clean", "miou"), default_methods=_DEFAULT_METHODS, needs_data_root=True,
                 presets=prepared.PRESETS, adverse={"timeofday": {"night"}}, normal={"timeofday": {"daytime"}},
                 segmentation=True),
    BDD100KSuite(name="bdd100k-rain", description="BDD100K rainy -> clear, both in daytime (val split for testing)",
                 condition="rain", metrics=_METRICS, default_methods=_DEFAULT_METHODS, needs_data_root=True,
                 presets=prepared.PRESETS, adverse={"weather": {"rainy"}, "timeofday": {"daytime"}},
                 normal={"weather": {"clear"}, "timeofday": {"daytime"}}),
    BDD100KSuite(name="bdd100k-rainy-night", description="BDD100K rainy night -> clear daytime (val split for testing)",
                 condition="rain", metrics=_METRICS, default_methods=_DEFAULT_METHODS, needs_data_root=True,
                 presets=prepared.PRESETS, adverse={"weather": {"rainy"}, "timeofday": {"night"}},
                 normal={"weather": {"clear"}, "timeofday": {"daytime"}}),
)
