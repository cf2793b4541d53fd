"""``bench train``: one learned method into a run folder's cell, on one process or data parallel.

The checkpoint lands where ``bench run`` looks for it (``<out>/<suite>/<name>/cells/<method>/seed<k>/``),
so a model trained on eight GPUs is then scored by ``bench run`` with the same ``--name`` without
training again. Under torchrun (RANK / WORLD_SIZE set) every process runs this; ``--gpus N`` starts
torchrun itself.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from bench import distributed
from bench.runner import (
    RunConfig,
    RunError,
    cell_dir,
    fit_or_load,
    prepare_out,
    resolve_device,
    resolve_suite,
    run_folder,
    seed_everything,
    training_budget,
)
from bench.translator import build_translator, method_info


def relaunch_with_torchrun(procs: int, argv: list[str]) -> int:
    """This command again under torchrun with ``procs`` processes on this machine; returns its exit status."""
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={procs}",
           "-m", "bench.cli", *argv]
    return subprocess.call(cmd)


def train_cell(cfg: RunConfig, method: str, seed: int) -> Path | None:
    """Train (or resume) the (method, seed) cell of the run ``cfg`` describes (the same config ``bench run`` reads:
    suite, preset, folder, engine, the method's hyperparameters); returns the checkpoint path on rank 0, None on
    other ranks."""
    suite = resolve_suite(cfg.suite, cfg.preset, cfg.data_root)
    try:
        info = method_info(method)
    except LookupError as exc:
        raise RunError(str(exc.args[0])) from None
    if not info.learned:
        raise RunError(f"{method} is not a learned method: there is nothing to train (bench run scores it)")
    ctx = distributed.from_environment()
    device = resolve_device(cfg.device)
    if ctx.enabled and device.startswith("cuda"):
        device = f"cuda:{ctx.local_rank}"
    cfg.engine.resolved(device)  # an engine this device cannot run stops before the data is prepared
    cfg.watch.checked()
    distributed.init_process_group(ctx, device)
    try:
        run_dir = run_folder(cfg.out, suite.name, cfg.name or cfg.preset)
        # Rank 0 renders or validates the suite first; the others then find it ready.
        files = None
        if ctx.is_main:
            prepare_out(run_dir)
            files = suite.prepare(cfg.preset, cfg.data_root, cfg.size)
        ctx.barrier()
        if files is None:
            files = suite.prepare(cfg.preset, cfg.data_root, cfg.size)
        cell = cell_dir(run_dir, method, seed)
        ckpt = cell / "checkpoint.safetensors"
        if ckpt.is_file():
            if ctx.is_main:
                print(f"{ckpt} exists: already trained (delete it to train again)", file=sys.stderr)
            return ckpt if ctx.is_main else None
        budget = training_budget(cfg, files, device, seed, cell)  # before seeding: it must not move the RNG
        seed_everything(seed)
        translator = build_translator(method, preset=cfg.preset, device=device, overrides=cfg.method_options.get(method))
        fit_or_load(translator, files, cell, budget)
        return ckpt if ctx.is_main else None
    finally:
        if ctx.enabled and distributed.dist.is_initialized():
            distributed.dist.destroy_process_group()
