"""Peak memory and time of FID and KID with their bootstrap replicates on large sets, from generated features.

    python benchmarks/bench_kid_memory.py [--n 20000] [--dim 2048] [--resamples 10]

Scores two sets of N random 2048-d features (N test, N reference: as a real suite's Inception features, without
the images) the way a cell is scored: FID and KID point estimates, and their replicates on the protocol's draws
(above 2,048 images: the first 200 resamples, FID from weighted covariances, KID from kernel row blocks). Prints
the peak resident memory of this process and the seconds of each part. Memory does not depend on the number of
resamples (each is computed and dropped in turn), so --resamples keeps the run short; the seconds per resample
give the time of the 200 a cell computes. Measured alone on one 2-core machine.
"""

from __future__ import annotations

import argparse
import resource
import time

import numpy as np
import torch


def peak_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB on Linux


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=20000)
    ap.add_argument("--dim", type=int, default=2048)
    ap.add_argument("--resamples", type=int, default=10)
    args = ap.parse_args()
    from bench.metrics.bootstrap import Draws, draws_key
    from bench.metrics.fid_kid import fid_from_features, fid_kid_replicates, kid_from_features

    rng = np.random.default_rng(0)
    a = torch.from_numpy(rng.normal(size=(args.n, args.dim)).astype(np.float32))
    b = torch.from_numpy(rng.normal(0.05, 1.0, size=(args.n, args.dim)).astype(np.float32))
    print(f"features: 2 x {args.n} x {args.dim} float32; peak so far {peak_gib():.2f} GiB", flush=True)
    t0 = time.perf_counter()
    fid, (kid, _) = fid_from_features(a, b), kid_from_features(a, b)
    t1 = time.perf_counter()
    print(f"FID {fid:.4f}, KID {kid:.6f}: point estimates {t1 - t0:.1f} s; peak {peak_gib():.2f} GiB", flush=True)
    draws = Draws(draws_key({"benchmark": args.n}), args.n, args.n, args.resamples)
    fids, kids = fid_kid_replicates(a, b, draws)
    t2 = time.perf_counter()
    print(f"{len(fids)} FID and {len(kids)} KID replicates: {t2 - t1:.1f} s (KID's kernel passes cost the same for any "
          "number of resamples; each FID resample adds two d x d products over N rows)")
    print(f"peak resident memory: {peak_gib():.2f} GiB")


if __name__ == "__main__":
    main()
