"""A suite's test protocol as files: ``bench data export`` writes it, ``bench score --protocol`` checks against it.

An export holds exactly what the benchmark feeds a method and scores against, at the preset's size::

    protocol.json        suite, preset, image size, every file's name and hashes, the metric settings, the id
    testA/NAME.png       the adverse test inputs: translate each into NAME.<ext> with your own code
    testB/*.png          the target domain's test images: the FID/KID reference set
    testA_twins/NAME.png the pixel-aligned day twin of each input (suites with twins: PSNR, SSIM, LPIPS)
    testA_matched/NAME.png  a matched day frame of each input (localisation suites: SIFT matches)
    testA_labels/NAME.png   label maps, Cityscapes train ids (mIoU)
    testA_boxes.json     COCO boxes of the inputs, ``file_name`` = the testA name (mAP, AP50)
    valA/, valB/         the validation split (held out of training, disjoint from test): select checkpoints or
                         tune on these, never on the test images; valA_labels/ where the suite has label maps

Images are written as the benchmark decodes them (8-bit RGB PNG), so a method sees the same pixels here
as inside ``bench run``. Each file has two hashes: ``sha256`` of the exported bytes (to check a copy), and
``pixels``, of the decoded array (to compare with a local copy of the suite, whose files may be another
encoding of the same pixels). The protocol id is a short hash of everything that decides a number (suite,
preset, size, the files' pixels, the metrics and their settings), not of the package version or the date.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any, Callable

import numpy as np

from bench.atomic import atomic_write_json, staging_dir
from bench.errors import BenchError
from bench.suites.base import SuiteFiles

PROTOCOL_FORMAT = 1
PROTOCOL_FILE = "protocol.json"


class ProtocolError(BenchError, ValueError):
    """An export cannot be written, or local data is not the exported protocol; the message says which file."""


@dataclass(frozen=True)
class ExportedFile:
    """One file of the protocol: where it goes in an export, the local file it comes from, how it is decoded."""

    name: str  # relative path in the export, e.g. testA/0003.png
    source: Path
    kind: str  # "image" (8-bit RGB) or "label" (single-channel ids)


def decode(f: ExportedFile) -> np.ndarray:
    from bench.data.io import read_rgb
    from bench.data.io import read_label

    return read_rgb(f.source) if f.kind == "image" else read_label(f.source)


def pixel_sha256(arr: np.ndarray) -> str:
    """Hash of decoded pixels: shape, dtype and bytes (so two encodings of one image agree)."""
    h = hashlib.sha256(f"{arr.shape}|{arr.dtype.str}|".encode())
    h.update(np.ascontiguousarray(arr).tobytes())
    return h.hexdigest()


def protocol_files(files: SuiteFiles, metrics: list[str]) -> list[ExportedFile]:
    """The files a protocol holds, in a fixed order; test inputs are named by stem (how translations match)."""
    from bench.metrics import METRICS

    def named(folder: str, paths, kind: str, by: tuple[Path, ...] | None = None) -> list[ExportedFile]:
        stems = [Path(p).stem for p in (by if by is not None else paths)]
        dupes = sorted({s for s in stems if stems.count(s) > 1})
        if dupes:
            raise ProtocolError(f"{folder}: {len(dupes)} file name(s) occur twice with different extensions "
                                f"({', '.join(dupes[:3])}): outputs are matched by name, so each test image needs "
                                "its own; rename or remove one of each pair")
        return [ExportedFile(f"{folder}/{s}.png", Path(p), kind) for s, p in zip(stems, paths)]

    out = named("testA", files.test_a, "image") + named("testB", files.test_b, "image")
    needs = {METRICS[m].needs for m in metrics if m in METRICS}
    if files.twins is not None:
        folder = "testA_twins" if "twins" in needs else "testA_matched"
        out += named(folder, files.twins, "image", by=files.test_a)
    if files.labels is not None and "labels" in needs:
        out += named("testA_labels", files.labels, "label", by=files.test_a)
    # The validation split, for methods that select checkpoints or tune on it (never the test split).
    if files.val_a:
        out += named("valA", files.val_a, "image") + named("valB", files.val_b, "image")
        if files.val_labels is not None and "labels" in needs:
            out += named("valA_labels", files.val_labels, "label", by=files.val_a)
    return out


def metric_settings(metrics: list[str]) -> dict[str, Any]:
    """What decides each metric's number besides the images: definitions, constants, the weights expected."""
    from bench.metrics import METRICS
    from bench.metrics.bootstrap import CI_LEVEL, DRAWS_FORMAT, LARGE_SET_RESAMPLES, N_RESAMPLES
    from bench.metrics.fid_kid import KID_SUBSET_SIZE, KID_SUBSETS
    from bench.weights import WEIGHTS

    return {
        "metrics": {m: {"higher_is_better": METRICS[m].higher_is_better, "needs": METRICS[m].needs} for m in metrics},
        "ci": {"level": CI_LEVEL, "resamples": N_RESAMPLES, "large_set_resamples": LARGE_SET_RESAMPLES,
               "draws": DRAWS_FORMAT},
        "kid": {"subsets": KID_SUBSETS, "subset_size": KID_SUBSET_SIZE},
        # The metrics' own files: not the methods' checkpoints, which register only once their package is imported
        # (a protocol exported before and scored after would otherwise differ) and decide no metric's number.
        "weights": {w.key: w.expected for w in WEIGHTS.values() if WEIGHTS.source(w.key).startswith("bench.")},
    }


def protocol_id(content: dict[str, Any]) -> str:
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(canonical.encode()).hexdigest()[:12]


def _id_content(p: dict[str, Any]) -> dict[str, Any]:
    return {k: p[k] for k in ("suite", "preset", "image_size", "settings")} | {
        "files": {name: f["pixels"] for name, f in p["files"].items()}, "boxes": p.get("boxes")}


def export_protocol(suite: str, preset: str, files: SuiteFiles, metrics: list[str], out: Path,
                    progress: Callable[[Any], Any] = lambda it: it) -> dict[str, Any]:
    """Write the export into ``out`` (which must not exist or be empty) and return its protocol.

    Everything is written into a temporary folder beside ``out`` and renamed at the end, so an interrupted
    export leaves nothing that looks like one.
    """
    from bench.data.io import write_png

    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ProtocolError(f"{out} exists and is not an empty folder; export into a new folder (or remove it)")
    listed = protocol_files(files, metrics)
    staging = staging_dir(out)
    try:
        entries: dict[str, dict[str, str]] = {}
        for f in progress(listed):
            arr = decode(f)
            write_png(staging / f.name, arr)
            entries[f.name] = {"sha256": hashlib.sha256((staging / f.name).read_bytes()).hexdigest(),
                               "pixels": pixel_sha256(arr), "source": str(f.source)}
        boxes = None
        if files.boxes is not None and "boxes" in metrics_needs(metrics):
            boxes = export_boxes(files, staging / "testA_boxes.json")
        protocol = _protocol(suite, preset, files, metrics, entries, boxes)
        protocol["created"] = time.strftime("%Y-%m-%dT%H:%M:%S")
        atomic_write_json(staging / PROTOCOL_FILE, protocol)
        if out.exists():
            out.rmdir()
        staging.rename(out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return protocol


def _protocol(suite: str, preset: str, files: SuiteFiles, metrics: list[str], entries: dict[str, dict[str, str]],
              boxes: str | None) -> dict[str, Any]:
    """The protocol's content around its files' hashes (``entries``), with its id."""
    from bench.metrics import METRICS

    protocol: dict[str, Any] = {
        "format": PROTOCOL_FORMAT,
        "suite": suite,
        "preset": preset,
        "image_size": [files.height, files.width],
        "n_test": len(files.test_a),
        "n_reference": len(files.test_b),
        "settings": metric_settings(metrics),
        "metric_definitions": {m: METRICS[m].description for m in metrics},
        "files": entries,
        "boxes": boxes,
        "package": {"augan-bench": _version()},
        "how_to_score": "translate each testA/NAME.png into OUT/NAME.png (any image format; same size), then "
                        f"bench score --suite {suite} --preset {preset} --translations OUT --method YOUR-NAME "
                        f"--protocol {PROTOCOL_FILE}",
    }
    protocol["protocol_id"] = protocol_id(_id_content(protocol))
    return protocol


def describe_protocol(suite: str, preset: str, files: SuiteFiles, metrics: list[str],
                      progress: Callable[[Any], Any] = lambda it: it) -> dict[str, Any]:
    """The protocol ``export_protocol`` would write for these files, without writing anything: each file's pixel
    hash (the id depends on pixels only, so the id is the export's), no local paths."""
    entries = {f.name: {"pixels": pixel_sha256(decode(f))} for f in progress(protocol_files(files, metrics))}
    return _protocol(suite, preset, files, metrics, entries, boxes_sha256(files) if files.boxes is not None
                     and "boxes" in metrics_needs(metrics) else None)


def exported_names(protocol: dict[str, Any], folder: str) -> list[str]:
    """The names (stems) of a protocol's files in ``folder`` (``testA``, ``testB``), in the protocol's order."""
    prefix = f"{folder}/"
    return [n[len(prefix):].rsplit(".", 1)[0] for n in protocol["files"] if n.startswith(prefix)]


def verify_protocol_id(protocol: dict[str, Any]) -> str | None:
    """Why ``protocol``'s id is not the hash of its content (None when it is)."""
    try:
        computed = protocol_id(_id_content(protocol))
    except (KeyError, TypeError, ValueError) as exc:
        return f"its content is incomplete ({type(exc).__name__}: {exc})"
    if computed != protocol.get("protocol_id"):
        return f"its id {protocol.get('protocol_id')!r} is not the hash of its content ({computed})"
    return None


def metrics_needs(metrics: list[str]) -> set[str]:
    from bench.metrics import METRICS

    return {METRICS[m].needs for m in metrics if m in METRICS}


def export_boxes(files: SuiteFiles, path: Path) -> str:
    """The test split's COCO boxes with ``file_name`` renamed to the exported testA names; returns their hash."""
    assert files.boxes is not None
    gt = json.loads(Path(files.boxes).read_text())
    renamed = {Path(p).name: f"{Path(p).stem}.png" for p in files.test_a}
    exported = {**gt, "images": [{**img, "file_name": renamed.get(img["file_name"], img["file_name"])}
                                 for img in gt["images"]]}
    atomic_write_json(path, exported)
    return _boxes_digest(gt, files.test_a)


def boxes_sha256(files: SuiteFiles) -> str | None:
    """Hash of the test boxes' content (annotations per test image, in test order), independent of file naming."""
    if files.boxes is None:
        return None
    return _boxes_digest(json.loads(Path(files.boxes).read_text()), files.test_a)


def _boxes_digest(gt: dict[str, Any], test_a: tuple[Path, ...]) -> str:
    ids = {img["file_name"]: img["id"] for img in gt["images"]}
    by_image: dict[Any, list] = {}
    for a in gt["annotations"]:
        by_image.setdefault(a["image_id"], []).append([a["category_id"], a["bbox"]])
    per_image = [sorted(by_image.get(ids.get(Path(p).name), []), key=json.dumps) for p in test_a]
    return hashlib.sha256(json.dumps(per_image, sort_keys=True).encode()).hexdigest()


def _version() -> str:
    try:
        return metadata.version("augan-bench")
    except metadata.PackageNotFoundError:
        return "unknown"


def read_protocol(path: Path) -> dict[str, Any]:
    path = Path(path)
    if path.is_dir():
        path = path / PROTOCOL_FILE
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise ProtocolError(f"{path}: no such protocol file; give the protocol.json that `bench data export` "
                            "wrote") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ProtocolError(f"{path}: not a protocol file ({exc}); give the protocol.json that `bench data export` "
                            "wrote") from None
    missing = [k for k in ("format", "suite", "preset", "files", "protocol_id", "settings") if k not in data]
    if not isinstance(data, dict) or missing:
        raise ProtocolError(f"{path}: not a protocol file (no {', '.join(missing)}); give the protocol.json that "
                            "`bench data export` wrote")
    if data["format"] != PROTOCOL_FORMAT:
        raise ProtocolError(f"{path}: protocol format {data['format']}, this version reads {PROTOCOL_FORMAT}")
    return data


def verify_protocol(protocol: dict[str, Any], suite: str, preset: str, files: SuiteFiles, metrics: list[str],
                    source: Path | str = PROTOCOL_FILE) -> None:
    """Raise ``ProtocolError`` naming the first difference between the local suite data and ``protocol``."""
    pid = protocol["protocol_id"]
    for key, here in (("suite", suite), ("preset", preset)):
        if protocol[key] != here:
            raise ProtocolError(f"{source} (protocol {pid}) is {key} {protocol[key]!r}, this score is {key} {here!r}; "
                                f"score with --{key} {protocol[key]}")
    if list(protocol.get("image_size", [])) != [files.height, files.width]:
        raise ProtocolError(f"{source} (protocol {pid}) has {protocol.get('image_size')} images, the local suite "
                            f"{[files.height, files.width]}; the --size differs")
    local = protocol_files(files, metrics)
    theirs = protocol["files"]
    ours = {f.name for f in local}
    for name in theirs:
        if name not in ours:
            raise ProtocolError(f"local suite data differs from protocol {pid} ({source}): it has no {name}; "
                                "is --data-root the copy the protocol was exported from?")
    for f in local:
        if f.name not in theirs:
            raise ProtocolError(f"local suite data differs from protocol {pid} ({source}): {f.name} ({f.source}) "
                                "is not in the protocol")
        if pixel_sha256(decode(f)) != theirs[f.name]["pixels"]:
            raise ProtocolError(f"local suite data differs from protocol {pid} ({source}): first differing file "
                                f"{f.name} (local {f.source}); the data, its version or the preset's resizing differ")
    if protocol.get("boxes") is not None and boxes_sha256(files) != protocol["boxes"]:
        raise ProtocolError(f"local suite data differs from protocol {pid} ({source}): the test boxes differ "
                            f"({files.boxes})")
    if metric_settings(metrics) != protocol["settings"]:
        raise ProtocolError(f"protocol {pid} ({source}) was exported with other metric settings (another augan-bench "
                            f"version: {protocol.get('package', {}).get('augan-bench', '?')}); export it again "
                            "with this version, or score with that one")
