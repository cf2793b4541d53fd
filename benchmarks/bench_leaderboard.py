"""What a leaderboard costs: the size of a 4,000-image submission, and building a board from 1,000 files.

    python benchmarks/bench_leaderboard.py [--files 1000] [--protocols 10] [--images 500] [--repeat 3]

1. size: a BDD100K-sized cell (4,000 test images; every metric of bdd100k-night with its replicates, FID-type
   metrics on 200 resamples as above 2,048 images; the per-image columns: 19 classes x 3 segmentation statistics, 9
   box counts, the detection counts, PSNR/SSIM/LPIPS) written as a run folder, packed with `bench.leaderboard.pack`'s
   own `submission`, written as the file `bench pack` writes, and checked with `bench leaderboard check`;
2. build: FILES generated submissions over PROTOCOLS protocols (IMAGES test images each; per-image values drawn at
   random, every value, replicate and CI computed as the scorer computes them, so every file passes the check), then
   `bench leaderboard build` as a user runs it (a fresh process: reading, checking, ranking, writing the site),
   median wall time over REPEAT runs.

Generated numbers, not real scores: this times the machinery. Measured alone on one 2-core machine.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

CLASSES = 19
CATEGORIES = ("person", "rider", "car", "truck", "bus", "train", "motorcycle", "bicycle", "traffic light")


def per_image_columns(n: int, rng: np.random.Generator, shift: float) -> dict[str, np.ndarray]:
    from bench.metrics.segmentation import CITYSCAPES_CLASSES

    cols: dict[str, np.ndarray] = {}
    for c in CITYSCAPES_CLASSES:
        present = rng.random(n) < 0.5
        gt = rng.integers(0, 40000, n) * present
        pred = np.maximum(0, gt + rng.integers(-5000, 5000, n)) * present
        cols |= {f"seg/tp/{c}": np.minimum(gt, pred) * (0.3 + shift), f"seg/gt/{c}": gt, f"seg/pred/{c}": pred}
    cols = {k: np.floor(v).astype(np.int64) for k, v in cols.items()}
    cols |= {f"boxes/{c}": rng.poisson(0.8, n) for c in CATEGORIES}
    cols |= {"found": rng.poisson(3, n).astype(float), "hallucinated": rng.poisson(1 + shift, n).astype(float),
             "removed": rng.poisson(1, n).astype(float), "psnr": rng.normal(14 + shift, 2, n),
             "ssim": rng.uniform(0.2, 0.5, n) + shift / 10, "lpips": rng.uniform(0.3, 0.6, n)}
    return cols


def cell_numbers(cols: dict[str, np.ndarray], draws, rng: np.random.Generator, shift: float):
    """(records {metric: (value, ci)}, replicates {metric: B values}) as the scorer makes them."""
    from bench.leaderboard.check import _recompute
    from bench.metrics.bootstrap import LARGE_SET_RESAMPLES, percentile_ci

    out = _recompute({k: np.asarray(v, np.float64) for k, v in cols.items()}, draws)
    large = draws.n > 2048
    for m, base in (("fid", 40.0), ("kid", 0.02), ("fid-clean", 41.0), ("kid-clean", 0.021), ("map", 20.0),
                    ("ap50", 35.0)):
        reps = rng.normal(base + shift, base / 20, LARGE_SET_RESAMPLES if large and "map" not in m and "ap" not in m
                          else draws.resamples)
        out[m] = (float(reps.mean()), reps)
    for c in CATEGORIES:
        reps = rng.normal(20 + shift, 2, draws.resamples)
        out[f"ap/{c}"] = (float(reps.mean()), reps)
    return {m: (v, percentile_ci(r)) for m, (v, r) in out.items()}, {m: r for m, (_, r) in out.items()}


def fake_protocol(suite: str, n: int, n_reference: int) -> dict:
    """A protocol of the layout `bench pack` writes (the files' pixel hashes made up; the id hashed from them)."""
    from bench.protocol import PROTOCOL_FORMAT, _id_content, metric_settings, protocol_id

    metrics = ["fid", "kid", "fid-clean", "kid-clean", "lpips", "psnr", "ssim", "miou", "map", "ap50", "hallucinated",
               "hallucination-share", "removed"]
    files = {f"testA/{suite}-{k:05d}.png": {"pixels": f"{k:064x}"} for k in range(n)}
    files |= {f"testB/{suite}-ref-{k:05d}.png": {"pixels": f"{k + 10**6:064x}"} for k in range(n_reference)}
    p = {"format": PROTOCOL_FORMAT, "suite": suite, "preset": "paper", "image_size": [256, 512], "n_test": n,
         "n_reference": n_reference, "settings": metric_settings(metrics), "files": files, "boxes": None}
    p["protocol_id"] = protocol_id(_id_content(p))
    return p


def draws_of(protocol: dict):
    from bench.metrics.bootstrap import N_RESAMPLES, Draws, draws_components, draws_key
    from bench.protocol import exported_names

    comp = draws_components(protocol["suite"], protocol["preset"], protocol["image_size"],
                            exported_names(protocol, "testA"), exported_names(protocol, "testB"))
    key = draws_key(comp)
    return Draws(key, protocol["n_test"], protocol["n_reference"], N_RESAMPLES), {
        "key": key, "n": protocol["n_test"], "n_reference": protocol["n_reference"], "resamples": N_RESAMPLES,
        "protocol": comp}


def write_run(folder: Path, protocol: dict, method: str, rng: np.random.Generator) -> None:
    """A run folder with one cell, as `bench run` leaves it."""
    from bench.protocol import exported_names
    from bench.results import CellScores, Manifest, MetricRecord, write_cell, write_manifest, write_metrics_csv

    draws, drawn = draws_of(protocol)
    cols = per_image_columns(protocol["n_test"], rng, 0.0)
    records, reps = cell_numbers(cols, draws, rng, 0.0)
    recs = [MetricRecord(protocol["suite"], method, 0, m, v, ci[0], ci[1], protocol["n_test"], "generated:sha256=00")
            for m, (v, ci) in records.items()]
    names = exported_names(protocol, "testA")
    write_cell(folder / "cells" / method / "seed0", CellScores(recs, drawn, reps, names, cols))
    write_metrics_csv(folder / "metrics.csv", recs)
    write_manifest(folder / "manifest.json", Manifest(suite=protocol["suite"], config={"preset": "paper",
                                                                                      "methods": [method]}))


def pack_size(tmp: Path) -> tuple[int, float]:
    from bench.leaderboard.check import check
    from bench.leaderboard.files import protocol_path, submission_path, write
    from bench.leaderboard.pack import submission
    from bench.report.runs import load_run

    protocol = fake_protocol("bdd100k-night", 4000, 4000)
    run_dir = tmp / "run4000"
    write_run(run_dir, protocol, "mine", np.random.default_rng(0))
    repo = tmp / "repo4000"
    write(protocol_path(repo, protocol["protocol_id"]), protocol)
    path = submission_path(repo, protocol["protocol_id"], "mine")
    write(path, submission(load_run(run_dir), "mine", protocol))
    start = time.perf_counter()
    result = check(repo)
    seconds = time.perf_counter() - start
    assert result.ok, result.problems[:5]
    return path.stat().st_size, seconds


def generate(repo: Path, files: int, protocols: int, images: int) -> None:
    from bench.leaderboard.files import (PROVENANCES, SCHEMA, SCHEMA_VERSION, floats, number, per_image_value,
                                         protocol_path, rounded, submission_path, write)
    from bench.metrics.bootstrap import percentile_ci
    from bench.protocol import exported_names

    rng = np.random.default_rng(1)
    per = math.ceil(files / protocols)
    made = 0
    for p in range(protocols):
        protocol = fake_protocol(f"suite{p}", images, images)
        write(protocol_path(repo, protocol["protocol_id"]), protocol)
        draws, drawn = draws_of(protocol)
        names = exported_names(protocol, "testA")
        for m in range(min(per, files - made)):
            shift = rng.uniform(0, 1)
            cols = per_image_columns(images, rng, shift)
            records, reps = cell_numbers(cols, draws, rng, shift)
            rounded_reps = {k: [rounded(x) for x in v] for k, v in reps.items()}
            metrics = {k: {"value": v, "ci": [number(ci[0]), number(ci[1])], "n": images, "extractor": "generated",
                           "note": ""} for k, (v, ci) in records.items()}
            for k in metrics:  # the CI of the rounded replicates, as a pack of a real cell gives
                lo, hi = percentile_ci(floats(rounded_reps[k]))
                metrics[k]["ci"] = [number(lo), number(hi)]
            name = f"method-{m:03d}"
            write(submission_path(repo, protocol["protocol_id"], name), {
                "schema": SCHEMA, "schema_version": SCHEMA_VERSION,
                "protocol": {"id": protocol["protocol_id"], **{k: protocol[k] for k in (
                    "suite", "preset", "image_size", "n_test", "n_reference", "settings")}, "draws": drawn},
                "method": {"name": name, "description": "", "url": "", "provenance": PROVENANCES[m % 2],
                           "checkpoint_sha256": None, "translations_sha256": None, "config": {}},
                "seeds": [0], "metrics": metrics,
                "cells": [{"seed": 0, "metrics": metrics, "replicates": rounded_reps,
                           "per_image": {"images": names, "columns": {k: [per_image_value(x) for x in v]
                                                                     for k, v in cols.items()}}}],
                "versions": {}, "git_commit": None, "run": "generated", "scored": "", "packed": ""})
            made += 1


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--files", type=int, default=1000)
    ap.add_argument("--protocols", type=int, default=10)
    ap.add_argument("--images", type=int, default=500)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        size, seconds = pack_size(tmp)
        print(f"4,000-image submission: {size / 2**20:.2f} MiB ({size:,} bytes), checked in {seconds:.1f} s")
        repo = tmp / "repo"
        start = time.perf_counter()
        generate(repo, args.files, args.protocols, args.images)
        total = sum(p.stat().st_size for p in (repo / "submissions").rglob("*.json"))
        print(f"generated {args.files} submissions ({args.protocols} protocols x {args.images} images, "
              f"{total / 2**20:.0f} MiB) in {time.perf_counter() - start:.0f} s")
        times = []
        for _ in range(args.repeat):
            start = time.perf_counter()
            res = subprocess.run([sys.executable, "-m", "bench.cli", "leaderboard", "build", str(repo), "--out",
                                  str(tmp / "site")], capture_output=True, text=True)
            times.append(time.perf_counter() - start)
            if res.returncode != 0:
                raise SystemExit(f"build failed:\n{res.stdout[-2000:]}\n{res.stderr[-2000:]}")
        board = json.loads((tmp / "site" / "leaderboard.json").read_text())
        rows = sum(len(t["rows"]) for t in board["protocols"])
        print(f"bench leaderboard build: {rows} rows on {len(board['protocols'])} tabs; median {statistics.median(times):.1f} s "
              f"over {args.repeat} runs ({', '.join(f'{t:.1f}' for t in times)})")


if __name__ == "__main__":
    main()
