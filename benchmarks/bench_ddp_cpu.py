"""Data-parallel scaling on the CPU: 2 gloo processes against 1 process with the same global batch.

    python benchmarks/bench_ddp_cpu.py [--method cyclegan] [--steps 20] [--batch 4]

Trains the method's quick configuration (history pool off, so both sides see the same data) for
``--steps`` steps on the synthetic-night quick suite, twice: one process with batch ``--batch``, and
two processes (torch.multiprocessing + gloo) with ``--batch / 2`` each. Prints the time per step of
each (training loop only: process start and imports excluded) and the largest absolute difference
between the two sets of final weights. On one 2-core machine the two processes share the cores, so
this measures the cost of the gradient all-reduce and the equality of the result, not a speed-up.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import torch


def _model(method: str, batch: int, steps: int):
    from bench.translator import build_translator

    torch.manual_seed(0)
    model = build_translator(method, preset="quick")
    extra = {"pool_size": 0} if hasattr(model.config, "pool_size") else {}
    model.config = replace(model.config, batch_size=batch, max_steps=steps, checkpoint_every=10**9, log_every=steps,
                           **extra)
    torch.manual_seed(0)
    model._build()  # the same initial weights on every side
    return model


def _worker(rank: int, world: int, init: str, method: str, batch: int, steps: int, data, out: str) -> None:
    import torch.distributed as dist

    from bench.translator import TrainBudget

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init}", rank=rank, world_size=world)
    model = _model(method, batch, steps)
    t0 = time.perf_counter()
    model.fit(data, TrainBudget(0), Path(out) / "train")
    elapsed = time.perf_counter() - t0
    if rank == 0:
        torch.save({"state": model.state_dict(), "seconds": elapsed}, Path(out) / "result.pt")
    dist.destroy_process_group()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--method", default="cyclegan")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--batch", type=int, default=4, help="global batch (even)")
    args = ap.parse_args()

    import torch.multiprocessing as mp

    from bench.suites import get_suite
    from bench.translator import TrainBudget

    data = get_suite("synthetic-night").prepare("quick", None).unpaired()
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        torch.set_num_threads(2)
        single = _model(args.method, args.batch, args.steps)
        t0 = time.perf_counter()
        single.fit(data, TrainBudget(0), tmp / "single")
        t_single = time.perf_counter() - t0
        mp.spawn(_worker, args=(2, str(tmp / "init"), args.method, args.batch // 2, args.steps, data, str(tmp / "ddp")),
                 nprocs=2, join=True)
        ddp = torch.load(tmp / "ddp" / "result.pt", weights_only=True)
        ref = single.state_dict()
        diff = max(float((v - ddp["state"][k]).abs().max()) for k, v in ref.items() if v.is_floating_point())
        scale = max(float(v.abs().max()) for v in ref.values() if v.is_floating_point())
    print(json.dumps({
        "method": args.method, "steps": args.steps, "global_batch": args.batch,
        "single_process_s_per_step": round(t_single / args.steps, 4),
        "two_gloo_processes_s_per_step": round(ddp["seconds"] / args.steps, 4),
        "max_abs_weight_difference": diff, "largest_weight": scale,
        "threads": {"single": 2, "per_rank": 1},
    }, indent=2))


if __name__ == "__main__":
    main()
