"""Score translations made by any code (``bench score``, ``bench.score``): one cell of a run, marked external.

The folder's images are matched to the suite's test inputs by file stem (``testA/0003.png`` ->
``0003.<any image extension>``), checked all at once (missing, extra, unreadable, another size than the
input, two files for one name) and only then copied into ``cells/<method>/seed0/translations/`` as 8-bit
RGB PNG, so the cell is scored exactly like a trained method's and later changes to the folder do not
change the run. The cell is staged in a temporary folder and moved into place when its metrics are
written: a failed or interrupted score leaves the run as it was. The manifest's ``external`` entry
records the folder, its content hash, what was skipped or resized, and the protocol checked.
"""

from __future__ import annotations

import hashlib
import shutil
import sys
import time
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from bench.atomic import staging_dir
from bench.errors import BenchError
from bench.registry import NAME_RE
from bench.results import REFERENCE_ROW, Manifest, read_manifest, write_cell
from bench.suites.base import SuiteFiles

SHOWN = 3  # names listed per problem
RESIZE_FILTER = "PIL bicubic (antialiased when shrinking)"
RESERVED = ("identity", REFERENCE_ROW)  # the lower and upper bound rows of every run


class ScoreError(BenchError, ValueError):
    """The translations or the run folder cannot be scored as asked; nothing was written."""


@dataclass(frozen=True)
class ScoreConfig:
    """``bench score``'s settings; the Python call ``bench.score(translations, method, **settings)`` takes the same."""

    translations: Path
    method: str  # the name the outside method gets in the tables
    suite: str = "synthetic-night"
    preset: str | None = None  # None: as bench run (paper for the published datasets, else quick)
    data_root: Path | None = None
    size: tuple[int, int] | None = None  # synthetic suites: the image size (as bench run --size)
    out: Path = Path("results")
    name: str | None = None  # run folder name; default: the preset. Scoring into bench run's folder joins its tables
    protocol: Path | None = None  # a protocol.json of `bench data export`: the local data must be the exported data
    allow_missing: bool = False  # score the test images that have a translation; count the rest in the notes
    resize_to_input: bool = False  # resize translations of another size to their input's (RESIZE_FILTER)
    # with resize_to_input: also those of another aspect ratio (stretched back: the change was intended, and recorded)
    allow_aspect_change: bool = False
    bounds: bool = True  # also score the identity (raw input) and day-twin rows when the run lacks them
    force: bool = False  # score again even when the folder's content is the one scored before
    device: str = "auto"
    batch_size: int = 16
    segmenter: str | None = None
    segmenter_size: tuple[int, int] | None = None
    detector: str | None = None


@dataclass
class Matched:
    """Each test input's translation (None: missing), and which need resizing."""

    paths: list[Path | None]
    resize: list[bool]
    ignored: list[str] = field(default_factory=list)  # files that are not images
    aspect_changed: int = 0  # translations of another aspect ratio, stretched back (allow_aspect_change)

    @property
    def missing(self) -> list[int]:
        return [i for i, p in enumerate(self.paths) if p is None]


def _names(items: list[str]) -> str:
    return ", ".join(items[:SHOWN]) + (", ..." if len(items) > SHOWN else "")


def match_translations(folder: Path, test_a: tuple[Path, ...], allow_missing: bool = False,
                       resize_to_input: bool = False, allow_aspect_change: bool = False) -> Matched:
    """Match ``folder``'s images to the test inputs by stem and decode each; every problem in one error."""
    from bench.data.io import IMAGE_EXTENSIONS, ImageReadError, open_image, read_rgb, same_aspect

    folder = Path(folder)
    if not folder.is_dir():
        raise ScoreError(f"--translations {folder}: no such folder; give the folder your method wrote its "
                         "translations into (one image per test input, named like the input)")
    entries = sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))
    images = [p for p in entries if p.suffix.lower() in IMAGE_EXTENSIONS]
    ignored = [p.name for p in entries if p.suffix.lower() not in IMAGE_EXTENSIONS]
    by_stem: dict[str, list[Path]] = {}
    for p in images:
        by_stem.setdefault(p.stem, []).append(p)
    stems = [Path(p).stem for p in test_a]
    wanted = set(stems)
    problems: list[str] = []
    twice = [f"{s} ({', '.join(p.name for p in ps)})" for s, ps in by_stem.items() if len(ps) > 1]
    if twice:
        problems.append(f"{len(twice)} name(s) with two files: {_names(twice)} (keep one file per test input)")
    extra = [ps[0].name for s, ps in by_stem.items() if s not in wanted]
    if extra:
        problems.append(f"{len(extra)} extra file(s), no test input has their name: {_names(extra)} (remove them; "
                        "translations are matched to the test inputs by file name without extension)")
    missing = [s for s in stems if s not in by_stem]
    if missing and (not allow_missing or len(missing) == len(stems)):
        fix = "translate every test input" if len(missing) == len(stems) else "--allow-missing scores the rest"
        problems.append(f"{len(missing)} of {len(stems)} test input(s) have no translation: {_names(missing)} "
                        f"(expected e.g. {folder / (missing[0] + '.png')}; {fix})")
    paths: list[Path | None] = []
    resize: list[bool] = []
    unreadable, other_size, other_aspect = [], [], []
    for stem, src in tqdm(list(zip(stems, test_a)), desc="check translations", unit="img", leave=False):
        found = by_stem.get(stem)
        if not found or len(found) > 1:
            paths.append(None)
            resize.append(False)
            continue
        path = found[0]
        try:
            h, w = read_rgb(path).shape[:2]
        except ImageReadError as exc:
            unreadable.append(f"{path.name} ({str(exc).split(': ', 1)[-1]})")
            h = w = 0
        with open_image(src) as im:
            iw, ih = im.size
        mismatch = (h, w) != (ih, iw) and h > 0
        if mismatch and not same_aspect((h, w), (ih, iw)):
            other_aspect.append(f"{path.name} is {h}x{w}, its input {ih}x{iw}")
        elif mismatch and not resize_to_input:
            other_size.append(f"{path.name} is {h}x{w}, its input {ih}x{iw}")
        paths.append(path)
        resize.append(mismatch)
    if unreadable:
        problems.append(f"{len(unreadable)} unreadable file(s): {_names(unreadable)} (re-write them, or remove them "
                        "and score the rest with --allow-missing)")
    if other_size:
        problems.append(f"{len(other_size)} translation(s) of another size than their input: {_names(other_size)} "
                        f"(write them at the input's size, or --resize-to-input: {RESIZE_FILTER})")
    if other_aspect and not (resize_to_input and allow_aspect_change):
        problems.append(
            f"{len(other_aspect)} translation(s) of another aspect ratio than their input: {_names(other_aspect)}. "
            "Stretched back, they would not line up with their inputs, and the paired metrics would compare "
            "misaligned images. The usual cause: the CUT and CycleGAN test scripts resize and crop to 256x256 by "
            "default; run them with --preprocess none to keep each input's size. If the change is intended, "
            "--resize-to-input --allow-aspect-change stretches them back and records it")
    if problems:
        raise ScoreError(f"the translations in {folder} cannot be scored (nothing was written):\n  - "
                         + "\n  - ".join(problems))
    return Matched(paths, resize, ignored, len(other_aspect))


def folder_digest(matched: Matched) -> str:
    """Content hash of the matched translations: each test stem with its file's bytes, in test order."""
    h = hashlib.sha256()
    for p in matched.paths:
        if p is not None:
            h.update(p.stem.encode() + b"\0" + hashlib.sha256(p.read_bytes()).digest())
    return h.hexdigest()


def _write_translations(matched: Matched, test_a: tuple[Path, ...], out_dir: Path) -> list[Path]:
    """Each present translation as 8-bit RGB PNG named by its input's stem (resized where asked)."""
    from PIL import Image

    from bench.data.io import open_image, read_rgb, write_png

    written = []
    for src, path, resize in tqdm(list(zip(test_a, matched.paths, matched.resize)), desc="copy translations",
                                  unit="img", leave=False):
        if path is None:
            continue
        img = read_rgb(path)
        if resize:
            with open_image(src) as im:
                img = np.asarray(Image.fromarray(img).resize(im.size, Image.BICUBIC))
        dst = out_dir / f"{Path(src).stem}.png"
        write_png(dst, img)
        written.append(dst)
    return written


def subset(files: SuiteFiles, keep: list[int]) -> SuiteFiles:
    """The suite's files restricted to the test images ``keep`` (their twins and labels with them)."""
    pick = lambda seq: None if seq is None else tuple(seq[i] for i in keep)  # noqa: E731
    return replace(files, test_a=pick(files.test_a), twins=pick(files.twins), labels=pick(files.labels))


def _check_run_folder(run_dir: Path, suite: str, preset: str, files: SuiteFiles, method: str) -> Manifest | None:
    """The run folder's manifest (None for a new run); refuse a run of another suite, preset or size."""
    try:
        m = read_manifest(run_dir / "manifest.json")
    except ValueError as exc:
        raise ScoreError(f"{run_dir / 'manifest.json'} is damaged ({exc}); score into another run (--name) or "
                         "rebuild it with `bench run` on that folder") from None
    if not m.suite:
        return None
    size = [files.height, files.width]
    for what, theirs, ours in (("suite", m.suite, suite), ("preset", m.preset, preset),
                               ("image size", m.image_size, size)):
        if theirs and theirs != ours:
            raise ScoreError(f"{run_dir} is a run of {what} {theirs}, this score {what} {ours}: its numbers would not "
                             "be comparable. Score into another run folder (--name NAME)")
    cell = run_dir / "cells" / method / "seed0"
    if cell.exists() and method not in m.external:
        raise ScoreError(f"{run_dir} already has a cell of the method {method!r} that `bench run` made; give the "
                         f"outside method another name (--method {method}-ours) or score into another run (--name)")
    return m


def score(cfg: ScoreConfig) -> Path:
    """Score ``cfg.translations`` into a cell of a run (created or joined); return the run folder."""
    from bench.protocol import read_protocol, verify_protocol
    from bench.runner import (
        RunConfig,
        RunPlan,
        is_finished,
        prepare_out,
        resolve_device,
        resolve_suite,
        run_cell,
        run_folder,
        score_reference,
        write_outputs,
    )
    from bench.scoring import Scorer
    from bench.suites import default_preset

    started = time.time()
    if not NAME_RE.match(cfg.method) or cfg.method in RESERVED:
        why = "is a bound every run has" if cfg.method in RESERVED else "is not a valid name"
        raise ScoreError(f"--method {cfg.method!r} {why}; name the outside method with lower-case letters, digits, "
                         "'.', '_' or '-' (e.g. cyclegan-turbo)")
    preset = cfg.preset or default_preset(cfg.suite)
    suite = resolve_suite(cfg.suite, preset, cfg.data_root)
    device = resolve_device(cfg.device)
    files = suite.prepare(preset, cfg.data_root, cfg.size)
    for note in files.notes:
        tqdm.write(f"warning: {suite.name}: {note}", file=sys.stderr)
    scorer = Scorer(suite.name, files, suite.metrics, device=device, batch_size=cfg.batch_size, preset=preset,
                    segmenter=cfg.segmenter, segmenter_size=cfg.segmenter_size, detector=cfg.detector)
    protocol_id = None
    if cfg.protocol is not None:
        protocol = read_protocol(cfg.protocol)
        verify_protocol(protocol, suite.name, preset, files, scorer.metrics, source=cfg.protocol)
        protocol_id = protocol["protocol_id"]
    matched = match_translations(cfg.translations, files.test_a, cfg.allow_missing, cfg.resize_to_input,
                                 cfg.allow_aspect_change)
    for name in matched.ignored[:SHOWN]:
        tqdm.write(f"note: {cfg.translations}/{name} is not an image; ignored", file=sys.stderr)

    run_dir = run_folder(cfg.out, suite.name, cfg.name or preset)
    existing = _check_run_folder(run_dir, suite.name, preset, files, cfg.method)
    keep = [i for i, p in enumerate(matched.paths) if p is not None]
    entry: dict[str, Any] = {
        "folder": str(Path(cfg.translations).resolve()),
        "sha256": folder_digest(matched),
        "n_test": len(files.test_a),
        "n_scored": len(keep),
        "missing": [Path(files.test_a[i]).stem for i in matched.missing],
        "resized": sum(matched.resize),
        "aspect_changed": matched.aspect_changed,
        "resize_filter": RESIZE_FILTER if any(matched.resize) else None,
        "protocol_id": protocol_id,
        "checkpoint": "whatever the outside code used: augan-bench did not train or choose it",
    }
    previous = existing.external.get(cfg.method) if existing is not None else None
    unchanged = previous is not None and {k: previous.get(k) for k in entry} == entry
    run_cfg = RunConfig(suite=suite.name, methods=(cfg.method,), preset=preset, seeds=(0,), device=cfg.device,
                        data_root=cfg.data_root, out=Path(cfg.out), name=cfg.name, size=cfg.size,
                        batch_size=cfg.batch_size, segmenter=cfg.segmenter, segmenter_size=cfg.segmenter_size,
                        detector=cfg.detector)
    plan = RunPlan(run_cfg, suite.name, files, scorer, [cfg.method], device, run_dir, [],
                   external={cfg.method: {**entry, "scored": time.strftime("%Y-%m-%dT%H:%M:%S")}},
                   record_config=existing is None)
    if unchanged and not cfg.force and is_finished(run_dir, cfg.method, 0):
        tqdm.write(f"{cfg.method}: the translations are those scored before ({entry['sha256'][:12]}); "
                   "kept the cell (--force scores again)", file=sys.stderr)
        plan.external = {}
    else:
        prepare_out(run_dir)
        _score_cell(plan, cfg.method, matched, keep)
    if cfg.bounds:
        if not is_finished(run_dir, "identity", 0):
            plan.methods = ["identity", cfg.method]
            run_cell(plan, "identity", 0)
        score_reference(plan)
    write_outputs(plan, started)
    return run_dir


def _score_cell(plan, method: str, matched: Matched, keep: list[int]) -> None:
    """Copy and score into a staging folder, then swap it in for the cell (a failure leaves the old one)."""
    from bench.runner import cell_dir
    from bench.scoring import Scorer

    final = cell_dir(plan.run_dir, method, 0)
    staging = staging_dir(final)
    try:
        translated = _write_translations(matched, plan.files.test_a, staging / "translations")
        scorer = plan.scorer
        if len(keep) < len(plan.files.test_a):  # --allow-missing: twins, labels and boxes of the scored images only
            s = plan.scorer
            scorer = Scorer(s.suite_name, subset(plan.files, keep), s.metrics, device=s.device,
                            batch_size=s.batch_size, preset=s.preset, segmenter=s.segmenter_spec,
                            segmenter_size=s.segmenter_size, detector=s.detector_spec)
        write_cell(staging, scorer.score_cell(method, 0, translated))
        plan.scorer.weights_used.update(scorer.weights_used)
        plan.scorer.skipped.update(scorer.skipped)
        old = None
        if final.exists():
            old = final.with_name(f".{final.name}.old-{int(time.time())}")
            final.rename(old)
        staging.rename(final)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        if not any(final.parent.iterdir()):
            final.parent.rmdir()
        raise


def config_from(translations: Path | str, method: str, **settings: Any) -> ScoreConfig:
    """A ``ScoreConfig`` from keyword settings, with a clear error for a name that is not a setting."""
    known = {f.name for f in fields(ScoreConfig)} - {"translations", "method"}
    unknown = sorted(set(settings) - known)
    if unknown:
        raise ScoreError(f"unknown score setting(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    paths = {k: Path(v) for k, v in settings.items() if k in ("data_root", "out", "protocol") and v is not None}
    return ScoreConfig(Path(translations), method, **{**settings, **paths})


def export_suite(suite_name: str, out: Path, preset: str | None = None, data_root: Path | None = None,
                 size: tuple[int, int] | None = None, segmenter: str | None = None,
                 detector: str | None = None) -> dict[str, Any]:
    """``bench data export``: the suite's test protocol as files (``bench.protocol``); returns protocol.json."""
    from bench.protocol import export_protocol
    from bench.runner import resolve_suite
    from bench.scoring import Scorer
    from bench.suites import default_preset

    preset = preset or default_preset(suite_name)
    suite = resolve_suite(suite_name, preset, data_root)
    files = suite.prepare(preset, data_root, size)
    for note in files.notes:
        tqdm.write(f"warning: {suite.name}: {note}", file=sys.stderr)
    metrics = Scorer(suite.name, files, suite.metrics, preset=preset, segmenter=segmenter, detector=detector).metrics
    return export_protocol(suite.name, preset, files, metrics, Path(out),
                           progress=lambda it: tqdm(it, desc="export", unit="file", leave=False))
