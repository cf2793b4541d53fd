"""Training throughput (img/s) of our learned methods (CycleGAN and AU-GAN by default; any of them with --methods),
per precision and batch, beside a reference CycleGAN.

    python benchmarks/bench_training_throughput.py --device cuda [--size 256x512] [--batches 1,8]
        [--precisions fp32,bf16] [--compile] [--steps 30] [--warmup 10] [--methods cyclegan,augan]
        [--reference PATH/TO/pytorch-CycleGAN-and-pix2pix-or-CUT-checkout]

Training step only (generator and discriminator updates), on the same pre-made batches for every
contender: ``--warmup`` steps each, then ``--steps`` steps each, interleaved round robin (one step of each in
turn, the order rotating) and timed one by one with a device sync around each; the median step time gives
img/s. Interleaving makes the ratios robust to the machine's slow minutes (sequential runs on a 2-core machine
differed by 10%). Our methods run their ``paper`` architecture with the engine as ``bench run`` resolves it on
the device (channels_last on CUDA, off on the CPU, where it costs 25%; bf16 refused on a CPU without native bf16,
and the row says why), plus optional compile.
cuDNN autotuning (cudnn.benchmark) is on for every contender on CUDA, as in ``bench train`` and in
the reference's own BaseModel.

With ``--reference`` the official implementation's own ``optimize_parameters`` is timed the same way
(its CycleGAN model, ``resnet_9blocks``, PatchGAN, LSGAN, pool 50; from a CUT checkout with ``cut`` among the
methods, its CUT model too, with the authors' defaults and its patch MLP built on a first batch as its train.py
does). The CUT repository's CycleGAN is run with ``--no_antialias --no_antialias_up`` so that it is the original CycleGAN architecture, and with
``opt.amp = False``, a flag its cycle_gan model reads but its options never define). Then, at batch 1 in
fp32, our CycleGAN is given the reference's initial weights and both train on the same batches: the
per-step losses are printed side by side. The reference is imported from the checkout, never vendored.

Prints one JSON object per row and a Markdown table at the end.

    python benchmarks/bench_training_throughput.py --watch-cost cyclegan [--preset quick] [--repeat 2]

times what watching costs instead: whole ``bench run``-style trainings of the method at the preset on
synthetic-night (the suite's own validation: KID against valB's features and mIoU of its segmenter, every
``checkpoint_every`` steps on 16 images; TensorBoard; the sample grids), against the same training with
``--logger none --no-validate``, alternating, ``--repeat`` times each; the median ratio is the overhead. Without
the Inception file on disk, a random one of the same architecture is made for the timing (the cost is the
network's, not its weights').
"""

from __future__ import annotations

import argparse
import json
import statistics
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


def _reference(path: Path, batch: int, device: str, h: int, w: int, model_name: str = "cycle_gan"):
    """The official CycleGAN (or, from the CUT repository, CUT) model from a checkout, built through its own option
    parser."""
    sys.path.insert(0, str(path))
    from options.train_options import TrainOptions  # noqa: E402  (the reference checkout)

    import models  # noqa: E402

    is_cut = "no_antialias" in (path / "options" / "base_options.py").read_text()
    tmp = tempfile.mkdtemp()
    argv = ["--dataroot", tmp, "--name", "throughput", "--checkpoints_dir", tmp, "--model", model_name,
            "--batch_size", str(batch), "--gpu_ids", "0" if device.startswith("cuda") else "-1",
            "--netG", "resnet_9blocks", "--preprocess", "none", "--no_flip", "--display_id", "0"]
    if is_cut and model_name == "cycle_gan":
        argv += ["--no_antialias", "--no_antialias_up"]
    saved, sys.argv = sys.argv, [sys.argv[0], *argv]
    try:
        opt = TrainOptions().parse()
    finally:
        sys.argv = saved
    opt.amp = False  # the CUT copy reads it; its options never define it
    model = models.create_model(opt)
    if model_name == "cut":  # its patch MLP is built on the first batch, as its train.py does before setup
        g = torch.Generator().manual_seed(1)
        first = [(torch.rand(batch, 3, h, w, generator=g) * 2 - 1).to(device) for _ in range(2)]
        model.data_dependent_initialize({"A": first[0], "B": first[1], "A_paths": [""] * batch,
                                         "B_paths": [""] * batch})
    model.setup(opt)

    def step(a, b):
        model.set_input({"A": a, "B": b, "A_paths": [""] * len(a), "B_paths": [""] * len(b)})
        model.optimize_parameters()
        d = model.loss_D if model_name == "cut" else model.loss_D_A + model.loss_D_B
        return {"g_total": model.loss_G.detach(), "d": d.detach()}

    return model, step


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


def _timed_round_robin(contenders: dict[str, object], batches, warmup: int, steps: int, device: str) -> dict[str, float]:
    """Median seconds per step of each contender, their steps interleaved (a, b, c, b, c, a, ...) so that a slow
    minute of the machine (another process, the clock) falls on every contender alike."""
    for step in contenders.values():
        for i in range(warmup):
            step(*batches[i % len(batches)])
    times: dict[str, list[float]] = {name: [] for name in contenders}
    names = list(contenders)
    for i in range(steps):
        for name in names[i % len(names):] + names[:i % len(names)]:
            _sync(device)
            t0 = time.perf_counter()
            contenders[name](*batches[i % len(batches)])
            _sync(device)
            times[name].append(time.perf_counter() - t0)
    return {name: statistics.median(t) for name, t in times.items()}


def _watch_cost(method: str, preset: str, device: str, repeat: int) -> None:
    """Median seconds of whole trainings with the default watch (logs, validation, grids) and without it."""
    import os

    from bench.runner import RunConfig, training_budget
    from bench.training_log import VALIDATION_LOG, read_jsonl
    from bench.suites import get_suite
    from bench.translator import TrainWatch, build_translator
    from bench.weights import WeightsMissing, resolve
    from bench.metrics.fid_kid import INCEPTION_V3

    try:
        resolve(INCEPTION_V3)
        weights = "the published Inception file"
    except WeightsMissing:
        from bench.substitute_weights import make_substitute_weights

        home = Path(tempfile.mkdtemp()) / "torch-home"
        make_substitute_weights(home / "hub" / "checkpoints")
        os.environ["TORCH_HOME"] = str(home)
        weights = "a random Inception of the same architecture (timing only)"
    files = get_suite("synthetic-night").prepare(preset, None)
    times: dict[str, list[float]] = {"plain": [], "watched": []}
    inside: dict[str, list[float]] = {"plain": [], "watched": []}  # the validations' own wall time, as logged
    watches = {"plain": TrainWatch(logger=(), validate=False), "watched": TrainWatch()}
    for r in range(repeat):
        for name in (("plain", "watched") if r % 2 == 0 else ("watched", "plain")):
            with tempfile.TemporaryDirectory() as tmp:
                t0 = time.perf_counter()
                cfg = RunConfig(preset=preset, device=device, watch=watches[name])
                budget = training_budget(cfg, files, device, 0, Path(tmp))  # builds the validation: counted
                torch.manual_seed(0)
                model = build_translator(method, preset=preset, device=device)
                model.fit(files.unpaired(), budget, Path(tmp) / "train")
                times[name].append(time.perf_counter() - t0)
                rows = read_jsonl(Path(tmp) / "train" / VALIDATION_LOG)
                inside[name].append(sum(row["seconds"] for row in rows))
                print(json.dumps({"method": method, "preset": preset, "watch": name, "run": r,
                                  "seconds": round(times[name][-1], 2), "validations": len(rows),
                                  "validation_seconds": round(inside[name][-1], 2)}), flush=True)
    plain, watched = statistics.median(times["plain"]), statistics.median(times["watched"])
    steps = build_translator(method, preset=preset).config.max_steps
    print(f"\n{method} at {preset} ({steps} steps) on {device}, Inception: {weights}\n")
    print("| training | median s | overhead |\n|---|---|---|")
    print(f"| --logger none --no-validate | {plain:.1f} | – |")
    print(f"| defaults (TensorBoard, validation, grids) | {watched:.1f} | {100 * (watched / plain - 1):+.1f}% |")
    spent = statistics.median(inside["watched"])
    print(f"\nvalidations' own wall time (validation.jsonl): {spent:.1f} s, {100 * spent / watched:.1f}% of the watched "
          "training (the whole-run difference above also holds the machine's run-to-run noise)")


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
    ap.add_argument("--watch-cost", metavar="METHOD", default=None,
                    help="time whole trainings of METHOD with and without logs and validation instead")
    ap.add_argument("--preset", default="quick", help="the preset of --watch-cost's trainings")
    ap.add_argument("--repeat", type=int, default=2, help="trainings of each kind for --watch-cost")
    args = ap.parse_args()
    if args.watch_cost:
        _watch_cost(args.watch_cost, args.preset, args.device, args.repeat)
        return
    from bench.translator import EngineError, TrainEngine, cpu_bf16

    h, w = (int(v) for v in args.size.split("x"))
    batch_sizes = [int(b) for b in args.batches.split(",")]
    cuda = args.device.startswith("cuda")
    if cuda:
        torch.backends.cudnn.benchmark = True
    else:
        native, why = cpu_bf16()
        print(f"CPU: {torch.backends.cpu.get_cpu_capability()}; native bf16: {'yes' if native else 'no'} ({why}); "
              f"{torch.get_num_threads()} threads", flush=True)
    rows = []
    for batch in batch_sizes:
        data = _batches(4, batch, h, w, args.device)
        contenders, labels = {}, {}
        if args.reference is not None:
            _, contenders["reference"] = _reference(args.reference, batch, args.device, h, w)
            labels["reference"] = ("reference cycle_gan", "fp32", "as published")
            if "cut" in args.methods.split(",") and (args.reference / "models" / "cut_model.py").is_file():
                _, contenders["reference cut"] = _reference(args.reference, batch, args.device, h, w, "cut")
                labels["reference cut"] = ("reference cut", "fp32", "as published")
        for method in args.methods.split(","):
            for precision in args.precisions.split(","):
                for compile_ in ([False, True] if args.compile else [False]):
                    try:  # the engine as `bench run` resolves it on this device: bf16 refused on CPUs without it
                        TrainEngine(precision=precision).resolved(args.device)
                    except EngineError as exc:
                        rows.append({"impl": f"ours {method}", "batch": batch, "precision": precision,
                                     "engine": f"refused: {exc}", "img_per_s": None})
                        print(json.dumps(rows[-1]), flush=True)
                        continue
                    # channels_last as each device runs best: on for CUDA, off on the CPU (25% slower there)
                    model, step = _ours(method, batch, args.device, precision, compile_, channels_last=cuda)
                    e = model.engine
                    engine = ", ".join(["channels_last"] * bool(model.config.channels_last)
                                       + ["fused Adam" if e.fused_adam else "for-loop Adam"] + ["compiled"] * e.compile)
                    key = f"{method}/{precision}/{compile_}"
                    contenders[key] = step
                    labels[key] = (f"ours {method}", e.precision, engine)
        for key, secs in _timed_round_robin(contenders, data, args.warmup, args.steps, args.device).items():
            impl, precision, engine = labels[key]
            rows.append({"impl": impl, "batch": batch, "precision": precision, "engine": engine,
                         "img_per_s": batch / secs})
            print(json.dumps(rows[-1]), flush=True)
        del contenders
        if cuda:
            torch.cuda.empty_cache()
    print(f"\n{args.device} ({torch.cuda.get_device_name() if cuda else 'cpu'}), "
          f"{h}x{w}, median of {args.steps} interleaved steps after {args.warmup}\n")
    print("| implementation | batch | precision | engine | img/s |\n|---|---|---|---|---|")
    for r in rows:
        speed = "–" if r["img_per_s"] is None else f"{r['img_per_s']:.3f}"
        print(f"| {r['impl']} | {r['batch']} | {r['precision']} | {r['engine']} | {speed} |")
    if args.reference is not None and args.loss_steps:
        print("\nSame initial weights, same batches (fp32, batch 1): per-step losses\n")
        print("| step | G reference | G ours | D reference | D ours |\n|---|---|---|---|---|")
        for r in _compare_losses(args.reference, args.device, h, w, args.loss_steps):
            print(f"| {r['step']} | {r['g_reference']:.5f} | {r['g_ours']:.5f} | {r['d_reference']:.5f} | "
                  f"{r['d_ours']:.5f} |")


if __name__ == "__main__":
    main()
