"""A run: suite x methods x seeds -> fit or load -> translate the test split -> score -> write.

Layout of ``<out>/<suite>/<run-name>/``::

    manifest.json           config, seeds, versions, git commit, device, weights ids, cells
    metrics.csv             long format (bench.results)
    tables/summary.md       methods x metrics, best in bold
    tables/summary.csv      per (method, metric): mean and std over seeds, n seeds, CI
    figures/qualitative.*   input | each method but identity (the input) | day twin (PNG and PDF)
    cells/<method>/seed<k>/ checkpoint.safetensors, translations/*.png, metrics.json

A cell is finished when its ``metrics.json`` exists; every file is written atomically, so a
run killed at any point resumes where it stopped: finished cells are skipped, a cell's
checkpoint and each translated image already on disk are reused. ``force`` redoes cells.
"""

from __future__ import annotations

import io
import json
import os
import random
import shutil
import sys
import time
from dataclasses import asdict, dataclass, field, is_dataclass, replace
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from tqdm import tqdm

from bench.atomic import atomic_write_bytes, atomic_write_text
from bench.checkpoints import CheckpointError
from bench.data.unpaired import bytescale
from bench.lock import run_folder_lock
from bench.data.io import pixel_limit, read_rgb, refuse_output_name_clashes, to_tensor, to_uint8, write_png
from bench.launch import CellJobs, CellsFailed, LaunchConfig, launch_cells
from bench.scoring import Scorer
from bench.report.figures import image_grid
from bench.report.compare import compare_table
from bench.report.render import render
from bench.report.runs import RunResults
from bench.report.tables import summary_csv, weak_tasks
from bench.results import (
    REFERENCE_ROW,
    Manifest,
    MetricRecord,
    git_commit,
    read_cell_metrics,
    read_manifest,
    versions,
    write_cell,
    write_cell_metrics,
    write_manifest,
    write_metrics_csv,
)
from bench.suites import SuiteFiles, get_suite
from bench.errors import BenchError
from bench.translator import (
    PRESETS,
    MethodUnavailable,
    TrainBudget,
    TrainEngine,
    TrainWatch,
    Translator,
    available_methods,
    build_translator,
    load_checkpoint,
    method_info,
)

QUALITATIVE_ROWS = 4


class RunError(BenchError, RuntimeError):
    """A problem with the run's inputs or environment, reported to the user without a traceback."""


@dataclass(frozen=True)
class RunConfig:
    suite: str = "synthetic-night"
    methods: tuple[str, ...] = ()  # empty: the suite's defaults; ("all",): every registered method
    preset: str = "quick"
    seeds: tuple[int, ...] = (0,)
    device: str = "auto"
    data_root: Path | None = None
    out: Path = Path("results")
    name: str | None = None  # run folder name; default: the preset
    force: bool = False
    size: tuple[int, int] | None = None  # H, W override for synthetic suites
    batch_size: int = 16
    max_steps: int | None = None
    segmenter: str | None = None  # spec of a pretrained segmenter (bench.downstream.segmenters); None: the suite's
    segmenter_size: tuple[int, int] | None = None
    detector: str | None = None  # spec of a pretrained detector (bench.downstream.detectors); None: the suite's
    engine: TrainEngine = field(default_factory=TrainEngine)  # precision, compile, loader workers (training only)
    watch: TrainWatch = field(default_factory=TrainWatch)  # logs, validation curves, the checkpoint selection rule
    launch: LaunchConfig = field(default_factory=LaunchConfig)  # where cells run: here, local processes, Slurm
    # method -> hyperparameters over its preset config ([method.<name>] in --config, --set method.key=value)
    method_options: dict[str, dict[str, Any]] = field(default_factory=dict)


@dataclass
class RunSummary:
    run_dir: Path
    done: list[tuple[str, int]] = field(default_factory=list)
    skipped: list[tuple[str, int]] = field(default_factory=list)
    records: list[MetricRecord] = field(default_factory=list)


def resolve_device(device: str) -> str:
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise RunError("--device cuda was asked for, but torch sees no CUDA GPU; use --device cpu or auto")
    if device.startswith("cuda:"):
        index = device[len("cuda:"):]
        if not index.isdigit():
            raise RunError(f"unknown device {device!r}; use auto, cpu, cuda or cuda:N (N a GPU number)")
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise RunError(f"--device {device} was asked for, but torch sees no CUDA GPU; use --device cpu or auto")
        if int(index) >= count:
            raise RunError(f"--device {device} was asked for, but torch sees GPUs 0-{count - 1} (CUDA_VISIBLE_DEVICES="
                           f"{os.environ.get('CUDA_VISIBLE_DEVICES', 'unset')}); use --device cuda:0..{count - 1}")
        return device
    if device not in ("cpu", "cuda"):
        raise RunError(f"unknown device {device!r}; use auto, cpu, cuda or cuda:N")
    return device


def resolve_methods(requested: tuple[str, ...], default: tuple[str, ...]) -> list[str]:
    registered = available_methods()
    if not requested:
        names = list(default)
    elif requested == ("all",):
        names = list(registered)
    else:
        names = list(dict.fromkeys(requested))
    for name in names:
        try:
            method_info(name)
        except LookupError as exc:
            raise RunError(str(exc.args[0])) from None
    return names


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def prepare_out(run_dir: Path) -> None:
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        probe = run_dir / f".write-test-{os.getpid()}"  # per process: cell jobs probe the same folder at once
        atomic_write_text(probe, "ok")
        probe.unlink()
    except OSError as exc:
        raise RunError(
            f"cannot write results to {run_dir}: {exc.strerror or exc}. Choose a writable folder with --out"
        ) from None


@dataclass
class RunPlan:
    """What a run needs before its cells: the suite's files, the scorer, the cells in order."""

    cfg: RunConfig
    suite_name: str
    files: SuiteFiles
    scorer: Scorer
    methods: list[str]
    device: str
    run_dir: Path
    cells: list[tuple[str, int]]
    method_configs: dict[str, dict[str, Any]] = field(default_factory=dict)  # resolved, for the manifest
    external: dict[str, dict[str, Any]] = field(default_factory=dict)  # cells scored from outside folders
    # False for `bench score` into an existing run: the run's own config (methods, seeds) stays the recorded one
    record_config: bool = True
    _validation: list = field(default_factory=list)  # the suite's validation, built once for all of the run's cells

    def validation(self):
        if not self._validation:
            self._validation.append(suite_validation(self.cfg, self.files, self.device))
        return self._validation[0]


def resolve_suite(name: str, preset: str, data_root: Path | None):
    """The suite, after the checks every command makes (known preset and suite, --data-root only where read)."""
    if preset not in PRESETS:
        raise RunError(f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
    try:
        suite = get_suite(name)
    except KeyError as exc:
        raise RunError(str(exc.args[0])) from None
    if data_root is not None and not suite.needs_data_root:
        raise RunError(f"suite {suite.name!r} does not read --data-root (its data is built in or named in the suite); "
                       "drop the option")
    return suite


def plan(cfg: RunConfig) -> RunPlan:
    suite = resolve_suite(cfg.suite, cfg.preset, cfg.data_root)
    methods = resolve_methods(cfg.methods, suite.default_methods)
    device = resolve_device(cfg.device)
    cfg.engine.resolved(device)  # an engine this device cannot run stops here, before any data is prepared
    cfg.watch.checked()
    run_dir = run_folder(cfg.out, suite.name, cfg.name or cfg.preset)
    prepare_out(run_dir)
    files = suite.prepare(cfg.preset, cfg.data_root, cfg.size)
    for note in files.notes:  # counted skips in the data: reported, never silent
        tqdm.write(f"warning: {suite.name}: {note}", file=sys.stderr)
    method_configs = resolved_method_configs(cfg, methods)
    refuse_another_protocol(run_dir, cfg, [files.height, files.width], method_configs)
    scorer = Scorer(suite.name, files, suite.metrics, device=device, batch_size=cfg.batch_size, preset=cfg.preset,
                    segmenter=cfg.segmenter, segmenter_size=cfg.segmenter_size, detector=cfg.detector)
    cells = []
    for method in methods:
        seeds = cfg.seeds if method_info(method).learned else cfg.seeds[:1]  # deterministic: one cell
        cells += [(method, s) for s in seeds]
    refuse_images_too_small(cfg, [m for m in methods if method_info(m).learned], files.test_a)
    return RunPlan(cfg, suite.name, files, scorer, methods, device, run_dir, cells, method_configs)


SMALL_SIDE = 64  # below this a generator's padding and strides may not fit; such sizes are tried before training


def refuse_images_too_small(cfg: RunConfig, learned: list[str], test_images) -> None:
    """Try each learned method (untrained) on the smallest test image sizes, so a 1x1 image fails before training,
    not after it, and names the file."""
    from bench.data.io import ImageReadError, open_image

    first_of: dict[tuple[int, int], Path] = {}
    for path in test_images:
        try:
            with open_image(path) as im:
                first_of.setdefault((im.height, im.width), Path(path))
        except (OSError, ImageReadError):
            continue  # undecodable or too large: reported where it is read
    tiny = sorted(size for size in first_of if min(size) < SMALL_SIDE)
    for method in learned if tiny else []:
        with torch.random.fork_rng(devices=[]):
            t = build_translator(method, preset=cfg.preset, overrides=cfg.method_options.get(method))
        for h, w in tiny:
            try:
                t.translate(torch.zeros(1, 3, h, w))
            except Exception as exc:  # noqa: BLE001 - whatever the network raises, the cause is the size
                raise RunError(f"{first_of[(h, w)]} is {w}x{h} pixels, too small for {method} "
                               f"({type(exc).__name__}: {str(exc).splitlines()[0][:120]}); remove it from the test "
                               "images, or upscale it") from None


def refuse_another_protocol(run_dir: Path, cfg: RunConfig, image_size: list[int],
                            method_configs: dict[str, dict[str, Any]] | None = None) -> None:
    """A run folder's finished cells were made at one image size and preset, each method at one configuration;
    adding cells made otherwise would put two protocols in one table under a manifest that names only one (a
    method's finished cells are not redone when its settings change, e.g. UNSB's test-time nfe)."""
    try:
        previous = read_manifest(run_dir / "manifest.json")
    except (ValueError, FileNotFoundError):
        return  # no (readable) record of what the folder was made with: it is rebuilt from the cells
    if cfg.force or not any(run_dir.glob("cells/*/seed*/metrics.json")):
        return
    before = previous.image_size
    if before and list(before) != list(image_size):
        size = "x".join(map(str, image_size)) if all(image_size) else "native size"
        raise RunError(f"{run_dir} holds cells made at {'x'.join(map(str, before))} images (its manifest.json); this run "
                       f"asks for {size}. Give another --name for the new size, or --force to redo every cell")
    if previous.preset and previous.preset != cfg.preset:
        raise RunError(f"{run_dir} holds cells made at --preset {previous.preset}; this run asks for --preset "
                       f"{cfg.preset}. Give another --name, or --force to redo every cell")
    for method, config in (method_configs or {}).items():
        before_config = previous.method_configs.get(method)
        if not before_config or not any(run_dir.glob(f"cells/{method}/seed*/metrics.json")):
            continue
        now = json.loads(json.dumps(config))  # as the manifest holds it (tuples as lists)
        changed = [f"{k}={before_config[k]!r} there, {now[k]!r} now" for k in sorted(set(now) & set(before_config))
                   if now[k] != before_config[k]]
        if changed:
            raise RunError(f"{run_dir} holds {method} cells made with other settings ({'; '.join(changed[:4])}); "
                           "give this configuration another --name, or --force to redo every cell")


def resolved_method_configs(cfg: RunConfig, methods: list[str], only_set: bool = False) -> dict[str, dict[str, Any]]:
    """Each method's config after its preset and overrides (checked here, before any cell trains); with
    ``only_set``, only the methods that have settings (what ``--print-config`` checks before printing them)."""
    unknown = sorted(set(cfg.method_options) - set(methods))
    if unknown:
        raise RunError(f"settings for {', '.join(unknown)}, which this run does not run (methods: {', '.join(methods)})")
    out = {}
    for method in methods:
        if only_set and method not in cfg.method_options:
            continue
        with torch.random.fork_rng(devices=[]):
            t = build_translator(method, preset=cfg.preset, overrides=cfg.method_options.get(method))
        config = getattr(t, "config", None)
        if config is not None and is_dataclass(config):
            out[method] = asdict(config)
    return out


def run_folder(out: Path, suite_name: str, name: str) -> Path:
    return Path(out) / suite_name.replace(":", "_").replace("/", "_") / name


def cell_dir(run_dir: Path, method: str, seed: int) -> Path:
    return run_dir / "cells" / method / f"seed{seed}"


UNAVAILABLE = "not run: "  # the note of a cell whose method's files were missing


def is_finished(run_dir: Path, method: str, seed: int) -> bool:
    """The cell's metrics.json is there and readable; a damaged one is set aside and the cell scored again (its
    checkpoint and translations are kept, so that is quick)."""
    path = cell_dir(run_dir, method, seed) / "metrics.json"
    if not path.is_file():
        return False
    try:
        records = read_cell_metrics(path)
    except ValueError as exc:
        aside = path.with_name("metrics.json.damaged")
        os.replace(path, aside)
        tqdm.write(f"warning: {path} was damaged ({exc}); kept as {aside.name}, scoring the cell again",
                   file=sys.stderr)
        return False
    return not any(r.note.startswith(UNAVAILABLE) for r in records)  # retried: the files may be there now


def run_cell(p: RunPlan, method: str, seed: int) -> None:
    """Fit (or load), translate and score one (method, seed) cell; every step resumes from what is on disk."""
    cfg = p.cfg
    d = cell_dir(p.run_dir, method, seed)
    # The validation first: building it may train the suite's segmenter, which must not move the seeded RNG.
    budget = (training_budget(cfg, p.files, p.device, seed, d, p.validation) if method_info(method).learned
              else TrainBudget(seed))
    seed_everything(seed)  # before construction: initial weights come from the seed too
    translator = build_translator(method, preset=cfg.preset, device=p.device, overrides=cfg.method_options.get(method))
    try:
        fit_or_load(translator, p.files, d, budget)
    except MethodUnavailable as exc:  # a pretrained method's files are missing: say so in its cells, run the rest
        tqdm.write(f"warning: {method} skipped: {exc}", file=sys.stderr)
        write_cell_metrics(d / "metrics.json", p.scorer.unavailable(method, seed, f"{UNAVAILABLE}{method}: {exc}"))
        return
    translated = translate_folder(translator, p.files.test_a, d / "translations", p.device, cfg.batch_size)
    write_cell(d, p.scorer.score_cell(method, seed, translated))


def run_cell_job(cfg: RunConfig, method: str, seed: int) -> tuple[str, int]:
    """One cell, in whatever process a launcher gave it (a Slurm job, a local worker)."""
    cell_cfg = replace(cfg, methods=(method,), seeds=(seed,), launch=LaunchConfig(), force=False)
    run_cell(plan(cell_cfg), method, seed)
    return method, seed


def score_reference(p: RunPlan) -> None:
    """The upper bound: the downstream models on the day twins themselves (also warms their caches)."""
    if p.scorer.has_downstream and p.files.twins is not None:
        ref_cell = p.run_dir / "cells" / REFERENCE_ROW / "seed0" / "metrics.json"
        if p.cfg.force or not ref_cell.is_file():
            write_cell(ref_cell.parent, p.scorer.score_cell(REFERENCE_ROW, 0, p.files.twins, only_downstream=True))


def run(cfg: RunConfig) -> RunSummary:
    p = plan(cfg)
    with run_folder_lock(p.run_dir):
        return _run_locked(p)


def _run_locked(p: RunPlan) -> RunSummary:
    cfg = p.cfg
    summary = RunSummary(p.run_dir)
    started = time.time()
    todo = []
    for method, seed in p.cells:
        if cfg.force and cell_dir(p.run_dir, method, seed).exists():
            shutil.rmtree(cell_dir(p.run_dir, method, seed))
        if is_finished(p.run_dir, method, seed):
            summary.skipped.append((method, seed))
        else:
            todo.append((method, seed))
    if cfg.launch.launcher == "none":
        bar = tqdm(todo, desc=f"{p.suite_name} [{cfg.preset}]", unit="cell")
        for method, seed in bar:
            bar.set_postfix_str(f"{method} seed {seed}")
            run_cell(p, method, seed)
            summary.done.append((method, seed))
        score_reference(p)
    else:
        score_reference(p)  # first: jobs then find the downstream models trained and cached
        try:
            summary.done += launch_cells(CellJobs(run_cell_job, cfg, p.run_dir, p.device, p.suite_name), todo)
        except CellsFailed as exc:
            write_outputs(p, started)
            raise RunError(str(exc)) from None
    summary.records = write_outputs(p, started)
    return summary


def suite_validation(cfg: RunConfig, files: SuiteFiles, device: str):
    """The suite's validation as the run's watch asks for it (None: no validation split); a selection rule the
    validation split cannot serve stops the run here, before training."""
    from bench.validation import ValidationError, validation_for

    metric = cfg.watch.select_metric
    try:
        validator = validation_for(files, cfg.preset, device, cfg.watch.val_images, cfg.batch_size,
                                   needed=(metric,) if metric else ())
    except ValidationError as exc:
        raise RunError(str(exc)) from None
    for note in validator.notes if validator is not None else ():
        tqdm.write(f"warning: validation: {note}", file=sys.stderr)
    return validator


def training_budget(cfg: RunConfig, files: SuiteFiles, device: str, seed: int, cell: Path,
                    validation: Callable[[], Any] | None = None) -> TrainBudget:
    """What one cell's training is asked: the run's seed, steps, engine and watch, and the suite's validation (made
    by ``validation``, else built here; only when the cell has training to do)."""
    validator = None
    if cfg.watch.validate and not (cell / "checkpoint.safetensors").is_file():
        validator = validation() if validation is not None else suite_validation(cfg, files, device)
    return TrainBudget(seed, cfg.max_steps, cfg.engine, cfg.watch, validator)


def fit_or_load(translator: Translator, files, cell: Path, budget: TrainBudget) -> None:
    """Under data parallelism every rank trains and rank 0 writes the checkpoint."""
    from safetensors.torch import save

    from bench.distributed import current

    ckpt = cell / "checkpoint.safetensors"
    if ckpt.is_file():
        try:
            load_checkpoint(translator, ckpt, adopt_architecture=False)  # the run's preset decides; another is refused
        except CheckpointError as exc:
            raise RunError(f"{exc} -- the cell's checkpoint is damaged: delete {cell} (or run with --force) to train "
                           "the cell again") from None
        return
    translator.fit(files.unpaired(), budget, cell / "train")
    ctx = current()
    if ctx.is_main:
        state = {k: v.detach().cpu().contiguous() for k, v in translator.state_dict().items()}
        atomic_write_bytes(ckpt, save(state))
    ctx.barrier()


TRANSLATED_BY = ".translated-by.json"  # what wrote a `bench translate` output folder


def claim_output_folder(out_dir: Path, maker: dict[str, str]) -> None:
    """Let ``bench translate`` write into ``out_dir`` only if its images are this maker's (resume) or there are none.

    Kept outputs count as translated, so a folder holding another checkpoint's (or anyone's) images would be
    reported as this checkpoint's work.
    """
    out_dir = Path(out_dir)
    marker = out_dir / TRANSLATED_BY
    images = [p for p in out_dir.glob("*.png")] if out_dir.is_dir() else []
    if marker.is_file():
        try:
            previous = json.loads(marker.read_text())
        except ValueError:
            previous = {}
        if previous != maker and images:
            said = ", ".join(f"{k} {v}" for k, v in previous.items()) or "an unreadable record"
            raise RunError(f"{out_dir} holds {len(images)} translation(s) by {said}, not by {maker['method']} with "
                           f"checkpoint sha256 {maker['checkpoint_sha256'][:12]}: give an empty --output folder, or "
                           "delete those images first")
    elif images:
        raise RunError(f"{out_dir} already holds {len(images)} PNG image(s) that bench translate did not write (no "
                       f"{TRANSLATED_BY}): they would be kept as if translated. Give an empty --output folder")
    atomic_write_text(marker, json.dumps(maker, indent=1) + "\n")


@torch.no_grad()
def translate_folder(translator: Translator, inputs, out_dir: Path, device: str, batch_size: int,
                     uncertainty: bool = False, stretch_input: bool = False, minmax_output: bool = False) -> list[Path]:
    """Translate every image at its native size; images already written are kept (resume).

    With ``uncertainty`` the method's sigma map is also written, as ``<name>_sigma.npy`` (float32)
    and a ``<name>_sigma.png`` view scaled to each image's maximum. ``stretch_input`` and ``minmax_output``
    reproduce two official test scripts (docs/augan.md, "Test-time input and output"): each input stretched to
    span 0..255 (AU-GAN's and ForkGAN's scipy.misc.imresize), each output stretched to span 0..1 before saving
    (UNIT's and MUNIT's save_image(normalize=True)). ``bench run`` uses neither.
    """
    refuse_output_name_clashes(inputs)
    outputs = [out_dir / (Path(p).stem + ".png") for p in inputs]
    todo = [(p, o) for p, o in zip(inputs, outputs) if not o.is_file()]
    batch: list[tuple[Path, np.ndarray]] = []

    def flush() -> None:
        if not batch:
            return
        x = torch.stack([to_tensor(img) for _, img in batch]).to(device)
        y = translator.translate(x)
        if y.shape != x.shape:
            raise RunError(f"{getattr(translator, 'name', translator)} returned {tuple(y.shape)} for input {tuple(x.shape)}")
        if minmax_output:
            low = y.amin(dim=(1, 2, 3), keepdim=True)
            y = (y - low) / (y.amax(dim=(1, 2, 3), keepdim=True) - low).clamp_min(1e-8)
        sigma = translator.uncertainty(x) if uncertainty else None  # type: ignore[attr-defined]
        for k, ((o, _), img) in enumerate(zip(batch, y)):
            if sigma is not None:
                s = sigma[k, 0].float().cpu().numpy()
                buf = io.BytesIO()
                np.save(buf, s.astype(np.float32))
                atomic_write_bytes(o.with_name(o.stem + "_sigma.npy"), buf.getvalue())
                view = np.round(255 * s / max(float(s.max()), 1e-8)).astype(np.uint8)
                write_png(o.with_name(o.stem + "_sigma.png"), view)
            write_png(o, to_uint8(img))  # last: the translation marks the image as done
        batch.clear()

    for src, dst in tqdm(todo, desc="translate", unit="img", leave=False):
        img = bytescale(read_rgb(src)) if stretch_input else read_rgb(src)
        # Batches hold images of one size only: no resizing, no cropping at test time.
        if batch and (batch[0][1].shape != img.shape or len(batch) >= batch_size):
            flush()
        batch.append((dst, img))
    flush()
    return outputs


# Some papers report the best FID over training (chosen on the test set: UNSB's issues #9, #24); we never do.
FINAL_CHECKPOINT = "final: the last training step of the preset, not chosen by any score on the test images"


def _learned(method: str) -> bool:
    try:
        return method_info(method).learned
    except LookupError:  # a method this installation no longer has (an older cell): nothing to say about it
        return False


def read_selections(run_dir: Path, method: str) -> dict[str, Any]:
    """seed -> the selection its training recorded (``train/selection.json``), for cells where a rule chose."""
    from bench.learned import SELECTION

    out = {}
    for path in sorted((run_dir / "cells" / method).glob(f"seed*/train/{SELECTION}")):
        out[path.parent.parent.name.removeprefix("seed")] = json.loads(path.read_text())
    return out


def selection_note(selections: dict[str, Any]) -> str:
    """How the scored checkpoints were chosen, in one line for the table notes."""
    first = next(iter(selections.values()))
    steps = ", ".join(f"step {s['step']} of {s['total_steps']} (seed {seed}, validation {s['metric']} "
                      f"{s['value']:.4g})" for seed, s in selections.items())
    better = "highest" if first["higher_is_better"] else "lowest"
    return (f"{first['rule']}: the validated step with the {better} {first['metric']} on "
            f"{first['validation_images']} validation images, none of them a test image: {steps}")


def write_outputs(p: RunPlan, started: float) -> list[MetricRecord]:
    """Rebuild metrics.csv, the summary table, the figure and the manifest from every finished cell."""
    run_dir, suite, files, cfg, device, scorer, methods = (p.run_dir, p.suite_name, p.files, p.cfg, p.device,
                                                           p.scorer, p.methods)
    method_configs = p.method_configs
    manifest_path = run_dir / "manifest.json"
    try:
        previous = read_manifest(manifest_path)
    except ValueError as exc:  # a damaged manifest is an output like the tables: rebuilt from the cells
        tqdm.write(f"warning: {manifest_path} was unreadable ({exc}); writing it anew from the finished cells",
                   file=sys.stderr)
        previous = Manifest()
    external = {**previous.external, **p.external}
    suite_config = {"preset": cfg.preset, **get_suite(cfg.suite).presets.get(cfg.preset, {}),
                    "image_size": [files.height, files.width]}
    records: list[MetricRecord] = []
    cells = sorted(run_dir.glob("cells/*/seed*/metrics.json"))
    readable = []
    for path in cells:
        try:
            records += read_cell_metrics(path)
            readable.append(path)
        except ValueError as exc:  # a cell this run did not touch: left for its method's run
            tqdm.write(f"warning: {path} is damaged ({exc}); that cell is left out until its method runs again",
                       file=sys.stderr)
    cells = readable
    # Identity (the raw adverse input) first, then this run's methods in the order asked, then earlier ones.
    found = {r.method for r in records}
    order = [m for m in dict.fromkeys(["identity", *methods, *sorted(found - {REFERENCE_ROW}), REFERENCE_ROW])
             if m in found]
    write_metrics_csv(run_dir / "metrics.csv", records)
    selections = {m: chosen for m in order if m not in external and (chosen := read_selections(run_dir, m))}
    scored = {m: selection_note(selections[m]) if m in selections else FINAL_CHECKPOINT
              for m in order if m not in external and _learned(m)}
    atomic_write_text(run_dir / "tables" / "summary.csv", summary_csv(records, suite))

    idx = np.linspace(0, len(files.test_a) - 1, min(QUALITATIVE_ROWS, len(files.test_a))).round().astype(int)
    shown = [m for m in order if m not in (REFERENCE_ROW, "identity")]  # identity's output is the input column
    rows = []
    for i in sorted(set(idx.tolist())):
        name = Path(files.test_a[i]).stem + ".png"
        row = {"input": files.test_a[i]}
        for method in shown:
            seed_dirs = sorted((run_dir / "cells" / method).glob("seed*"))
            if seed_dirs and (seed_dirs[0] / "translations" / name).is_file():
                row[method] = seed_dirs[0] / "translations" / name
        if files.twins is not None:
            row["day twin"] = files.twins[i]
        rows.append(row)
    columns = ["input", *shown] + (["day twin"] if files.twins is not None else [])
    image_grid(rows, columns, run_dir / "figures" / "qualitative.png")

    cfg_dict = {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(cfg).items()}
    keep = not p.record_config and bool(previous.config)
    manifest = Manifest(
        suite=suite,
        config=previous.config if keep else cfg_dict,
        method_configs={**previous.method_configs, **method_configs},
        suite_config=suite_config,
        seeds=previous.seeds if keep else list(cfg.seeds),
        device=device,
        device_name=torch.cuda.get_device_name() if device.startswith("cuda") else "cpu",
        versions=versions(),
        git_commit=git_commit(),
        suite_root=str(files.root),
        n_test=len(files.test_a),
        image_size=[files.height, files.width],
        data_notes=list(files.notes),
        image_pixel_limit=pixel_limit(),
        weights={**previous.weights, **scorer.weights_used},
        train_engine=asdict(cfg.engine.resolved(device)),
        skipped_metrics={k: v.one_line for k, v in scorer.skipped.items()},
        cells=[str(p.parent.relative_to(run_dir)) for p in cells],
        # The report's per-image figures (uncertainty maps) use the same test images as the grid.
        qualitative={"inputs": [str(r["input"]) for r in rows],
                     "twins": [str(r["day twin"]) for r in rows if "day twin" in r]},
        external=external,
        scored_checkpoint={**previous.scored_checkpoint, **scored},
        selections={**{m: v for m, v in previous.selections.items() if m not in scored}, **selections},
        started=time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(started)),
        finished=time.strftime("%Y-%m-%dT%H:%M:%S"),
        extra=previous.extra,
    )
    write_manifest(manifest_path, manifest)
    # The same table `bench tables` and the report show, from the same records and manifest.
    results = RunResults(run_dir, manifest, records)
    atomic_write_text(run_dir / "tables" / "summary.md", render(compare_table([results]), "md"))
    for why in weak_tasks(results.agg).values():
        tqdm.write(f"warning: {suite}: {why}.", file=sys.stderr)
    return records
