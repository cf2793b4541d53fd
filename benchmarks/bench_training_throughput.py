"""Training throughput (img/s) of our learned methods (CycleGAN and AU-GAN by default; any of them with --methods),
per precision and batch, beside a reference CycleGAN.

    python benchmarks/bench_training_throughput.py --device cuda [--size 256x512] [--batches 1,8]
        [--precisions fp32,bf16] [--compile] [--steps 30] [--warmup 10] [--methods cyclegan,augan]
        [--reference PATH/TO/pytorch-CycleGAN-and-pix2pix-or-CUT-checkout]

Training step only (generator and discriminator updates), on the same pre-made batches for every
contender, timed over ``--steps`` steps after ``--warmup`` steps with one device sync at each end
(no per-step sync: the losses stay on the device). Our methods run their ``paper`` architecture with
the engine settings named in each row (precision, channels_last, fused Adam, optional compile).
cuDNN autotuning (cudnn.benchmark) is on for every contender on CUDA, as in ``bench train`` and in
the reference's own BaseModel.

With ``--reference`` the official implementation's own ``optimize_parameters`` is timed the same way
(its CycleGAN model, ``resnet_9blocks``, PatchGAN, LSGAN, pool 50; the CUT repository's copy is run
with ``--no_antialias --no_antialias_up`` so that it is the original CycleGAN architecture, and with
``opt.amp = False``, a flag its cycle_gan model reads but its options never define). Then, at batch 1 in
fp32, our CycleGAN is given the reference's initial weights and both train on the same batches: the
per-step losses are printed side by side. The reference is imported from the checkout, never vendored.

Prints one JSON object per row and a Markdown table at the end.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import torch


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _batches(n: int, batch: int, h: int, w: int, device: str) -> list[tuple[torch.Tensor, torch.Tensor]]:
    g = torch.Generator().manual_seed(0)
    return [tuple((torch.rand(batch, 3, h, w, generator=g) * 2 - 1).to(device) for _ in range(2)) for _ in range(n)]


def _ours(method: str, batch: int, device: str, precision: str, compile_: bool, channels_last: bool):
    from bench.translator import TrainEngine, build_translator

    model = build_translator(method, preset="paper", device=device)
    model.config = replace(model.config, batch_size=batch)
    model._build()
    model.use_engine(TrainEngine(precision=precision, compile=compile_, channels_last=channels_last))
    optimizers = model.setup_training(0)
    if compile_:
        for m in model.modules().values():
            m.compile()
    for m in model.modules().values():
        m.train()

    def step(a, b):
        if model.A_BATCHES == 2:  # UNSB's step reads a second batch of A: the same images mirrored
            a = torch.cat([a, a.flip(-1)])
        return model.engine_step(a, b, optimizers)

    return model, step


def _reference(path: Path, batch: int, device: str, h: int, w: int):
    """The official CycleGAN model from a checkout, built through its own option parser."""
    sys.path.insert(0, str(path))
    from options.train_options import TrainOptions  # noqa: E402  (the reference checkout)

    import models  # noqa: E402

    is_cut = "no_antialias" in (path / "options" / "base_options.py").read_text()
    tmp = tempfile.mkdtemp()
    argv = ["--dataroot", tmp, "--name", "throughput", "--checkpoints_dir", tmp, "--model", "cycle_gan",
            "--batch_size", str(batch), "--gpu_ids", "0" if device.startswith("cuda") else "-1",
            "--netG", "resnet_9blocks", "--preprocess", "none", "--no_flip", "--display_id", "0"]
    if is_cut:
        argv += ["--no_antialias", "--no_antialias_up"]
    saved, sys.argv = sys.argv, [sys.argv[0], *argv]
    try:
        opt = TrainOptions().parse()
    finally:
        sys.argv = saved
    opt.amp = False  # the CUT copy reads it; its options never define it
    model = models.create_model(opt)
    model.setup(opt)

    def step(a, b):
        model.set_input({"A": a, "B": b, "A_paths": [""] * len(a), "B_paths": [""] * len(b)})
        model.optimize_parameters()
        return {"g_total": model.loss_G.detach(), "d": (model.loss_D_A + model.loss_D_B).detach()}

    return model, step


def _time(step, batches, warmup: int, steps: int, device: str) -> float:
    for i in range(warmup):
        step(*batches[i % len(batches)])
    _sync(device)
    t0 = time.perf_counter()
    for i in range(steps):
        step(*batches[i % len(batches)])
    _sync(device)
    return time.perf_counter() - t0


def _compare_losses(ref_path: Path, device: str, h: int, w: int, n: int) -> list[dict]:
    """Our CycleGAN with the reference's initial weights, both trained on the same batches (fp32, batch 1)."""
    ref, ref_step = _reference(ref_path, 1, device, h, w)
    ours, our_step = _ours("cyclegan", 1, device, "fp32", False, False)
    # ours: g_a2b = G_A, g_b2a = G_B; d_b judges domain B (the reference's D_A), d_a domain A (its D_B)
    for mine, theirs in (("g_a2b", ref.netG_A), ("g_b2a", ref.netG_B), ("d_b", ref.netD_A), ("d_a", ref.netD_B)):
        src = {k: v for k, v in theirs.state_dict().items() if not k.endswith(("running_mean", "running_var",
                                                                                "num_batches_tracked"))}
        getattr(ours, mine).load_state_dict(src)
    rows = []
    for i, (a, b) in enumerate(_batches(n, 1, h, w, device)):
        theirs, mine = ref_step(a, b), our_step(a, b)
        rows.append({"step": i + 1, "g_reference": float(theirs["g_total"]), "g_ours": float(mine["g_total"]),
                     "d_reference": float(theirs["d"]), "d_ours": float(mine["d_a"] + mine["d_b"])})
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--size", default="256x512")
    ap.add_argument("--batches", default="1,8")
    ap.add_argument("--precisions", default="fp32,bf16")
    ap.add_argument("--methods", default="cyclegan,augan")
    ap.add_argument("--compile", action="store_true", help="also time torch.compile'd networks")
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--reference", type=Path, default=None)
    ap.add_argument("--loss-steps", type=int, default=5, help="steps of the side-by-side loss comparison")
    args = ap.parse_args()
    h, w = (int(v) for v in args.size.split("x"))
    batch_sizes = [int(b) for b in args.batches.split(",")]
    if args.device.startswith("cuda"):
        torch.backends.cudnn.benchmark = True
    rows = []
    for batch in batch_sizes:
        data = _batches(4, batch, h, w, args.device)
        if args.reference is not None:
            _, step = _reference(args.reference, batch, args.device, h, w)
            secs = _time(step, data, args.warmup, args.steps, args.device)
            rows.append({"impl": "reference cycle_gan", "batch": batch, "precision": "fp32", "engine": "as published",
                         "img_per_s": batch * args.steps / secs})
            print(json.dumps(rows[-1]), flush=True)
            del step
        for method in args.methods.split(","):
            for precision in args.precisions.split(","):
                for compile_ in ([False, True] if args.compile else [False]):
                    model, step = _ours(method, batch, args.device, precision, compile_, channels_last=True)
                    secs = _time(step, data, args.warmup, args.steps, args.device)
                    e = model.engine
                    engine = ", ".join(["channels_last"] * bool(model.config.channels_last)
                                       + ["fused Adam" if e.fused_adam else "for-loop Adam"] + ["compiled"] * e.compile)
                    # bf16 is a CUDA setting: a CPU row says fp32
                    rows.append({"impl": f"ours {method}", "batch": batch, "precision": e.precision, "engine": engine,
                                 "img_per_s": batch * args.steps / secs})
                    print(json.dumps(rows[-1]), flush=True)
                    del step, model
                    if args.device.startswith("cuda"):
                        torch.cuda.empty_cache()
    print(f"\n{args.device} ({torch.cuda.get_device_name() if args.device.startswith('cuda') else 'cpu'}), "
          f"{h}x{w}, {args.steps} timed steps after {args.warmup}\n")
    print("| implementation | batch | precision | engine | img/s |\n|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['impl']} | {r['batch']} | {r['precision']} | {r['engine']} | {r['img_per_s']:.2f} |")
    if args.reference is not None:
        print("\nSame initial weights, same batches (fp32, batch 1): per-step losses\n")
        print("| step | G reference | G ours | D reference | D ours |\n|---|---|---|---|---|")
        for r in _compare_losses(args.reference, args.device, h, w, args.loss_steps):
            print(f"| {r['step']} | {r['g_reference']:.5f} | {r['g_ours']:.5f} | {r['d_reference']:.5f} | "
                  f"{r['d_ours']:.5f} |")


if __name__ == "__main__":
    main()
