"""Wall time and peak memory of the default `bench run`, and the renderer's images/s.

    python benchmarks/bench_default_run.py [--substitute-weights] [--args "--preset quick"]

Runs `bench run` in a child process with a fresh results folder and a fresh cache (cold: the
suite is rendered and every feature extracted), then again into a new results folder with the
cache kept (warm: rendering and reference features reused). Peak memory is the child's maximum
resident set size. With --substitute-weights the FID/KID/LPIPS computations run on locally made
random weights so their cost is included (their values are not metrics and are labelled so);
without it, on a machine with no weights, those metrics are skipped and cost nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import tempfile
import time
from pathlib import Path


def timed_child(cmd: list[str], env: dict) -> tuple[float, float]:
    """Wall seconds and peak RSS (GiB) of one child process."""
    t0 = time.perf_counter()
    pid = os.fork()
    if pid == 0:
        os.execvpe(cmd[0], cmd, env)
    _, status, usage = os.wait4(pid, 0)
    wall = time.perf_counter() - t0
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{shlex.join(cmd)} failed with status {os.waitstatus_to_exitcode(status)}")
    return wall, usage.ru_maxrss / 2**20  # ru_maxrss is KiB on Linux


def renderer_throughput(n: int, height: int, width: int) -> float:
    from bench.data.synthetic import render_sample

    render_sample("night", "bench", 0, 0, height, width)  # warm-up (imports, caches)
    t0 = time.perf_counter()
    for i in range(n):
        render_sample("night", "bench", i, 0, height, width, want_day=False)
    return n / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--args", default="", help="extra arguments for `bench run` (default: none = the default run)")
    ap.add_argument("--substitute-weights", action="store_true", help="time FID/KID/LPIPS with random local weights")
    ap.add_argument("--render-n", type=int, default=200)
    opts = ap.parse_args()

    bench = str(Path(sys.executable).with_name("bench"))
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        env = {**os.environ, "AUGAN_BENCH_CACHE": str(tmp / "cache")}
        if opts.substitute_weights:
            from bench.substitute_weights import make_substitute_weights

            make_substitute_weights(tmp / "torch" / "hub" / "checkpoints")
            env["TORCH_HOME"] = str(tmp / "torch")
        else:
            env.setdefault("AUGAN_BENCH_OFFLINE", "1")
        results = {"cpu_count": os.cpu_count(), "substitute_weights": opts.substitute_weights,
                   "bench_run_args": opts.args or "(defaults)"}
        for label in ("cold", "warm"):
            cmd = [bench, "run", "--out", str(tmp / f"results-{label}"), *shlex.split(opts.args)]
            wall, rss = timed_child(cmd, env)
            results[f"{label}_wall_s"] = round(wall, 1)
            results[f"{label}_peak_rss_gib"] = round(rss, 2)
        results["renderer_img_per_s_128x256"] = round(renderer_throughput(opts.render_n, 128, 256), 1)
        results["renderer_img_per_s_256x512"] = round(renderer_throughput(opts.render_n // 4, 256, 512), 1)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
