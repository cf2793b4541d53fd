"""``bench data check``: what a suite's data holds, what is wrong with it, and which metrics it allows.

Every selected image is decoded (that is how a truncated JPEG is found), so on the full BDD100K
this reads ~100k files; the report counts problems instead of stopping at the first.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from tqdm import tqdm

from bench.metrics import METRICS
from bench.suites import get_suite
from bench.data.io import (
    PIXEL_LIMIT_ENV,
    ImageReadError,
    ImageTooLarge,
    links_leaving,
    list_images,
    output_name_clashes,
    pixel_limit,
    read_label,
    read_rgb,
    same_aspect,
)
from bench.suites.bdd100k import BDD100KSuite
from bench.suites.folder import FolderSuite
from bench.suites.prepared import ListedSuite
from bench.suites.synthetic import SyntheticSuite


TINY_SIDE = 16
SHOWN = 5  # files named per problem class


def _count(problems: list[str], what: str, items: list) -> None:
    """One line per problem class: its count and the first few files."""
    if items:
        more = f", ... ({len(items) - SHOWN} more)" if len(items) > SHOWN else ""
        problems.append(f"  {len(items)} {what}: {', '.join(map(str, items[:SHOWN]))}{more}")


def _labels_of(suite, root: Path, groups: dict, data_root: Path | None, problems: list[str]) -> dict[Path, Path]:
    """Test image -> its label map, where the suite has labels (a missing one is a problem)."""
    if isinstance(suite, FolderSuite):
        folder = root / "testA_labels"
        if not folder.is_dir():
            return {}
        pairs = {p: folder / (p.stem + ".png") for p in groups.get("testA", [])}
        _count(problems, "testA image(s) without a label in testA_labels/", [p.name for p, lab in pairs.items()
                                                                             if not lab.is_file()])
        return {p: lab for p, lab in pairs.items() if lab.is_file()}
    if isinstance(suite, ListedSuite):
        found, _ = suite.sources(data_root)
        return {s.path: s.label for s in found.get("testA", []) if s.label is not None}
    return {}


def _check_labels(labels: dict[Path, Path], size_of: dict[Path, tuple[int, int]], problems: list[str]) -> None:
    invalid, misfit = [], []
    for image, label in tqdm(labels.items(), desc="label maps", unit="map", leave=False):
        try:
            lab = read_label(label)
        except ImageReadError as exc:
            invalid.append(f"{label.name} ({str(exc).split(': ', 1)[-1][:240]})")
            continue
        if image in size_of and not same_aspect(size_of[image], lab.shape):
            (h, w), (lh, lw) = size_of[image], lab.shape
            misfit.append(f"{label.name} ({lw}x{lh} for a {w}x{h} image)")
    _count(problems, "label map(s) that are not single-channel Cityscapes train ids", invalid)
    _count(problems, "label map(s) of another aspect ratio than their image", misfit)


def check_suite(name: str, data_root: Path | None) -> list[str]:
    """The report's lines."""
    suite = get_suite(name)
    if isinstance(suite, SyntheticSuite):
        return [f"{suite.name}: embedded synthetic suite, rendered on first use into the cache; nothing to check.",
                f"metrics it can compute: {', '.join(suite.metrics)}", "problems: none found"]
    if isinstance(suite, BDD100KSuite):
        root, scan = suite.scan(data_root)
        lines = [f"{suite.name}: {root}",
                 *(f"  labels, {split}: {n} frames" for split, n in scan.frames_read.items())]
        groups = {k: [suite.image_path(root, k, f) for f in frames] for k, frames in scan.selected.items()}
        n_boxes = sum(len(f.boxes) for f in scan.selected.get("testA", []))
        problems = ["  " + note for note in scan.skips.notes()]
    elif isinstance(suite, ListedSuite):
        found, skips = suite.sources(data_root)
        root = data_root or Path(".")
        lines = [f"{suite.name}: {data_root or '(from the environment)'}"]
        groups = {k: [s.path for s in v] for k, v in found.items()}
        n_boxes = 0
        problems = ["  " + note for note in skips.notes()]
    elif isinstance(suite, FolderSuite):
        root = suite.path
        lines = [f"{suite.name}: {root}"]
        groups, problems, n_boxes = {}, [], 0
        for sub in ("trainA", "trainB", "testA", "testB"):
            d = root / sub
            if not d.is_dir():
                problems.append(f"  {d} is missing")
                continue
            groups[sub] = list_images(d)
            dangling = [p for p in sorted(d.iterdir()) if p.is_symlink() and not p.exists()]
            _count(problems, f"dangling symbolic link(s) in {sub} (skipped by every command)", dangling)
        val = [sub for sub in ("valA", "valB") if (root / sub).is_dir()]  # optional: validation during training
        groups.update({sub: list_images(root / sub) for sub in val})
        if len(val) == 1:
            problems.append(f"  {root / val[0]} is there without {'valB' if val == ['valA'] else 'valA'}/: a "
                            "validation split needs both (or neither)")
    else:
        raise ValueError(f"bench data check does not know suite {name!r}")
    labels = _labels_of(suite, root, groups, data_root, problems)
    sizes: Counter = Counter()
    size_of: dict[Path, tuple[int, int]] = {}
    for key, paths in groups.items():
        bad, tiny, large = [], [], []
        for p in tqdm(paths, desc=f"decoding {key}", unit="img", leave=False):
            try:
                img = read_rgb(p)
            except ImageTooLarge as exc:
                large.append(f"{p.name} ({str(exc).split(': the header declares ', 1)[-1].split(', more than')[0]})")
                continue
            except ImageReadError as exc:
                bad.append(f"{p.name} ({str(exc).split(': ', 1)[-1]})")
                continue
            sizes[f"{img.shape[1]}x{img.shape[0]}"] += 1
            size_of[Path(p)] = img.shape[:2]
            if min(img.shape[:2]) < TINY_SIDE:
                tiny.append(f"{p.name} ({img.shape[1]}x{img.shape[0]})")
        unusable = len(bad) + len(large)
        lines.append(f"  {key}: {len(paths) - unusable} usable image(s)" + (f", {len(bad)} undecodable" if bad else "")
                     + (f", {len(large)} over the pixel limit" if large else ""))
        _count(problems, f"undecodable {key} image(s)", bad)
        _count(problems, f"{key} image(s) declaring more than {pixel_limit():,} pixels, refused before decoding (a "
                         f"decompression bomb, or a huge image: raise the limit with {PIXEL_LIMIT_ENV}=N)", large)
        _count(problems, f"{key} image(s) under {TINY_SIDE} pixels on a side (too small for learned methods' "
                         "networks)", tiny)
        if not paths or unusable == len(paths):
            problems.append(f"  {key} is empty: the suite cannot run")
        outside = links_leaving(root, paths)
        if outside:
            lines.append(f"  {key}: {len(outside)} symbolic link(s) lead outside {root} and are followed, e.g. "
                         + ", ".join(f"{p.name} -> {p.resolve()}" for p in outside[:3]))
    clashes = output_name_clashes(groups.get("testA", []))
    _count(problems, "pair(s) of testA images that would write one translation (<stem>.png): rename one of each",
           [" and ".join(p.name for p in ps) for ps in clashes.values()])
    _check_labels(labels, size_of, problems)
    lines.append("  image sizes: " + (", ".join(f"{s} x{n}" for s, n in sizes.most_common(5)) or "none"))
    computable = ["fid", "kid", "fd-dinov2", "fid-clean", "kid-clean"]
    why_not = {}
    if n_boxes:
        computable += ["map", "ap50", "hallucinated", "hallucination-share", "removed"]
        lines.append(f"  {n_boxes} boxes on the adverse test images (mAP needs --detector torchvision:ARCH:CKPT)")
    has_labels = (root / "testA_labels").is_dir() if isinstance(suite, FolderSuite) else "miou" in suite.metrics
    if has_labels:
        computable.append("miou")
        lines.append("  label maps on the adverse test images (mIoU needs --segmenter SPEC)")
    if "sift" in suite.metrics:
        computable.append("sift")
        lines.append("  a matched day frame for each adverse test image (SIFT localisation)")
    for m in ("lpips", "psnr", "ssim", "sift"):
        if m not in computable:
            why_not[m] = "no pixel-aligned day references in this suite" if m != "sift" else "no matched day frames"
    lines.append("metrics it can compute: " + ", ".join(computable)
                 + " (FID/KID/fd-dinov2/fid-clean/kid-clean with their weights: `bench weights check`)")
    lines += [f"  not {m}: {why}" for m, why in why_not.items() if m in METRICS]
    lines.append("problems:" if problems else "problems: none found")
    return lines + problems
