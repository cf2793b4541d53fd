"""What the paired comparisons cost: every pair of 12 methods on every metric, against the scoring they build on.

    python benchmarks/bench_comparisons.py [--run RUN] [--methods 12] [--repeat 3]

Takes a finished `quick` run of the default methods (RUN; by default it runs `bench run` into a temporary folder,
with its cache), then:

1. scoring: one cell scored again from its translations with the models and reference features warm (what
   `bench run` spends per method after training and translating), times the 12 methods of a table;
2. comparisons: a run folder of 12 methods made from that run's cells (copied under new names, so every pair has
   real replicates), and the whole summary table built from it: replicate files read, rank groups of every metric
   (Holm over the 66 pairs each), rendered, as `bench run` writes tables/summary.md;
3. storage: the replicates and per-image files of each real cell.

Prints the ratio of (2) to (1). Measured alone (nothing else running) on one 2-core machine.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from pathlib import Path


def scoring_seconds(run_dir: Path, method: str, repeat: int) -> float:
    """Median seconds to score ``method``'s cell again with warm models (one warm-up first)."""
    from bench.report.runs import load_run
    from bench.runner import RunConfig, plan

    run = load_run(run_dir)
    cfg = RunConfig(suite=run.suite, preset=run.manifest.preset, out=run_dir.parent.parent, name=run_dir.name,
                    device="cpu")
    p = plan(cfg)
    translated = sorted((run_dir / "cells" / method / "seed0" / "translations").glob("*.png"))
    p.scorer.score_cell(method, 0, translated)  # loads the evaluators and the reference features
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        p.scorer.score_cell(method, 0, translated)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def many_methods(run_dir: Path, n: int, out: Path) -> Path:
    """A copy of ``run_dir`` with ``n`` methods, each a real cell of the run under a new name."""
    from bench.report.runs import load_run
    from bench.results import REFERENCE_ROW, read_manifest, write_manifest, write_metrics_csv

    run = load_run(run_dir)
    real = [m for m in run.methods if m != REFERENCE_ROW]
    target = out / run_dir.parent.name / "many"
    records = []
    for k in range(n):
        source = real[k % len(real)]
        name = "identity" if k == 0 else f"{source}-{k}"
        cell = target / "cells" / name / "seed0"
        shutil.copytree(run_dir / "cells" / source / "seed0", cell, ignore=shutil.ignore_patterns("translations"))
        records += [r.__class__(**{**r.__dict__, "method": name}) for r in run.records if r.method == source]
    shutil.copytree(run_dir / "cells" / REFERENCE_ROW, target / "cells" / REFERENCE_ROW)
    records += [r for r in run.records if r.method == REFERENCE_ROW]
    write_metrics_csv(target / "metrics.csv", records)
    manifest = read_manifest(run_dir / "manifest.json")
    manifest.config["methods"] = sorted({r.method for r in records} - {REFERENCE_ROW})
    write_manifest(target / "manifest.json", manifest)
    return target


def table_seconds(run_dir: Path, repeat: int) -> float:
    """Median seconds to load the run and build and render its summary table (replicates read fresh each time)."""
    from bench.report.compare import compare_table
    from bench.report.render import render
    from bench.report.runs import load_run

    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        render(compare_table([load_run(run_dir)]), "md")
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", type=Path, default=None, help="a finished quick run (default: run one now)")
    ap.add_argument("--methods", type=int, default=12)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        run_dir = args.run
        if run_dir is None:
            from bench.runner import RunConfig, run

            run_dir = run(RunConfig(out=Path(tmp) / "results", device="cpu")).run_dir
        per_cell = scoring_seconds(run_dir, "clahe", args.repeat)
        scoring = per_cell * args.methods
        many = many_methods(run_dir, args.methods, Path(tmp) / "many")
        tables = table_seconds(many, args.repeat)
        without = _without_ranks(many, args.repeat)
        print(f"scoring one cell again (clahe, warm models): {per_cell:.2f} s; x {args.methods} methods = {scoring:.1f} s")
        print(f"summary table of {args.methods} methods, every metric ranked (Holm over "
              f"{args.methods * (args.methods - 1) // 2} pairs each): {tables:.2f} s; "
              f"the same table without ranks: {without:.2f} s")
        print(f"comparisons add {tables - without:.2f} s = {100 * (tables - without) / scoring:.1f}% of the scoring time")
        for cell in sorted((run_dir / "cells").glob("*/seed0")):
            sizes = {f: (cell / f).stat().st_size for f in ("replicates.csv.gz", "per_image.csv.gz")
                     if (cell / f).is_file()}
            print(f"  {cell.parent.name}: " + ", ".join(f"{f} {v / 1024:.0f} KiB" for f, v in sizes.items()))


def _without_ranks(run_dir: Path, repeat: int) -> float:
    """The table's time with ranking replaced by nothing, to isolate what the comparisons cost."""
    import bench.report.compare as compare
    from bench.report.significance import MetricRanks

    original = compare.metric_ranks
    compare.metric_ranks = lambda run, metric, methods: MetricRanks({})
    try:
        return table_seconds(run_dir, repeat)
    finally:
        compare.metric_ranks = original


if __name__ == "__main__":
    main()
