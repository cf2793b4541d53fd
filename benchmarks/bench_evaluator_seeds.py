"""How far a locally retrained evaluator moves the downstream numbers of the default run.

    python benchmarks/bench_evaluator_seeds.py [--seeds 1,2] [--args "--preset quick"]

The default run's segmenter and detector ship with the project (seed 0). A user whose suite differs
(another size, another preset) trains them locally, and training rounds differently on another CPU;
the spread over training seeds bounds how much that changes a number. For each seed this runs
`bench run` in a child process with the evaluators' training seed replaced (so they are trained,
not loaded), then prints every downstream metric per method, per seed, and the largest difference
from seed 0 (the shipped evaluators), in points.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

METRICS = ("miou", "map", "ap50")
CHILD = """
import dataclasses, sys
from bench.downstream import synthetic_detector as d, synthetic_segmenter as s
seed = int(sys.argv[1])
if seed:  # seed 0 keeps the presets as they are: the shipped evaluators
    for presets in (s.SEGMENTER_PRESETS, d.DETECTOR_PRESETS):
        for name, cfg in presets.items():
            if cfg is not None:
                presets[name] = dataclasses.replace(cfg, seed=seed)
from bench.cli import main
sys.argv = ["bench", "run", *sys.argv[2:]]
main()
"""


def downstream_values(run: Path) -> dict[tuple[str, str], float]:
    """(method, metric) -> value of the downstream metrics in a run folder's metrics.csv."""
    rows = csv.DictReader((next(run.rglob("metrics.csv"))).open())
    return {(r["method"], r["metric"]): float(r["value"]) for r in rows if r["metric"] in METRICS and r["value"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", default="1,2", help="evaluator training seeds besides the shipped seed 0")
    ap.add_argument("--args", default="", help="extra arguments for `bench run` (default: the default run)")
    opts = ap.parse_args()
    seeds = [0, *(int(s) for s in opts.seeds.split(","))]
    values: dict[int, dict[tuple[str, str], float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for seed in seeds:
            out = Path(tmp) / f"seed{seed}"
            cmd = [sys.executable, "-c", CHILD, str(seed), "--out", str(out), *shlex.split(opts.args)]
            subprocess.run(cmd, check=True, env={**os.environ, "AUGAN_BENCH_OFFLINE": "1"},
                           stdout=subprocess.DEVNULL)
            values[seed] = downstream_values(out)
    keys = sorted(values[0])
    print(f"{'method':<24}{'metric':<8}" + "".join(f"{'seed ' + str(s):>10}" for s in seeds) + f"{'max |d|':>10}")
    spread = {}
    for method, metric in keys:
        row = [values[s].get((method, metric), float("nan")) for s in seeds]
        d = max(abs(v - row[0]) for v in row[1:])
        spread[metric] = max(spread.get(metric, 0.0), d)
        print(f"{method:<24}{metric:<8}" + "".join(f"{v:10.2f}" for v in row) + f"{d:10.2f}")
    print(json.dumps({"bench": "evaluator_seeds", "seeds": seeds, "args": opts.args or "(defaults)",
                      "max_abs_diff_points": {m: round(v, 2) for m, v in spread.items()},
                      "values": {f"{m}/{k}": [values[s].get((m, k)) for s in seeds] for m, k in keys}}))


if __name__ == "__main__":
    main()
