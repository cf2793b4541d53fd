"""Data-parallel training on CPU (gloo, 2 processes), bench train, and the cell launchers (submitit local)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest
from click.testing import CliRunner
import torch
from safetensors.torch import load_file

from bench.data.unpaired import UnpairedBatches
from bench.results import read_metrics_csv
from bench.runner import RunConfig, run
from bench.translator import TrainBudget

BENCH = str(Path(sys.executable).with_name("bench"))


def _cyclegan(batch_size: int, steps: int):
    from baselines.cyclegan.model import PRESETS, CycleGAN

    # pool off: with a pool each rank's history differs from the single process's by design (a pool per rank)
    cfg = replace(PRESETS["smoke"], batch_size=batch_size, max_steps=steps, pool_size=0, checkpoint_every=1000,
                  log_every=1)
    torch.manual_seed(0)
    return CycleGAN(config=cfg)


def _capture_first_step_gradients(before: list, after: list) -> None:
    """Gradients of the first two optimizer steps (G, then D): as computed (global pre-hooks run before the
    optimizer's own, so before the rank average) and as used by the step."""
    from torch.optim.optimizer import register_optimizer_step_post_hook, register_optimizer_step_pre_hook

    def grads(opt):
        return [p.grad.clone() for g in opt.param_groups for p in g["params"] if p.grad is not None]

    def keep(store):
        def hook(opt, args, kwargs) -> None:
            if len(store) < 2:
                store.append(grads(opt))
        return hook

    register_optimizer_step_pre_hook(keep(before))
    register_optimizer_step_post_hook(keep(after))


def _ddp_worker(rank: int, world: int, init_file: str, files, out: str) -> None:
    import torch.distributed as dist

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        before: list = []
        after: list = []
        _capture_first_step_gradients(before, after)
        model = _cyclegan(batch_size=1, steps=3)
        model.fit(files, TrainBudget(0), Path(out) / "train")
        torch.save({"before": before, "after": after, "weights": model.state_dict()}, Path(out) / f"rank{rank}.pt")
    finally:
        dist.destroy_process_group()


def test_unpaired_batches_split_the_global_batch_across_ranks(smoke_suite):
    data = smoke_suite.unpaired()
    whole = UnpairedBatches(data.train_a, data.train_b, 4, None, 32, seed=3)
    parts = [UnpairedBatches(data.train_a, data.train_b, 2, None, 32, seed=3, rank=r, world=2) for r in range(2)]
    assert parts[0].steps_per_epoch == whole.steps_per_epoch
    for step in (0, 5, whole.steps_per_epoch + 1):  # across an epoch boundary too
        a, b = whole.batch(step)
        got = [p.batch(step) for p in parts]
        assert torch.equal(torch.cat([g[0] for g in got]), a) and torch.equal(torch.cat([g[1] for g in got]), b)
    with pytest.raises(ValueError, match="need at least 64 training images"):
        UnpairedBatches(data.train_a, data.train_b, 1, None, 32, seed=0, rank=0, world=64)


@pytest.mark.slow
def test_two_gloo_processes_step_with_the_gradients_of_one_process_with_the_global_batch(smoke_suite, tmp_path):
    import torch.multiprocessing as mp

    data = smoke_suite.unpaired()
    mp.spawn(_ddp_worker, args=(2, str(tmp_path / "init"), data, str(tmp_path / "ddp")), nprocs=2, join=True)
    ranks = [torch.load(tmp_path / "ddp" / f"rank{r}.pt", weights_only=True) for r in range(2)]

    before: list = []
    after: list = []
    _capture_first_step_gradients(before, after)
    single = _cyclegan(batch_size=2, steps=3)
    single.fit(data, TrainBudget(0), tmp_path / "single")
    for which in range(2):  # the G step, then the D step
        r0, r1 = ranks[0], ranks[1]
        largest = max(float(g.abs().max()) for g in after[which])
        for k, g_one in enumerate(after[which]):
            # both ranks stepped with exactly the mean of their own gradients...
            mean = (r0["before"][which][k] + r1["before"][which][k]) / 2
            assert torch.equal(r0["after"][which][k], r1["after"][which][k])
            torch.testing.assert_close(r0["after"][which][k], mean, rtol=0, atol=1e-7 * largest)
            # ...which is the global-batch gradient. Not bit-equal: in one process, batch 2 and the mean of two
            # batch-1 gradients already differ by up to 4.4e-4 of the step's largest gradient (oneDNN picks other
            # convolution algorithms per batch size; measured), so the bound is 1e-3 of it.
            torch.testing.assert_close(mean, g_one, rtol=0, atol=1e-3 * largest)
    # the ranks' weights stay identical to each other; against the single process they differ where Adam
    # normalises float noise into full steps (biases before InstanceNorm have zero true gradient): <= 2 lr a step
    w0, w1, ref = ranks[0]["weights"], ranks[1]["weights"], single.state_dict()
    assert all(torch.equal(w0[k], w1[k]) for k in w0)
    lr = single.config.lr
    assert max(float((ref[k] - w0[k]).abs().max()) for k in ref if ref[k].is_floating_point()) <= 3 * 2 * lr * 1.01
    # rank 0 logged the rank-mean losses: at step 1 (same weights) they are the global-batch losses
    log_ddp = [json.loads(ln) for ln in (tmp_path / "ddp" / "train" / "train_log.jsonl").read_text().splitlines()]
    log_one = [json.loads(ln) for ln in (tmp_path / "single" / "train_log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log_ddp] == [1, 2, 3]
    for key in ("g_total", "cycle", "identity", "d_a", "d_b"):
        assert log_ddp[0][key] == pytest.approx(log_one[0][key], rel=1e-5), key


def _bench_train(out: Path, steps: int, extra=()) -> subprocess.Popen:
    cmd = [BENCH, "train", "--method", "cyclegan", "--preset", "smoke", "--device", "cpu", "--gpus", "2",
           "--out", str(out), "--max-steps", str(steps), *extra]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)


@pytest.mark.slow  # an end-to-end run: CI runs it with the slow tests
def test_bench_train_data_parallel_killed_and_resumed_equals_uninterrupted(tmp_path):
    steps = 60
    proc = _bench_train(tmp_path / "a", steps)
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, out
    cell = tmp_path / "a" / "synthetic-night" / "smoke" / "cells" / "cyclegan" / "seed0"
    uninterrupted = load_file(str(cell / "checkpoint.safetensors"))
    state = torch.load(cell / "train" / "train_state.pt", weights_only=True)
    assert state["world"] == 2 and len(state["ranks"]) == 2  # each rank's pool and RNG are kept

    cell_b = tmp_path / "b" / "synthetic-night" / "smoke" / "cells" / "cyclegan" / "seed0"
    proc = _bench_train(tmp_path / "b", steps)
    deadline = time.time() + 240
    while not (cell_b / "train" / "train_state.pt").is_file() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)  # torchrun and both workers, mid-training
    proc.wait()
    assert not (cell_b / "checkpoint.safetensors").is_file(), "training finished before it could be killed"
    killed_at = torch.load(cell_b / "train" / "train_state.pt", weights_only=True)["step"]
    assert 0 < killed_at < steps
    proc = _bench_train(tmp_path / "b", steps)
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, out
    resumed = load_file(str(cell_b / "checkpoint.safetensors"))
    assert resumed.keys() == uninterrupted.keys()
    assert all(torch.equal(resumed[k], uninterrupted[k]) for k in resumed)
    log = [json.loads(ln)["step"] for ln in (cell_b / "train" / "train_log.jsonl").read_text().splitlines()]
    assert log == sorted(set(log)) and log[-1] == steps  # no step logged twice after the resume


@pytest.mark.slow
def test_resuming_with_another_number_of_processes_is_refused(tmp_path):
    proc = _bench_train(tmp_path, 4)
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, out
    cell = tmp_path / "synthetic-night" / "smoke" / "cells" / "cyclegan" / "seed0"
    (cell / "checkpoint.safetensors").unlink()
    res = subprocess.run([BENCH, "train", "--method", "cyclegan", "--preset", "smoke", "--device", "cpu",
                          "--out", str(tmp_path), "--max-steps", "8"], capture_output=True, text=True)
    assert res.returncode == 2
    assert "written by 2 process(es); resume it with the same number (this run has 1)" in res.stderr


def _metrics(run_dir: Path) -> dict:
    return {(r.method, r.metric): r.value for r in read_metrics_csv(run_dir / "metrics.csv")}


@pytest.mark.slow  # two end-to-end runs each: CI runs them with the slow tests
@pytest.mark.parametrize("launcher", ["slurm", "local"])
def test_launched_cells_land_in_one_run_folder_with_the_numbers_of_a_plain_run(tmp_path, launcher):
    methods = ("identity", "gamma", "clahe")
    plain = run(RunConfig(preset="smoke", methods=methods, out=tmp_path, name="plain", device="cpu"))
    from bench.launch import LaunchConfig

    lc = LaunchConfig(launcher=launcher, jobs=2, cluster="local")  # submitit's local executor stands in for Slurm
    cfg = RunConfig(preset="smoke", methods=methods, out=tmp_path, name="launched", device="cpu", launch=lc)
    launched = run(cfg)
    assert sorted(launched.done) == sorted((m, 0) for m in methods)
    a, b = _metrics(plain.run_dir), _metrics(launched.run_dir)
    assert a.keys() == b.keys()
    assert all(a[k] == pytest.approx(b[k], rel=1e-9, nan_ok=True) for k in a)
    if launcher == "slurm":
        assert list((launched.run_dir / "launch").iterdir())  # submitit's job folders (logs) are kept
    again = run(cfg)  # a re-run submits only unfinished cells: none
    assert again.done == [] and sorted(again.skipped) == sorted((m, 0) for m in methods)
    manifest = json.loads((launched.run_dir / "manifest.json").read_text())
    assert manifest["config"]["launch"]["launcher"] == launcher and manifest["train_engine"]["precision"] == "fp32"


@pytest.mark.slow
def test_a_failing_cell_is_reported_and_the_others_are_kept(tmp_path, plugin_site):
    site = plugin_site("failing_plugin", "failing", "Failing",
                       translate="raise RuntimeError('boom: this plug-in always fails')")
    env = {**os.environ, "PYTHONPATH": str(site)}
    res = subprocess.run([BENCH, "run", "--preset", "smoke", "--methods", "identity,failing", "--device", "cpu",
                          "--out", str(tmp_path), "--launcher", "local", "--jobs", "2"],
                         env=env, capture_output=True, text=True)
    assert res.returncode == 2, res.stderr
    assert "1 of 2 cell(s) failed" in res.stderr and "failing seed 0: RuntimeError: boom" in res.stderr
    assert "Traceback" not in res.stderr
    run_dir = tmp_path / "synthetic-night" / "smoke"
    assert (run_dir / "cells" / "identity" / "seed0" / "metrics.json").is_file()
    assert {r.method for r in read_metrics_csv(run_dir / "metrics.csv")} == {"identity", "day-twin"}


def test_automatic_engine_settings_resolve_per_device():
    from bench.translator import TrainEngine

    def fields(e):
        return e.precision, e.fused_adam, e.workers, e.pin_memory, e.cudnn_benchmark

    assert fields(TrainEngine(precision="bf16").resolved("cuda:1")) == ("bf16", True, 4, True, True)
    forced = TrainEngine(fused_adam=True, pin_memory=True, cudnn_benchmark=True)
    assert fields(forced.resolved("cpu")) == ("fp32", False, 0, False, False)  # CUDA settings stay off on the CPU
    assert fields(TrainEngine(fused_adam=False, workers=0, cudnn_benchmark=False).resolved("cuda")) == (
        "fp32", False, 0, True, False)


def test_bf16_runs_on_cpus_with_native_bf16_and_is_refused_with_the_reason_elsewhere(monkeypatch):
    import bench.translator as translator
    from bench.cli import main
    from bench.translator import EngineError, TrainEngine, cpu_bf16

    amd = "model name\t: AMD EPYC 7B13\nflags\t\t: fpu sse avx2 fma\n"
    sapphire = "model name\t: Intel(R) Xeon(R) Platinum 8480+\nflags\t\t: avx2 avx512f avx512_bf16 amx_bf16 amx_tile\n"
    assert cpu_bf16(amd) == (False, "the CPU (AMD EPYC 7B13) has neither avx512_bf16 nor amx_bf16")
    assert cpu_bf16(sapphire) == (True, "the CPU has avx512_bf16, amx_bf16")
    monkeypatch.setattr(translator, "cpu_bf16", lambda: cpu_bf16(amd))
    with pytest.raises(EngineError, match=r"bf16 on this CPU: the CPU \(AMD EPYC 7B13\) has neither.*--precision fp32"):
        TrainEngine(precision="bf16").resolved("cpu")
    res = CliRunner().invoke(main, ["train", "--method", "cyclegan", "--preset", "smoke", "--device", "cpu",
                                     "--precision", "bf16", "--max-steps", "1"])
    assert res.exit_code == 2 and "has neither avx512_bf16 nor amx_bf16" in res.output and "Traceback" not in res.output
    monkeypatch.setattr(translator, "cpu_bf16", lambda: cpu_bf16(sapphire))
    assert TrainEngine(precision="bf16").resolved("cpu").precision == "bf16"  # autocast on the CPU, recorded so


def test_cudnn_benchmark_switch_reaches_cudnn_on_cuda_only(monkeypatch):
    """use_engine sets cuDNN's process-wide autotuning from the engine on a CUDA model (the model's device is
    faked: no network moves, only the switch is read), and leaves it alone on the CPU."""
    from bench.translator import TrainEngine, build_translator

    monkeypatch.setattr(torch.backends.cudnn, "benchmark", False)
    model = build_translator("zero-dce", preset="smoke", device="cpu")
    model.use_engine(TrainEngine(cudnn_benchmark=True))
    assert torch.backends.cudnn.benchmark is False  # a CPU engine resolves it off and does not touch the switch
    model.device = torch.device("cuda")
    model.use_engine(TrainEngine())
    assert torch.backends.cudnn.benchmark is True  # default on for CUDA
    model.use_engine(TrainEngine(cudnn_benchmark=False))
    assert torch.backends.cudnn.benchmark is False


def test_engine_options_change_what_runs_and_are_recorded(tmp_path):
    from bench.cli import main
    from bench.learned import META_CONFIG, decode_text

    runner = CliRunner()

    def train(out, *extra):
        res = runner.invoke(main, ["train", "--method", "cyclegan", "--preset", "smoke", "--device", "cpu",
                                   "--max-steps", "3", "--out", str(out), *extra])
        assert res.exit_code == 0, res.output
        return load_file(str(out / "synthetic-night" / "smoke" / "cells" / "cyclegan" / "seed0" /
                             "checkpoint.safetensors"))

    plain = train(tmp_path / "plain")
    workers = train(tmp_path / "workers", "--workers", "2")  # batches decoded in 2 loader processes
    assert all(torch.equal(plain[k], workers[k]) for k in plain)  # the same batches, the same weights
    cl = train(tmp_path / "cl", "--channels-last")
    assert json.loads(decode_text(cl[META_CONFIG]))["channels_last"] is True
    assert json.loads(decode_text(plain[META_CONFIG]))["channels_last"] is False
    res = runner.invoke(main, ["run", "--preset", "smoke", "--methods", "identity", "--device", "cpu", "--out",
                               str(tmp_path / "run"), "--workers", "2", "--no-fused-adam", "--no-cudnn-benchmark"])
    assert res.exit_code == 0, res.output
    manifest = json.loads((tmp_path / "run" / "synthetic-night" / "smoke" / "manifest.json").read_text())
    assert manifest["config"]["engine"] == {"precision": "fp32", "channels_last": None, "compile": False,
                                            "fused_adam": False, "workers": 2, "pin_memory": None,
                                            "cudnn_benchmark": False}
    # as resolved on this device
    assert manifest["train_engine"]["precision"] == "fp32" and manifest["train_engine"]["workers"] == 2
    assert manifest["train_engine"]["cudnn_benchmark"] is False


@pytest.mark.slow
def test_compiled_augan_trains_like_eager_and_saves_plain_keys(tmp_path):
    """--compile (inductor; ~2 min on 2 cores, hence slow): the same step-1 losses as eager execution, and a
    checkpoint whose keys and shapes are eager's (nn.Module.compile() in place: no _orig_mod. prefixes)."""
    from bench.cli import main
    from bench.training_log import NOT_LOSSES

    def train(out, *extra):
        res = CliRunner().invoke(main, ["train", "--method", "augan", "--preset", "smoke", "--device", "cpu",
                                        "--max-steps", "2", "--out", str(out), *extra])
        assert res.exit_code == 0, res.output
        cell = out / "synthetic-night" / "smoke" / "cells" / "augan" / "seed0"
        first = json.loads((cell / "train" / "train_log.jsonl").read_text().splitlines()[0])
        return load_file(str(cell / "checkpoint.safetensors")), first

    eager, eager_losses = train(tmp_path / "eager")
    compiled, compiled_losses = train(tmp_path / "compiled", "--compile")
    assert {k: v.shape for k, v in compiled.items()} == {k: v.shape for k, v in eager.items()}
    assert eager_losses.keys() == compiled_losses.keys()
    for name, value in eager_losses.items():  # fused kernels reorder float sums: 1e-5 relative measured
        if name not in NOT_LOSSES:  # speed and memory differ, as they should
            assert compiled_losses[name] == pytest.approx(value, rel=1e-4), name


def test_fast_engine_reaches_every_learned_method():
    """The GPU engine (bf16 autocast, channels_last, fused Adam) must reach each method's convolutions: a method's
    own autocast(enabled=False) inside the step once kept AU-GAN in float32 silently. Its first losses must stay
    near float32's. The CPU has bf16 autocast and fused Adam too, so the CUDA settings are forced here to run the
    same code."""
    from bench.learned import LearnedTranslator
    from bench.translator import TrainEngine, available_methods, build_translator

    g = torch.Generator().manual_seed(0)
    a, b = (torch.rand(1, 3, 64, 128, generator=g) * 2 - 1 for _ in range(2))
    checked = []
    for name, info in available_methods().items():
        if not info.learned:
            continue
        first = {}
        for fast in (False, True):
            torch.manual_seed(0)
            model = build_translator(name, preset="smoke", device="cpu")
            if not isinstance(model, LearnedTranslator):
                break
            model.use_engine(TrainEngine(channels_last=fast))
            if fast:  # resolved() keeps this CPU (no native bf16) at fp32 and unfused Adam
                model.engine = replace(model.engine, precision="bf16", fused_adam=True)
            optimizers = model.setup_training(0)
            outputs = set()

            def record(_module, _inputs, out, outputs=outputs):
                outputs.add((out.dtype, out.is_contiguous(memory_format=torch.channels_last)))

            hooks = [m.register_forward_hook(record)
                     for net in model.modules().values() for m in net.modules() if isinstance(m, torch.nn.Conv2d)]
            real_a = torch.cat([a, a.flip(-1)][:model.A_BATCHES])  # UNSB's step reads two batches of A
            first[fast] = {k: float(v) for k, v in model.engine_step(real_a, b.clone(), optimizers).items()}
            for h in hooks:
                h.remove()
            if fast:
                assert outputs == {(torch.bfloat16, True)}, (name, outputs)
            else:  # (a 1-pixel-high map is contiguous in both formats)
                assert {dtype for dtype, _ in outputs} == {torch.float32}, (name, outputs)
            # (a method's own optimizer, DECENT's Polyak-averaged one for its flows, has no fused kernel)
            assert all(o.defaults["fused"] == (True if fast else None) for o in optimizers
                       if isinstance(o, torch.optim.Adam)), name
        else:
            for loss, value in first[False].items():  # bf16 keeps ~3 significant digits; losses sum many terms
                assert first[True][loss] == pytest.approx(value, rel=0.05, abs=0.02), (name, loss)
            checked.append(name)
    assert {"augan", "cyclegan", "munit", "unit", "forkgan", "cut"} <= set(checked)


def test_slurm_options_reach_the_submitit_executor(tmp_path, monkeypatch):
    import submitit

    from bench.launch import CellJobs, LaunchConfig, RequeuedCell, _submitit
    from bench.runner import run_cell_job

    seen = {}

    class Recorder:
        def __init__(self, folder, cluster=None):
            seen["cluster"] = cluster

        def update_parameters(self, **kw):
            seen.update(kw)

        def map_array(self, fn, *args):
            seen["job"] = fn
            seen["cells"] = list(zip(*args[1:]))

            class Job:
                job_id = "7_0"

                def done(self):
                    return True

                def result(self):
                    return ("identity", 0)

            return [Job()]

    monkeypatch.setattr(submitit, "AutoExecutor", Recorder)
    lc = LaunchConfig(launcher="slurm", partition="gpu", gpus_per_job=2, cpus_per_job=6, array_parallelism=3,
                      timeout_min=90)

    jobs = CellJobs(run_cell_job, RunConfig(launch=lc), tmp_path, "cuda", "synthetic-night")
    assert _submitit(jobs, [("identity", 0)]) == ([("identity", 0)], [])
    job = seen.pop("job")  # the launcher runs the job it is handed, requeued on preemption
    assert isinstance(job, RequeuedCell) and job.job is run_cell_job
    assert seen == {"cells": [("identity", 0)], "cluster": None, "timeout_min": 90, "cpus_per_task": 6, "gpus_per_node": 2,
                    "name": "augan-bench-synthetic-night", "slurm_partition": "gpu", "slurm_array_parallelism": 3}
