"""FID/KID feature extraction: ours against torch-fidelity's `fidelity` CLI on the same images, side by side.

    python benchmarks/bench_feature_extraction.py [--n 1000] [--device cpu|cuda] [--workers N] [--size HxW]
    python benchmarks/bench_feature_extraction.py --n 4000 --size 256x512 --device cuda   # the GPU comparison

Scores the same N PNGs (the synthetic-night quick suite's images: 400 + 400 training, 100 + 100
test = 1,000) against the 100 day test images, three ways, in one run:
  1. torch-fidelity's CLI: `fidelity --input1 <N images> --input2 <reference> --fid --kid --no-cache`
     (a child process, as users run it; its import time is included and printed separately);
  2. ours, cold: `extract_features` for both sets with the cache off, then FID and KID;
  3. ours, warm: the same scoring again with the content-hash cache on (the second scoring of a run).
With ``--size`` the images are first written as PNGs of that size (bilinear resize of the suite's
images, cycled to reach ``--n``), so both sides decode the same files at the size users score.
Then the bound: the convolutions' FLOPs per image against this CPU's fp32 matrix-product GFLOP/s
(img/s no implementation could beat at that arithmetic rate), and the share of it each side reaches.
Both use the same Inception weights file: substitute random weights made locally unless
--weights points at the real file (speed does not depend on the values; the FIDs are printed
only to show both sides computed the same number).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _resized(paths: list[Path], out: Path, height: int, width: int) -> list[Path]:
    from concurrent.futures import ThreadPoolExecutor

    from PIL import Image

    out.mkdir(parents=True)

    def one(item: tuple[int, Path]) -> Path:
        i, src = item
        dst = out / f"{i:05d}.png"
        with Image.open(src) as im:
            im.convert("RGB").resize((width, height), Image.BILINEAR).save(dst)
        return dst

    with ThreadPoolExecutor(os.cpu_count()) as ex:
        return list(ex.map(one, enumerate(paths)))


def inception_macs(extractor) -> int:
    """Multiply-accumulates of the convolutions for one 299 x 299 image, counted with forward hooks (pooling and
    the elementwise work are left out: well under 1% of the arithmetic)."""
    import torch

    macs = 0

    def count(module, inputs, output):
        nonlocal macs
        k = module.weight.shape[1] * module.weight.shape[2] * module.weight.shape[3]  # in/groups x kh x kw
        macs += output.numel() * k

    hooks = [m.register_forward_hook(count) for m in extractor.network.modules() if isinstance(m, torch.nn.Conv2d)]
    extractor(torch.zeros(1, 3, 299, 299, dtype=torch.uint8))
    for h in hooks:
        h.remove()
    return macs


def matmul_gflops(n: int = 4096, repeats: int = 5) -> float:
    """This CPU's fp32 GFLOP/s on a large square matrix product (all torch threads), the best of ``repeats``."""
    import torch

    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t)
    return 2 * n**3 / best / 1e9


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--workers", type=int, default=None, help="our decoding workers (default: automatic)")
    ap.add_argument("--weights", type=Path, default=None, help="Inception weights file (default: substitute)")
    ap.add_argument("--size", default=None, help="HxW: score PNGs of this size (written first, not timed)")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        from bench.metrics.fid_kid import InceptionExtractor, extract_features, fid_from_features, kid_from_features
        from bench.substitute_weights import make_substitute_weights
        from bench.suites import get_suite
        from bench.weights import INCEPTION_V3, ResolvedWeights, file_sha256

        weights = args.weights or make_substitute_weights(tmp / "weights") / INCEPTION_V3.filename
        files = get_suite("synthetic-night").prepare("quick", None)  # rendered once into the usual cache
        os.environ["AUGAN_BENCH_CACHE"] = str(tmp / "cache")  # features: a cold cache of their own
        images = [*files.train_a, *files.train_b, *files.test_a, *files.test_b][: args.n]
        reference = list(files.test_b)
        height, width = files.height, files.width
        if args.size:
            height, width = (int(v) for v in args.size.lower().split("x"))
            pool = [*files.train_a, *files.train_b, *files.test_a, *files.test_b]
            images = _resized([pool[i % len(pool)] for i in range(args.n)], tmp / "resized", height, width)
            reference = _resized(reference, tmp / "resized-ref", height, width)
        # The CLI takes folders: link the images into two flat folders.
        d1, d2 = tmp / "input1", tmp / "input2"
        d1.mkdir()
        d2.mkdir()
        for i, p in enumerate(images):
            (d1 / f"{i:05d}.png").symlink_to(p)
        for i, p in enumerate(reference):
            (d2 / f"{i:05d}.png").symlink_to(p)
        kid_subset = min(len(images), len(reference))
        print(f"{len(images)} images ({height}x{width}) vs {len(reference)} reference, device {args.device}, "
              f"{os.cpu_count()} CPU cores")

        # The console script where pip installed one; else the same entry point as a module (a --target install).
        script = Path(sys.executable).with_name("fidelity")
        fidelity = [str(script)] if script.is_file() else [sys.executable, "-m", "torch_fidelity.fidelity"]
        cli = [*fidelity, "--input1", str(d1), "--input2", str(d2), "--fid",
               "--kid", "--kid-subset-size", str(kid_subset), "--no-cache", "--feature-extractor-weights-path",
               str(weights), "--batch-size", str(args.batch_size)]
        cli += ["--cpu"] if args.device == "cpu" else ["--gpu", args.device.removeprefix("cuda").lstrip(":") or "0"]
        t0 = time.perf_counter()
        out = subprocess.run(cli, capture_output=True, text=True, check=True)
        t_cli = time.perf_counter() - t0
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-c", "import torch_fidelity"], check=True)
        t_import = time.perf_counter() - t0
        cli_fid = float(re.search(r"frechet_inception_distance: ([0-9.eE+-]+)", out.stdout + out.stderr).group(1))

        ext = InceptionExtractor(ResolvedWeights(INCEPTION_V3, weights, file_sha256(weights)), device=args.device)

        def ours(use_cache: bool) -> tuple[float, float]:
            t = time.perf_counter()
            f1 = extract_features(images, ext, args.batch_size, num_workers=args.workers, use_cache=use_cache)
            f2 = extract_features(reference, ext, args.batch_size, num_workers=args.workers, use_cache=use_cache)
            fid = fid_from_features(f1, f2)
            kid_from_features(f1, f2)
            return time.perf_counter() - t, fid

        t_cold, fid = ours(use_cache=False)
        ours(use_cache=True)  # fills the cache (the first scoring of a run)
        t_warm, fid_warm = ours(use_cache=True)

    print(f"torch-fidelity CLI      {t_cli:7.2f} s  ({len(images) / t_cli:6.1f} img/s; of which ~{t_import:.1f} s "
          f"importing)  FID {cli_fid:.4f}")
    print(f"ours, cold              {t_cold:7.2f} s  ({len(images) / t_cold:6.1f} img/s)  FID {fid:.4f}")
    print(f"ours, cached (2nd run)  {t_warm:7.3f} s  FID {fid_warm:.4f}")
    print(f"speed-up vs CLI: {t_cli / t_cold:.2f}x (excluding its import: {(t_cli - t_import) / t_cold:.2f}x); "
          f"cached second scoring: {t_cold / t_warm:.0f}x faster than cold")
    macs, gflops = inception_macs(ext), matmul_gflops()
    bound = gflops * 1e9 / (2 * macs)
    print(f"bound: {2 * macs / 1e9:.2f} GFLOP per image, this CPU's fp32 matmul {gflops:.0f} GFLOP/s -> "
          f"{bound:.1f} img/s; ours reaches {len(images) / t_cold / bound:.0%} of it, the CLI "
          f"{len(images) / t_cli / bound:.0%}")
    print(json.dumps({"bench": "feature_extraction", "device": args.device, "n": len(images),
                      "size": f"{height}x{width}", "weights": "given" if args.weights else "substitute",
                      "fidelity_cli_s": round(t_cli, 3), "fidelity_import_s": round(t_import, 3),
                      "fidelity_img_s": round(len(images) / t_cli, 1), "ours_cold_s": round(t_cold, 3),
                      "ours_img_s": round(len(images) / t_cold, 1), "ours_cached_s": round(t_warm, 4),
                      "speedup": round(t_cli / t_cold, 3), "fid_fidelity": cli_fid, "fid_ours": fid,
                      "gflop_per_image": round(2 * macs / 1e9, 3), "matmul_gflops": round(gflops, 1),
                      "bound_img_s": round(bound, 1), "ours_of_bound": round(len(images) / t_cold / bound, 3)}))


if __name__ == "__main__":
    main()
