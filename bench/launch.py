"""Where a run's (method, seed) cells execute: here, in parallel local processes, or as Slurm jobs.

Every launcher runs the function it is handed on each cell (the runner hands it ``run_cell_job``: plan the
run restricted to that cell, then fit, translate and score it into the shared run folder; it must be a
module-level function, since worker processes and Slurm jobs receive it pickled); the parent process then
rebuilds ``metrics.csv``, the tables, the figures and the manifest from every finished cell, exactly
as a run on one machine does. Finished cells are never resubmitted, so re-running the command after
a failure or a cancelled job submits only what is missing.

The parent scores the day-twin reference before submitting anything: that trains (and caches) the
suite's downstream models once, instead of once per job.
"""

from __future__ import annotations

import os
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable

from tqdm import tqdm

from bench.errors import BenchError

LAUNCHERS = ("none", "local", "slurm")


@dataclass(frozen=True)
class LaunchConfig:
    launcher: str = "none"  # none: cells one after another in this process
    jobs: int = 1  # local: cells at once (each its own process; GPUs handed out round robin)
    partition: str | None = None  # slurm
    gpus_per_job: int = 1  # slurm; local jobs get one GPU each when the device is CUDA
    cpus_per_job: int = 8
    array_parallelism: int | None = None  # slurm: at most this many array tasks at once
    timeout_min: int = 24 * 60
    cluster: str = "slurm"  # "local": submitit's local executor in place of Slurm (tests, machines without Slurm)

    def check(self) -> None:
        if self.launcher not in LAUNCHERS:
            raise ValueError(f"unknown launcher {self.launcher!r}; choose one of {', '.join(LAUNCHERS)}")
        if self.jobs < 1:
            raise ValueError("--jobs must be at least 1")


class CellsFailed(BenchError, RuntimeError):
    pass


@dataclass(frozen=True)
class CellJobs:
    """What a launcher needs of a run: the job to run on each cell and where the run lives."""

    job: Callable[[Any, str, int], tuple[str, int]]  # job(cfg, method, seed): one cell, in the worker
    cfg: Any  # the run's config, handed to every job (``cfg.launch`` is this launcher's settings)
    run_dir: Path
    device: str
    suite_name: str


def launch_cells(p: CellJobs, cells: list[tuple[str, int]]) -> list[tuple[str, int]]:
    """Run ``cells`` with the configured launcher; returns those that finished, raises CellsFailed for the rest."""
    lc = p.cfg.launch
    lc.check()
    if not cells:
        return []
    if lc.launcher == "local":
        done, failed = _local(p, cells)
    else:
        done, failed = _submitit(p, cells)
    if failed:
        lines = "\n".join(f"  {m} seed {s}: {why}" for (m, s), why in failed)
        raise CellsFailed(f"{len(failed)} of {len(cells)} cell(s) failed (the {len(done)} finished are kept; "
                          f"run the same command again to retry only the failed ones):\n{lines}")
    return done


def _claim_gpu(queue) -> None:
    gpu = queue.get()
    if gpu is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = str(gpu)


def _local(p: CellJobs, cells):
    import multiprocessing as mp

    import torch

    ctx = mp.get_context("spawn")  # a fresh interpreter per worker: no CUDA state inherited from the parent
    n = min(p.cfg.launch.jobs, len(cells))
    gpus = torch.cuda.device_count() if p.device.startswith("cuda") else 0
    queue = ctx.Queue()
    for i in range(n):
        queue.put(i % gpus if gpus else None)
    cfg = replace(p.cfg, device="cuda" if gpus else p.device)  # each worker sees its one GPU as cuda:0
    done, failed = [], []
    with ProcessPoolExecutor(n, mp_context=ctx, initializer=_claim_gpu, initargs=(queue,)) as pool:
        futures = {pool.submit(p.job, cfg, m, s): (m, s) for m, s in cells}
        for fut in tqdm(as_completed(futures), total=len(futures), desc=f"cells ({n} local processes)", unit="cell"):
            try:
                done.append(fut.result())
            except Exception as exc:  # a failed cell is reported with the others; finished ones are kept
                failed.append((futures[fut], f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"))
    return done, failed


class RequeuedCell:
    """A cell as a Slurm job that requeues itself when preempted or out of time. submitit signals the job ahead of the
    kill (SIGUSR2 unless $SUBMITIT_PREEMPT_SIGNAL says otherwise); a training loop then saves its state at the next
    step boundary and stops (``bench.learned.also_stop_on``), and submitit's own handler is called to checkpoint
    (``checkpoint``: the same cell again) and requeue. The requeued job resumes the cell from that state, and a cell
    signalled while translating or scoring resumes from the images already written."""

    def __init__(self, job: Callable[[Any, str, int], tuple[str, int]]) -> None:
        self.job = job

    def __call__(self, cfg: Any, method: str, seed: int) -> tuple[str, int]:
        import signal

        from bench.learned import TrainingStopped, also_stop_on

        preempt = getattr(signal, "SIG" + os.environ.get("SUBMITIT_PREEMPT_SIGNAL", "USR2"), signal.SIGUSR2)
        try:
            with also_stop_on(preempt):
                return self.job(cfg, method, seed)
        except TrainingStopped as exc:
            requeue = signal.getsignal(exc.signum)
            if exc.signum != preempt or not callable(requeue):
                raise
            requeue(exc.signum, None)  # submitit: checkpoint(), requeue, exit
            raise

    def checkpoint(self, cfg: Any, method: str, seed: int):
        """What submitit requeues: this same cell (its training state and translations are on disk)."""
        import submitit

        return submitit.helpers.DelayedSubmission(self, cfg, method, seed)


def _submitit(p: CellJobs, cells):
    try:
        import submitit
    except ImportError:
        raise RuntimeError("--launcher slurm needs submitit: pip install submitit") from None
    lc = p.cfg.launch
    folder = p.run_dir / "launch" / "%j"
    executor = submitit.AutoExecutor(folder=str(folder), cluster=None if lc.cluster == "slurm" else lc.cluster)
    gpus = lc.gpus_per_job if p.device.startswith("cuda") else 0
    params: dict = {"timeout_min": lc.timeout_min, "cpus_per_task": lc.cpus_per_job, "gpus_per_node": gpus,
                    "name": f"augan-bench-{p.suite_name}"}
    if lc.cluster == "slurm":
        if lc.partition:
            params["slurm_partition"] = lc.partition
        if lc.array_parallelism:
            params["slurm_array_parallelism"] = lc.array_parallelism
    executor.update_parameters(**params)
    methods, seeds = [m for m, _ in cells], [s for _, s in cells]
    jobs = executor.map_array(RequeuedCell(p.job), [p.cfg] * len(cells), methods, seeds)
    pending = dict(zip(jobs, cells))
    done, failed = [], []
    bar = tqdm(total=len(jobs), desc=f"cells ({lc.cluster} jobs {jobs[0].job_id.split('_')[0]})", unit="cell")
    while pending:
        for job in [j for j in pending if j.done()]:
            cell = pending.pop(job)
            try:
                done.append(tuple(job.result()))
            except Exception as exc:  # submitit re-raises the job's exception (or the scheduler's failure)
                first = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
                failed.append((cell, f"job {job.job_id}: {first} (log: {Path(job.paths.stderr)})"))
            bar.update(1)
        if pending:
            time.sleep(2.0)
    bar.close()
    return done, failed
