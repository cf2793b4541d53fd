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
from bench.data.io import ImageReadError, read_rgb
from bench.suites.bdd100k import BDD100KSuite
from bench.suites.folder import FolderSuite
from bench.suites.prepared import ListedSuite
from bench.suites.synthetic import SyntheticSuite


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
        from bench.data.io import list_images

        for sub in ("trainA", "trainB", "testA", "testB"):
            d = root / sub
            if not d.is_dir():
                problems.append(f"  {d} is missing")
                continue
            groups[sub] = list_images(d)
    else:
        raise ValueError(f"bench data check does not know suite {name!r}")
    sizes: Counter = Counter()
    for key, paths in groups.items():
        bad = []
        for p in tqdm(paths, desc=f"decoding {key}", unit="img", leave=False):
            try:
                img = read_rgb(p)
                sizes[f"{img.shape[1]}x{img.shape[0]}"] += 1
            except ImageReadError as exc:
                bad.append(f"{p.name} ({str(exc).split(': ', 1)[-1]})")
        lines.append(f"  {key}: {len(paths) - len(bad)} usable image(s)" + (f", {len(bad)} undecodable" if bad else ""))
        problems += [f"  undecodable {key} image: {b}" for b in bad[:5]]
        if len(bad) > 5:
            problems.append(f"  ... and {len(bad) - 5} more undecodable {key} image(s)")
        if not paths or len(bad) == len(paths):
            problems.append(f"  {key} is empty: the suite cannot run")
    lines.append("  image sizes: " + (", ".join(f"{s} x{n}" for s, n in sizes.most_common(5)) or "none"))
    computable = ["fid", "kid", "fd-dinov2", "fid-clean", "kid-clean"]
    why_not = {}
    if n_boxes:
        computable += ["map", "ap50", "hallucinated", "removed"]
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
