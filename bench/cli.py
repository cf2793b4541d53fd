"""The ``bench`` command line."""

from __future__ import annotations

import errno
import sys
from dataclasses import replace
from pathlib import Path

import click

from bench.translator import PRESETS


_USER_FIXABLE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EACCES, errno.EROFS, errno.EPERM}


class _Cli(click.Group):
    """Turns our own errors into one clear line and exit status 2 (Ctrl-C: 130), never a traceback."""

    def invoke(self, ctx: click.Context):
        from bench.errors import BenchError

        try:
            return super().invoke(ctx)
        except BenchError as exc:
            click.echo(f"{'error' if exc.exit_code == 2 else 'stopped'}: {exc}", err=True)
            sys.exit(exc.exit_code)
        except OSError as exc:
            if exc.errno not in _USER_FIXABLE_ERRNOS:
                raise
            click.echo(f"error: {exc.strerror}: {exc.filename or ''} — no half-written file was left; "
                       "free space or fix permissions, then run the same command again to resume", err=True)
            sys.exit(1)
        except KeyboardInterrupt:
            click.echo("\ninterrupted: finished work is saved; run the same command again to resume", err=True)
            sys.exit(130)


@click.group(cls=_Cli, context_settings={"help_option_names": ["-h", "--help"]})  # every command inherits -h
@click.version_option(package_name="augan-bench")
def main() -> None:
    """augan-bench: adverse-condition (night, rain, fog -> day) image translation benchmark.

    \b
    Example:
      bench run                      # synthetic-night, quick preset, best device
      bench list
    """


def _parse_size(value: str | None) -> tuple[int, int] | None:
    if value is None:
        return None
    try:
        h, w = (int(v) for v in value.lower().split("x"))
    except ValueError:
        raise click.BadParameter(f"{value!r} is not HxW, e.g. 128x256") from None
    if h < 16 or w < 16:
        raise click.BadParameter("images must be at least 16x16")
    return h, w


def _parse_seeds(value: str) -> tuple[int, ...]:
    """0,1,2 or 0-2: seeds >= 0, each once; a range that runs backwards or a list with no seed is refused (it
    would run nothing and exit 0)."""
    usage = "use a comma list (0,1,2) or a rising range (0-2) of seeds >= 0"
    try:
        if "-" in value.strip().lstrip("-") and "," not in value:
            a, b = (int(v) for v in value.split("-"))
            if b < a:
                raise click.BadParameter(f"--seeds {value!r} runs backwards and names no seed; {usage}, e.g. {b}-{a}")
            seeds = tuple(range(a, b + 1))
        else:
            seeds = tuple(int(v) for v in value.split(",") if v.strip())
    except ValueError:
        raise click.BadParameter(f"--seeds {value!r}: {usage}") from None
    if not seeds or min(seeds) < 0 or len(set(seeds)) != len(seeds):
        raise click.BadParameter(f"--seeds {value!r} names {'no seed' if not seeds else 'a negative or repeated seed'}; {usage}")
    return seeds


def _parse_methods(value: str) -> tuple[str, ...]:
    names = tuple(m.strip() for m in value.split(",") if m.strip())
    if not names:  # "--methods ," would otherwise fall back to the suite's defaults without a word
        raise click.BadParameter(f"--methods {value!r} names no method; give a comma list (identity,clahe) or 'all'")
    return names


def _engine_options(fn):
    """Training-engine switches shared by `run` and `train` (recorded in the manifest)."""
    opts = [
        click.option("--precision", type=click.Choice(["fp32", "bf16"]), default="fp32", show_default=True,
                     help="bf16: autocast training steps to bfloat16 (CUDA, or a CPU with AVX-512 BF16 or AMX; refused on other CPUs)."),
        click.option("--compile", "compile_", is_flag=True, help="torch.compile every network before training."),
        click.option("--workers", default=None, type=click.IntRange(0),
                     help="DataLoader processes decoding training batches (default: 4 on CUDA, 0 on the CPU)."),
        click.option("--channels-last/--no-channels-last", default=None,
                     help="Override the method's memory-format choice (default: the method's config)."),
        click.option("--fused-adam/--no-fused-adam", default=None, help="Fused Adam kernels (default: on for CUDA)."),
        click.option("--cudnn-benchmark/--no-cudnn-benchmark", default=None,
                     help="Let cuDNN time its convolution algorithms for the training crop size (default: on for "
                          "CUDA; off gives the same algorithms every run)."),
    ]
    for opt in reversed(opts):
        fn = opt(fn)
    return fn


def _parse_loggers(value: str) -> tuple[str, ...]:
    from bench.training_log import parse_loggers

    return parse_loggers(value)


def _watch_options(fn):
    """What training shows and which checkpoint is scored, shared by `run` and `train` (recorded in the manifest)."""
    opts = [
        click.option("--logger", default="tensorboard", show_default=True, metavar="NAMES",
                     help="Dashboards besides train_log.jsonl: tensorboard (when installed), wandb (offline unless "
                          "WANDB_MODE says otherwise), comma-separated, or none."),
        click.option("--validate/--no-validate", default=True, show_default=True,
                     help="Curves on the suite's validation split during training (KID; mIoU on synthetic suites)."),
        click.option("--val-every", default=None, type=click.IntRange(1),
                     help="Steps between validations (default: the method's checkpoint interval, or the smallest "
                          "multiple of it that validates at most 20 times)."),
        click.option("--val-images", default=16, show_default=True, type=click.IntRange(1),
                     help="Validation images translated each time (the same ones every time)."),
        click.option("--select", default="final", show_default=True, metavar="RULE",
                     help="Which checkpoint is scored: final, or val:METRIC (val:kid, val:miou) for the best "
                          "validated step on the validation split. No rule can look at the test split."),
    ]
    for opt in reversed(opts):
        fn = opt(fn)
    return fn


def _config_options(fn):
    """--config, --set and --print-config, shared by `run` and `train` (bench.config: the one precedence)."""
    opts = [
        click.option("--config", "config_file", type=click.Path(dir_okay=False, path_type=Path), default=None,
                     help="A TOML file of settings (keys as in --print-config; [method.NAME] tables for a method's "
                          "hyperparameters). Flags typed on the command line override it."),
        click.option("--set", "sets", multiple=True, metavar="METHOD.KEY=VALUE",
                     help="A method hyperparameter over its preset, e.g. --set cyclegan.lambda_cycle=5 (repeatable; "
                          "checked against the method's config)."),
        click.option("--print-config", is_flag=True, help="Print the resolved configuration as TOML and exit."),
    ]
    for opt in reversed(opts):
        fn = opt(fn)
    return fn


# CLI parameter -> (RunConfig field path, parser). Only parameters typed on the command line become a layer.
_RUN_FIELDS = {
    "suite": ("suite", None), "methods": ("methods", _parse_methods),
    "preset": ("preset", None), "seeds": ("seeds", _parse_seeds), "device": ("device", None),
    "data_root": ("data_root", None), "out": ("out", None), "name": ("name", None),
    "size": ("size", _parse_size), "batch_size": ("batch_size", None), "force": ("force", None),
    "segmenter": ("segmenter", None), "segmenter_size": ("segmenter_size", _parse_size),
    "detector": ("detector", None), "max_steps": ("max_steps", None),
    "precision": ("engine.precision", None), "compile_": ("engine.compile", None), "workers": ("engine.workers", None),
    "channels_last": ("engine.channels_last", None), "fused_adam": ("engine.fused_adam", None),
    "cudnn_benchmark": ("engine.cudnn_benchmark", None), "launcher": ("launch.launcher", None),
    "logger": ("watch.logger", _parse_loggers), "validate": ("watch.validate", None),
    "val_every": ("watch.val_every", None), "val_images": ("watch.val_images", None), "select": ("watch.select", None),
    "jobs": ("launch.jobs", None), "partition": ("launch.partition", None),
    "gpus_per_job": ("launch.gpus_per_job", None), "cpus_per_job": ("launch.cpus_per_job", None),
    "array_parallelism": ("launch.array_parallelism", None), "timeout_min": ("launch.timeout_min", None),
    "slurm_cluster": ("launch.cluster", None),
}


def _resolved_run_config(ctx: click.Context, config_file: Path | None, sets: tuple[str, ...]):
    """defaults < preset < --config FILE < flags typed on the command line (bench.config)."""
    from click.core import ParameterSource

    from bench import config
    from bench.runner import RunConfig
    from bench.suites import default_preset

    flags: dict = {}
    for param, (path, parse) in _RUN_FIELDS.items():
        if param not in ctx.params or ctx.get_parameter_source(param) != ParameterSource.COMMANDLINE:
            continue
        value = ctx.params[param]
        value = parse(value) if parse is not None and value is not None else value
        *tables, key = path.split(".")
        layer = flags
        for t in tables:
            layer = layer.setdefault(t, {})
        layer[key] = value
    from_file = config.read_config_file(config_file) if config_file is not None else {}
    method_tables = from_file.pop(config.METHOD_TABLE, {})
    merged = config.merge(from_file, flags)
    merged.setdefault("preset", default_preset(merged.get("suite", RunConfig.suite)))
    cfg = config.apply(RunConfig(), merged, f"config{f' ({config_file})' if config_file else ''}")
    options = config.merge(method_tables, config.parse_set(sets))
    return replace(cfg, method_options=options) if options else cfg


def _printable_config(cfg, methods: list[str]) -> str:
    """``--print-config``'s TOML, after the checks `bench run` makes of the method settings before training: what
    is printed must run."""
    from bench.config import to_toml
    from bench.runner import resolved_method_configs

    resolved_method_configs(cfg, methods, only_set=True)
    return to_toml(cfg, cfg.method_options)


@main.command()
@click.option("--suite", default="synthetic-night", show_default=True, help="Suite name (see `bench list`) or folder:PATH.")
@click.option("--methods", default="", help="Comma list of methods, or 'all'. Default: the suite's default methods.")
@click.option("--preset", type=click.Choice(PRESETS), default=None,
              help="smoke (seconds, for tests), quick (minutes on a CPU), paper (published schedules and sizes). "
                   "Default: paper for the published datasets (BDD100K, ACDC, Dark Zurich, Alderley), else quick.")
@click.option("--seeds", default="0", show_default=True, help="Training seeds: 0,1,2 or 0-2. Deterministic methods run once.")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N.")
@click.option("--data-root", type=click.Path(path_type=Path), default=None, help="Dataset folder for real-data suites.")
@click.option("--out", type=click.Path(path_type=Path), default=Path("results"), show_default=True, help="Results folder.")
@click.option("--name", default=None, help="Run folder name (default: the preset). Re-running a name resumes it.")
@click.option("--size", default=None, help="Image size HxW for synthetic suites (default per preset, quick: 128x256).")
@click.option("--batch-size", default=16, show_default=True, type=click.IntRange(1), help="Translation/scoring batch size.")
@click.option("--force", is_flag=True, help="Redo finished cells instead of skipping them.")
@click.option("--segmenter", default=None, metavar="SPEC",
              help="Pretrained segmenter for mIoU: 'default' (the pinned mmseg DeepLabV3 R-18-D8 Cityscapes of the "
                   "published BDD100K protocol), torchvision:ARCH:CKPT, segformer:DIR or mmseg:CONFIG:CKPT "
                   "(unset: the suite's own; synthetic suites train theirs).")
@click.option("--segmenter-size", default=None, metavar="HxW",
              help="Run the segmenter at this size (e.g. 512x1024); predictions are resized back. Default: native.")
@click.option("--detector", default=None, metavar="SPEC",
              help="Pretrained detector for mAP: 'default' (the pinned torchvision COCO Faster R-CNN R50-FPN v2) or "
                   "torchvision:ARCH:CKPT with COCO labels (unset: the suite's own; synthetic suites train theirs).")
@_engine_options
@_watch_options
@click.option("--launcher", type=click.Choice(["none", "local", "slurm"]), default="none", show_default=True,
              help="Where cells run: here one by one, as --jobs local processes, or one Slurm job per cell.")
@click.option("--jobs", default=1, show_default=True, type=click.IntRange(1), help="--launcher local: cells at once.")
@click.option("--partition", default=None, help="--launcher slurm: the Slurm partition.")
@click.option("--gpus-per-job", default=1, show_default=True, type=click.IntRange(0), help="--launcher slurm.")
@click.option("--cpus-per-job", default=8, show_default=True, type=click.IntRange(1), help="--launcher slurm.")
@click.option("--array-parallelism", default=None, type=click.IntRange(1),
              help="--launcher slurm: at most this many cells at once.")
@click.option("--timeout-min", default=24 * 60, show_default=True, type=click.IntRange(1),
              help="--launcher slurm: the time limit of each job.")
@click.option("--slurm-cluster", type=click.Choice(["slurm", "local"]), default="slurm", hidden=True,
              help="'local': submitit's local executor stands in for Slurm (tests).")
@click.option("--max-steps", default=None, type=click.IntRange(1),
              help="Train each learned method this many steps (default: its preset's schedule).")
@_config_options
@click.pass_context
def run(ctx, config_file, sets, print_config, **_flags) -> None:
    """Train or load each method, translate the suite's test images, score, and write tables and figures.

    \b
    Examples:
      bench run
      bench run --suite synthetic-fog --methods identity,clahe --preset smoke
      bench run --suite folder:/data/night2day --methods all --device cuda
      bench run --suite folder:/data/n2d --segmenter segformer:~/models/segformer-b0-cityscapes
      bench run --methods all --seeds 0-2 --launcher slurm --partition gpu --array-parallelism 16
      bench run --methods cyclegan --set cyclegan.lambda_cycle=5 --print-config > run.toml
      bench run --config run.toml
    """
    from bench.runner import run as run_benchmark

    cfg = _resolved_run_config(ctx, config_file, sets)
    if print_config:
        from bench.runner import resolve_methods
        from bench.suites import get_suite

        click.echo(_printable_config(cfg, resolve_methods(cfg.methods, get_suite(cfg.suite).default_methods)), nl=False)
        return
    summary = run_benchmark(cfg)
    click.echo(f"finished {len(summary.done)} cell(s), reused {len(summary.skipped)} finished cell(s)")
    click.echo((summary.run_dir / "tables" / "summary.md").read_text())
    click.echo(f"results: {summary.run_dir}")


@main.command()
@click.option("--suite", default="synthetic-night", show_default=True, help="The suite whose test split was translated.")
@click.option("--translations", type=click.Path(path_type=Path), required=True,
              help="Folder of translations made by any code: one image per test input, named like it (testA/0003.png "
                   "-> 0003.png or 0003.jpg), at the input's size.")
@click.option("--method", required=True, help="The name the outside method gets in the tables (e.g. cyclegan-turbo).")
@click.option("--preset", type=click.Choice(PRESETS), default=None,
              help="The protocol's preset (default: paper for the published datasets, else quick, as bench run).")
@click.option("--data-root", type=click.Path(path_type=Path), default=None, help="Dataset folder for real-data suites.")
@click.option("--size", default=None, help="Image size HxW for synthetic suites (as bench run --size).")
@click.option("--out", type=click.Path(path_type=Path), default=Path("results"), show_default=True, help="Results folder.")
@click.option("--name", default=None,
              help="Run folder name (default: the preset): the folder of a `bench run` puts the method beside its methods.")
@click.option("--protocol", "protocol", type=click.Path(path_type=Path), default=None,
              help="The protocol.json of `bench data export`: refuse unless the local suite data is the exported data.")
@click.option("--allow-missing", is_flag=True, help="Score the test inputs that have a translation; the skips are counted "
                                                     "in the manifest and the table notes.")
@click.option("--resize-to-input", is_flag=True,
              help="Resize translations of another size to their input's (PIL bicubic, recorded), e.g. 512x512 outputs.")
@click.option("--allow-aspect-change", is_flag=True,
              help="With --resize-to-input: also stretch back translations of another aspect ratio (refused without "
                   "it: they no longer line up with their inputs). Recorded in the manifest and the table notes.")
@click.option("--no-bounds", "bounds", is_flag=True, flag_value=False, default=True,
              help="Do not add the identity (raw input) and day-twin rows when the run lacks them (no gap recovered).")
@click.option("--force", is_flag=True, help="Score again even when the folder's content is the one scored before.")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N.")
@click.option("--batch-size", default=16, show_default=True, type=click.IntRange(1), help="Scoring batch size.")
@click.option("--segmenter", default=None, metavar="SPEC", help="Pretrained segmenter for mIoU (as bench run).")
@click.option("--segmenter-size", default=None, metavar="HxW", help="Run the segmenter at this size (as bench run).")
@click.option("--detector", default=None, metavar="SPEC", help="Pretrained detector for mAP (as bench run).")
@click.option("--json", "as_json", is_flag=True, help="Print the scored cell's numbers as JSON on stdout.")
def score(as_json, size, segmenter_size, **settings) -> None:
    """Score translations made by your own code with the suite's whole protocol, into a cell of a run.

    \b
    Examples:
      bench data export --suite synthetic-night --preset smoke --out proto/
      my_translate proto/testA/ out/            # your code, any framework
      bench score --suite synthetic-night --preset smoke --translations out/ --method mine --protocol proto/protocol.json
      bench score --suite bdd100k-night --data-root /data/bdd100k --translations turbo/ --method cyclegan-turbo \\
          --resize-to-input --json
    """
    from bench.external import config_from, score as score_folder
    from bench.report.runs import load_run

    translations, method = settings.pop("translations"), settings.pop("method")
    cfg = config_from(translations, method, size=_parse_size(size), segmenter_size=_parse_size(segmenter_size),
                      **settings)
    run_dir = score_folder(cfg)
    run = load_run(run_dir)
    if as_json:
        from dataclasses import asdict

        from bench.atomic import json_text

        records = [asdict(r) for r in run.records if r.method == cfg.method]
        click.echo(json_text({"run": str(run_dir), "method": cfg.method, "external": run.manifest.external.get(
            cfg.method, {}), "records": records}))
        return
    click.echo((run_dir / "tables" / "summary.md").read_text())
    click.echo(f"results: {run_dir}")


@main.command()
@click.option("--suite", default="synthetic-night", show_default=True, help="Suite name or folder:PATH.")
@click.option("--method", required=True, help="A learned method (see `bench list`).")
@click.option("--preset", type=click.Choice(PRESETS), default=None,
              help="Default: paper for the published datasets, else quick (as bench run).")
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--device", default="auto", show_default=True, help="auto, cpu or cuda (each process takes its own GPU).")
@click.option("--data-root", type=click.Path(path_type=Path), default=None)
@click.option("--out", type=click.Path(path_type=Path), default=Path("results"), show_default=True)
@click.option("--name", default=None, help="Run folder name (default: the preset): `bench run` with the same name "
                                           "then scores this checkpoint instead of training again.")
@click.option("--size", default=None, help="Image size HxW for synthetic suites.")
@click.option("--max-steps", default=None, type=click.IntRange(1), help="Train this many steps (default: the preset).")
@click.option("--gpus", "procs", default=1, show_default=True, type=click.IntRange(1),
              help="Data-parallel processes (one per GPU; with --device cpu, CPU processes over gloo). "
                   "Under torchrun, torchrun decides and this is ignored.")
@_engine_options
@_watch_options
@_config_options
@click.pass_context
def train(ctx, method, seed, procs, config_file, sets, print_config, **_flags) -> None:
    """Train one method into a run folder's cell, on one or several GPUs (data parallel).

    The per-process batch is the preset's; N processes train with an N-times larger global batch.

    \b
    Examples:
      bench train --method augan --preset paper --gpus 8 --precision bf16
      torchrun --nproc-per-node 8 -m bench.cli train --method cyclegan --preset paper
      bench run --methods augan --preset paper      # then scores the trained checkpoint
    """
    import os

    from bench.train import relaunch_with_torchrun, train_cell

    cfg = _resolved_run_config(ctx, config_file, sets)
    if print_config:
        click.echo(_printable_config(cfg, [method]), nl=False)
        return
    if procs > 1 and "WORLD_SIZE" not in os.environ:
        sys.exit(relaunch_with_torchrun(procs, sys.argv[1:]))
    path = train_cell(cfg, method, seed)
    if path is not None:
        click.echo(f"wrote {path}")


@main.command()
@click.option("--method", required=True, help="Method name (see `bench list`).")
@click.option("--checkpoint", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="A .safetensors checkpoint (e.g. results/<suite>/<run>/cells/<method>/seed0/checkpoint.safetensors), "
                   "or a published .pth state dict the method knows (read with weights_only=True). Not needed by "
                   "methods without state (identity, clahe).")
@click.option("--input", "input_dir", type=click.Path(exists=True, file_okay=False, path_type=Path), required=True,
              help="Folder of adverse images (any size).")
@click.option("--output", "output_dir", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Folder for the translations (made if missing; a file there is refused).")
@click.option("--save-uncertainty", is_flag=True, help="Also write <name>_sigma.npy and a <name>_sigma.png view (AU-GAN).")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N.")
@click.option("--batch-size", default=8, show_default=True, type=click.IntRange(1))
@click.option("--stretch-input", is_flag=True,
              help="Stretch each input to span 0..255 first, as AU-GAN's and ForkGAN's test scripts do "
                   "(scipy.misc.imresize). Off in bench run.")
@click.option("--minmax-output", is_flag=True,
              help="Stretch each output to span 0..255 before saving, as UNIT's and MUNIT's test scripts do "
                   "(save_image(normalize=True)). Off in bench run.")
@click.option("--set", "sets", multiple=True, metavar="METHOD.KEY=VALUE",
              help="A setting of the method's config, e.g. --set cyclegan-turbo.image_prep=native (repeatable).")
@click.option("--style-samples", default=1, show_default=True, type=click.IntRange(1),
              help="Multimodal methods (MUNIT): write K translations per image, NAME_style<k>.png, one per seeded "
                   "style code (style 0 is the one bench run scores).")
def translate(method, checkpoint, input_dir, output_dir, save_uncertainty, device, batch_size, stretch_input,
              minmax_output, style_samples, sets) -> None:
    """Translate a folder of adverse images with a trained checkpoint, at each image's own size.

    \b
    Example:
      bench translate --method augan --checkpoint ckpt.safetensors --input night/ --output day/ --save-uncertainty
    """
    from bench.data.io import list_images, refuse_output_name_clashes
    from bench.runner import RunError, claim_output_folder, resolve_device, translate_folder
    from bench.translator import build_translator, load_translator
    from bench.weights import file_sha256

    from bench.config import parse_set

    options = parse_set(sets)
    other = sorted(set(options) - {method})
    if other:
        raise RunError(f"--set for {', '.join(other)}, but this command translates with {method}")
    dev = resolve_device(device)
    if checkpoint is None:
        translator = build_translator(method, device=dev, overrides=options.get(method))
        if not (hasattr(translator, "checkpoint_needed") and translator.checkpoint_needed is None):
            why = getattr(translator, "checkpoint_needed", None) or (
                "it is trained: give --checkpoint, a cell's checkpoint.safetensors from `bench run` or `bench train`, "
                "or the authors' published file (`bench weights list`)")
            raise RunError(f"--method {method} needs --checkpoint: {why}")
    else:  # the checkpoint, not a preset, decides the architecture
        translator = load_translator(method, checkpoint, dev, overrides=options.get(method))
    inputs = list_images(input_dir)
    if not inputs:
        raise RunError(f"{input_dir} holds no images")
    refuse_output_name_clashes(inputs)
    claim_output_folder(output_dir, {"method": method,
                                     "checkpoint_sha256": file_sha256(Path(checkpoint)) if checkpoint else "none",
                                     "style_samples": str(style_samples), "stretch_input": str(stretch_input),
                                     "minmax_output": str(minmax_output)})
    if save_uncertainty and not hasattr(translator, "uncertainty"):
        raise RunError(f"method {method!r} has no uncertainty map")
    if style_samples > 1:
        if stretch_input or minmax_output:
            raise RunError("--stretch-input and --minmax-output apply to one translation per image, not --style-samples")
        if not hasattr(translator, "translate_styles"):
            raise RunError(f"method {method!r} is not multimodal: --style-samples needs e.g. munit")
        from bench.data.io import read_rgb, to_tensor, to_uint8, write_png

        for path in inputs:
            outs = translator.translate_styles(to_tensor(read_rgb(path))[None].to(dev), style_samples)
            for k, out in enumerate(outs):
                write_png(Path(output_dir) / f"{Path(path).stem}_style{k}.png", to_uint8(out[0]))
        click.echo(f"translated {len(inputs)} image(s) x {style_samples} styles into {output_dir}")
        return
    translate_folder(translator, inputs, output_dir, dev, batch_size, uncertainty=save_uncertainty,
                     stretch_input=stretch_input, minmax_output=minmax_output)
    click.echo(f"translated {len(inputs)} image(s) into {output_dir}")


@main.command(name="import-checkpoint")
@click.argument("method")
@click.option("--tf-checkpoint", type=click.Path(exists=True, path_type=Path), required=True,
              help="The authors' TensorFlow checkpoint: a folder with a 'checkpoint' file, or a checkpoint prefix.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True, help="Output .safetensors file.")
def import_checkpoint(method, tf_checkpoint, out) -> None:
    """Convert a method's official checkpoint into ours (needs `pip install tensorflow-cpu`).

    \b
    Example:
      bench import-checkpoint augan --tf-checkpoint check/bdd_exp/bdd100k_256 --out augan-bdd100k.safetensors
      bench translate --method augan --checkpoint augan-bdd100k.safetensors --input night/ --output day/
    """
    from safetensors.torch import save

    from bench.atomic import atomic_write_bytes
    from bench.runner import RunError
    from bench.translator import build_translator

    translator = build_translator(method)
    if not hasattr(translator, "import_tf_checkpoint"):
        raise RunError(f"method {method!r} has no importer for official TensorFlow checkpoints")
    translator.import_tf_checkpoint(tf_checkpoint)
    atomic_write_bytes(out, save({k: v.contiguous() for k, v in translator.state_dict().items()}))
    click.echo(f"wrote {out} ({method}, converted from {tf_checkpoint})")


@main.command(name="new-method")
@click.argument("name")
@click.option("--dest", "--root", "root", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="The project to write into: a folder with a baselines/ package (default: the current folder). "
                   "Never the installed package.")
def new_method(name, root) -> None:
    """Scaffold baselines/NAME/ with a working minimal translator, and tests/test_NAME.py.

    \b
    Example:
      bench new-method my-gan && python -m pytest tests/test_my_gan.py && bench run --methods identity,my-gan
    """
    from bench.scaffold import new_method as scaffold

    for path in scaffold(name, root or Path.cwd()):
        click.echo(f"wrote {path}")
    click.echo("next: edit the model, run its test, then `bench run --methods identity," + name + "` "
               "(docs/adding-a-baseline.md)")


@main.command()
@click.option("--run", "runs", multiple=True, type=click.Path(path_type=Path), metavar="RUN",
              help="A run folder (results/<suite>/<name>); repeat to compare runs.")
@click.option("--paper", default=None, metavar="ID|FILE",
              help="A published table to set beside the runs (an id from `bench tables --paper list`, or a .toml file).")
@click.option("--metrics", default="", help="Comma list of metrics to compare (default: every headline metric).")
@click.option("--vs", "baseline", default=None, metavar="METHOD",
              help="Each method's paired difference to METHOD, with its 95% CI and Holm-corrected p (one run).")
@click.option("--aggregate", is_flag=True,
              help="Rank methods over the runs' suites: mean rank, Friedman test, Wilcoxon-Holm pairs, and a "
                   "critical-difference figure per metric (written into --out).")
@click.option("--format", "fmt", type=click.Choice(["md", "tex", "csv", "json"]), default="md", show_default=True,
              help="What to print.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Also write the table as NAME.md, NAME.tex, NAME.csv and NAME.json into this folder.")
def tables(runs, paper, metrics, baseline, aggregate, fmt, out) -> None:
    """Tables across runs, or a paper's table with reported and reproduced numbers side by side.

    \b
    Examples:
      bench tables --paper n2d3-table1 --run results/bdd100k-night/paper --run results/alderley/paper
      bench tables --run results/synthetic-night/quick --run results/synthetic-night/seeds --format tex
      bench tables --run results/synthetic-night/quick --vs identity     # differences to a baseline, with p
      bench tables --run results/synthetic-night/quick --run results/synthetic-fog/quick --aggregate --out agg
      bench tables --paper list           # the published tables on file
    """
    from bench.atomic import atomic_write_text
    from bench.report.compare import compare_table
    from bench.report.paper import available_papers, load_paper, paper_table
    from bench.report.render import FORMATS, render
    from bench.report.runs import load_run

    if paper == "list":
        for pid in available_papers():
            p = load_paper(pid)
            click.echo(f"  {pid:<16} {p.title}\n  {'':<16} source: {p.source}")
        return
    if not runs and paper is None:
        raise click.UsageError("give --run RUN (repeatable) and/or --paper ID")
    if sum(bool(x) for x in (paper, baseline, aggregate)) > 1:
        raise click.UsageError("--paper, --vs and --aggregate make different tables: give one of them")
    loaded = [load_run(r) for r in runs]
    chosen = [m.strip() for m in metrics.split(",") if m.strip()] or None
    figures = []
    if paper is not None:
        table, name = paper_table(load_paper(paper), loaded), load_paper(paper).id
    elif baseline is not None:
        if len(loaded) != 1:
            raise click.UsageError("--vs compares the methods of one run: give one --run")
        from bench.report.comparisons import versus_table

        table, name = versus_table(loaded[0], baseline, chosen), f"vs-{baseline}"
    elif aggregate:
        from bench.report.comparisons import aggregate_table

        table, rankings = aggregate_table(loaded, chosen)
        name = "aggregate"
        if out is not None:
            from bench.report.figures import critical_difference

            for r in rankings:
                figures += critical_difference(r, out / f"critical-difference-{r.metric.replace('/', '-')}.png")
    else:
        table, name = compare_table(loaded, chosen), "comparison"
    click.echo(render(table, fmt), nl=False)
    if out is not None:
        for f in FORMATS:
            atomic_write_text(out / f"{name}.{f}", render(table, f))
        click.echo(f"wrote {out}/{name}.{{{','.join(FORMATS)}}}", err=True)
        for path in figures:
            click.echo(f"wrote {path}", err=True)
    elif aggregate:
        click.echo("give --out DIR to also write the critical-difference figures", err=True)


@main.command()
@click.argument("run_dir", metavar="RUN", type=click.Path(path_type=Path))
@click.option("--a", "a", required=True, metavar="METHOD", help="The first method (the difference is A − B).")
@click.option("--b", "b", required=True, metavar="METHOD", help="The second method.")
@click.option("--metric", "metrics", multiple=True, metavar="M", help="A metric (repeatable; default: every one both have).")
@click.option("--run", "other", type=click.Path(path_type=Path), default=None, metavar="RUN2",
              help="Take B from this run folder instead (the two runs must share the protocol).")
@click.option("--json", "as_json", is_flag=True, help="Print the comparisons as strict JSON.")
def compare(run_dir, a, b, metrics, other, as_json) -> None:
    """The paired difference A − B on each metric: its 95% CI and two-sided p from the shared resamples.

    \b
    Examples:
      bench compare results/synthetic-night/quick --a clahe --b histmatch
      bench compare results/synthetic-night/quick --a mine --b cut --run results/synthetic-night/theirs --metric miou
    """
    from bench.atomic import json_text
    from bench.report.comparisons import compare_pair, pair_lines
    from bench.report.runs import load_run

    run_a = load_run(run_dir)
    run_b = load_run(other) if other is not None else run_a
    results = compare_pair(run_a, a, run_b, b, list(metrics) or None)
    if as_json:
        click.echo(json_text([{"metric": m, "a": a, "b": b, "run_a": str(run_a.path), "run_b": str(run_b.path),
                               "difference": d.difference, "ci_low": d.ci[0], "ci_high": d.ci[1], "p": d.p,
                               "resamples": d.resamples} for m, d in results]))
        return
    click.echo(f"{run_a.label}" + (f" vs {run_b.label}" if run_b is not run_a else "") + ":")
    for line in pair_lines(a, b, results):
        click.echo("  " + line)


@main.command()
@click.argument("run_dir", metavar="RUN", type=click.Path(path_type=Path))
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="A results repository (or any folder): writes protocols/ID.json and submissions/ID/METHOD.json.")
@click.option("--method", "methods", multiple=True, metavar="M", help="A method to pack (repeatable; default: all).")
@click.option("--description", default="", help="Free text shown on the method's page.")
@click.option("--url", default="", help="The method's code or paper (shown as text).")
@click.option("--replace", is_flag=True, help="Overwrite submissions of these methods already in OUT.")
def pack(run_dir, out, methods, description, url, replace) -> None:
    """A run's methods as leaderboard submission files (strict JSON: numbers, CIs, replicates, per-image values).

    \b
    Examples:
      bench pack results/synthetic-night/quick --out my-board
      bench pack results/bdd100k-night/mine --method mine --out board-repo --url https://github.com/me/mine
    """
    from bench.leaderboard.pack import pack as pack_run

    for path in pack_run(run_dir, out, list(methods) or None, description, url, replace):
        click.echo(f"wrote {path}")


@main.group()
def leaderboard() -> None:
    """Leaderboards from submission files: init a results repository, check its files, build the page."""


@leaderboard.command("init")
@click.argument("root", metavar="DIR", type=click.Path(file_okay=False, path_type=Path))
def leaderboard_init(root) -> None:
    """Write a results repository's layout: protocols/, submissions/, a README on submitting, a CI check."""
    from bench.leaderboard.repository import CHECK_COMMAND, init

    for path in init(root):
        click.echo(f"wrote {path}")
    click.echo(f"next: cd {root} && git init && git add . && git commit -m 'leaderboard'; CI runs `{CHECK_COMMAND}`")


@leaderboard.command("check")
@click.argument("root", metavar="DIR", type=click.Path(file_okay=False, path_type=Path))
@click.option("--allow-substitute", is_flag=True,
              help="Accept numbers made with substitute weights (offline trials only; the board marks them †).")
def leaderboard_check(root, allow_substitute) -> None:
    """Recompute every submission under DIR from its own values; exit 1 naming each file and field that fails."""
    from bench.leaderboard.check import check

    result = check(root, allow_substitute)
    for line in result.problems:
        click.echo(line)
    click.echo(f"{len(result.submissions)} submission(s) on {len(result.protocols)} protocol(s) passed; "
               f"{len(result.problems)} problem(s)", err=True)
    if not result.ok:
        raise SystemExit(1)


@leaderboard.command("build")
@click.argument("root", metavar="DIR", type=click.Path(file_okay=False, path_type=Path))
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True, help="The site folder to write.")
@click.option("--allow-substitute", is_flag=True, help="As for check (offline trials only).")
def leaderboard_build(root, out, allow_substitute) -> None:
    """Check DIR's submissions, then write OUT/index.html, leaderboard.json, leaderboard.csv and a page each."""
    from bench.leaderboard.board import build, entry
    from bench.leaderboard.check import check
    from bench.leaderboard.site import write_board

    result = check(root, allow_substitute, keep=entry)
    if not result.ok:
        for line in result.problems:
            click.echo(line)
        click.echo(f"not built: {len(result.problems)} problem(s); `bench leaderboard check {root}` lists them", err=True)
        raise SystemExit(1)
    tabs = build(result)
    write_board(tabs, out)
    click.echo(f"wrote {out / 'index.html'}: {sum(len(t.rows) for t in tabs)} submission(s) on {len(tabs)} protocol(s)")


@main.command()
@click.argument("run_dir", metavar="RUN", type=click.Path(path_type=Path))
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="HTML file to write (default: RUN/report.html).")
@click.option("--uncertainty-rows", default=3, show_default=True, type=click.IntRange(0),
              help="Test images shown with AU-GAN's uncertainty maps.")
@click.option("--device", default="auto", show_default=True, help="Device for the uncertainty maps.")
def report(run_dir, out, uncertainty_rows, device) -> None:
    """Write one self-contained HTML report of a run (figures also as PNG and PDF in RUN/figures/).

    \b
    Example:
      bench report results/synthetic-night/quick
    """
    from bench.report.html import build_report
    from bench.runner import resolve_device

    path = build_report(run_dir, out, uncertainty_rows=uncertainty_rows, device=resolve_device(device))
    click.echo(f"wrote {path}")


@main.command(name="list")
def list_cmd() -> None:
    """List suites, methods and metrics, each with a one-line description.

    \b
    Example:
      bench list
    """
    from bench.metrics import METRICS
    from bench.suites import SUITES
    from bench.translator import available_methods, broken_methods

    click.echo("Suites:")
    for s in SUITES.values():
        click.echo(f"  {s.name:<22} {s.description}")
    click.echo(f"  {'folder:PATH':<22} your data in the trainA/ trainB/ testA/ testB/ layout")
    click.echo("Methods:")
    for m in available_methods().values():
        kind = "learned" if m.learned else "not trained"
        click.echo(f"  {m.name:<22} [{kind}] {m.description}")
    for name, why in broken_methods().items():
        click.echo(f"  {name:<22} [failed to load] {why}")
    click.echo("Metrics:")
    for m in METRICS.values():
        click.echo(f"  {m.name:<22} {m.arrow} {m.description}")


@main.group()
def data() -> None:
    """Inspect and export datasets.

    \b
    Example:
      bench data synth --suite synthetic-rain --out /tmp/rain --n-train 8 --n-test 4
    """


@data.command()
@click.option("--suite", default="synthetic-night", show_default=True,
              type=click.Choice(["synthetic-night", "synthetic-rain", "synthetic-fog"]))
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Folder to write the suite into.")
@click.option("--n-train", default=16, show_default=True, type=click.IntRange(1), help="Training images per domain.")
@click.option("--n-test", default=8, show_default=True, type=click.IntRange(1), help="Test scenes (adverse + day twin).")
@click.option("--size", default="128x256", show_default=True, help="Image size HxW.")
@click.option("--seed", default=0, show_default=True, help="Data seed (the embedded suites use 0).")
def synth(suite, out, n_train, n_test, size, seed) -> None:
    """Write a synthetic suite to a folder: trainA/ trainB/ testA/ testB/ (day twins), testA_labels/, boxes.

    \b
    Example:
      bench data synth --suite synthetic-night --out /tmp/night --n-train 8 --n-test 4 --size 128x256
    """
    from bench.suites import get_suite
    from bench.suites.synthetic import materialize

    h, w = _parse_size(size)  # type: ignore[misc]
    files = materialize(get_suite(suite).condition, n_train, n_test, h, w, seed, root=out)
    click.echo(f"wrote {len(files.train_a)} + {len(files.train_b)} training and {len(files.test_a)} test scenes to {out}")


@data.command()
@click.option("--suite", required=True, help="A real-data suite (bdd100k-night, ...) or folder:PATH.")
@click.option("--data-root", type=click.Path(path_type=Path), default=None,
              help="The dataset folder (default: the suite's environment variable).")
def check(suite, data_root) -> None:
    """Counts per split, missing or corrupt files, image sizes, and the metrics the data allows.

    Exits 1 when a problem was found.

    \b
    Example:
      bench data check --suite bdd100k-night --data-root /data/bdd100k
    """
    from bench.suites.check import check_suite

    lines = check_suite(suite, data_root)
    click.echo("\n".join(lines))
    sys.exit(0 if "problems: none found" in lines else 1)


@data.command(name="export")
@click.option("--suite", required=True, help="A suite name (see `bench list`) or folder:PATH.")
@click.option("--preset", type=click.Choice(PRESETS), default=None,
              help="Default: paper for the published datasets, else quick (as bench run).")
@click.option("--data-root", type=click.Path(path_type=Path), default=None, help="Your copy of a real-data suite.")
@click.option("--size", default=None, help="Image size HxW for synthetic suites (as bench run --size).")
@click.option("--out", type=click.Path(path_type=Path), required=True, help="A new folder for the export.")
def export(suite, preset, data_root, size, out) -> None:
    """The exact test inputs a method is fed, the reference set, twins, labels and boxes, and protocol.json.

    Translate OUT/testA/ with your own code, then `bench score --translations ... --protocol OUT/protocol.json`.

    \b
    Example:
      bench data export --suite synthetic-night --preset smoke --out /tmp/night-smoke
      bench data export --suite bdd100k-night --data-root /data/bdd100k --out bdd-night-paper
    """
    from bench.external import export_suite

    protocol = export_suite(suite, out, preset, data_root, _parse_size(size))
    kinds = sorted({name.split("/")[0] for name in protocol["files"]})
    click.echo(f"wrote {len(protocol['files'])} files ({', '.join(kinds)}"
               f"{', testA_boxes.json' if protocol.get('boxes') else ''}) and protocol.json to {out}")
    click.echo(f"protocol {protocol['protocol_id']}: {protocol['suite']}, preset {protocol['preset']}, "
               f"{protocol['n_test']} test inputs")


@main.group()
def weights() -> None:
    """Pretrained weight files: what each metric needs, where it goes, whether it is present.

    \b
    Example:
      bench weights list
    """
    from bench.translator import available_methods

    available_methods()  # methods register the files they use when imported (CycleGAN-Turbo's checkpoints)


@weights.command(name="list")
def weights_list() -> None:
    """Each pretrained file, its expected hash prefix, its URL, and what uses it.

    \b
    Example:
      bench weights list
    """
    from bench.weights import WEIGHTS

    for wf in WEIGHTS.values():
        click.echo(f"{wf.key}\n  file:    {wf.filename}\n  expect:  {wf.expected}\n  url:     {wf.url}\n  used by: {wf.used_by}")


@weights.command(name="where")
def weights_where() -> None:
    """Where each file is looked for (put it there for offline use).

    \b
    Example:
      bench weights where
    """
    from bench.weights import WEIGHTS, candidate_paths


    for wf in WEIGHTS.values():
        click.echo(f"{wf.filename}:")
        for p in candidate_paths(wf):
            click.echo(f"  {p}")


@weights.command(name="check")
def weights_check() -> None:
    """Hash every file that is present; exit 1 if a required one is missing or any is not the published file.

    \b
    Example:
      bench weights check
    """
    from bench.weights import WEIGHTS, WeightsMissing, resolve


    ok = True
    for wf in WEIGHTS.values():
        try:
            r = resolve(wf, download=False)
        except WeightsMissing as exc:
            ok &= wf.optional
            click.echo(f"{'absent' if wf.optional else 'MISSING':<9} {wf.filename}: {exc.fix}"
                       + (" (optional: only its metrics are skipped)" if wf.optional else ""))
            continue
        status = "ok" if r.verified else "MISMATCH"
        ok &= r.verified
        click.echo(f"{status:<9} {r.path} sha256 {r.sha256[:16]}... (expected {wf.expected})")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
