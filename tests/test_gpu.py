"""CUDA checks (marker ``gpu``): skipped where torch sees no CUDA GPU, run by ``benchmarks/gpu_check.sh`` on one.

For every learned method: 20 training steps with the GPU engine (bf16 autocast, channels_last, fused Adam;
torch.compile too for CycleGAN and AU-GAN) from the same initial weights and batches as a float32 CPU run, with
finite losses close to the CPU's; translation at an odd size close to the CPU's. Then kill-and-resume equality
on CUDA, Inception features and FID on CUDA equal to the CPU's, and ``bench run --launcher local --jobs 2``
sharing one GPU.

``AUGAN_BENCH_GPU_DEVICE=cpu`` runs the same code on the CPU (the engine's CUDA settings forced), so the checks
themselves can be tried on a machine without a GPU; the default device is ``cuda``.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import torch

DEVICE = os.environ.get("AUGAN_BENCH_GPU_DEVICE", "cuda")
pytestmark = [pytest.mark.gpu, pytest.mark.skipif(DEVICE.startswith("cuda") and not torch.cuda.is_available(),
                                                  reason="no CUDA GPU (benchmarks/gpu_check.sh runs these on one)")]
STEPS = 20
COMPILED = ("cyclegan", "augan")
# Their steps draw noise (style codes, VAE samples) on the device, whose generator differs from the CPU's: for
# them only finiteness and the 20-step mean are compared, the latter more loosely.
STOCHASTIC = ("munit", "unit")


def _learned() -> list[str]:
    from bench.translator import available_methods

    return [m for m, info in available_methods().items() if info.learned]


def _record(name: str, row: dict) -> None:
    """One JSON line per figure into $AUGAN_BENCH_GPU_OUT/gpu_tests.jsonl (the check script's summary reads it)."""
    out = os.environ.get("AUGAN_BENCH_GPU_OUT")
    if out:
        with open(Path(out) / "gpu_tests.jsonl", "a") as fh:
            fh.write(json.dumps({"test": name, **row}) + "\n")


def _batches(data, n: int):
    from bench.data.unpaired import UnpairedBatches

    batches = UnpairedBatches(data.train_a, data.train_b, 2, None, 32, 0)
    return [batches.batch(step) for step in range(n)]


def _losses(model, batches) -> list[dict[str, float]]:
    torch.manual_seed(1)  # the same draws for both runs where the device's generator is the CPU's
    optimizers = model.setup_training(0)
    for m in model.modules().values():
        m.train()
    out = []
    for a, b in batches:
        losses = model.engine_step(a.clone(), b.clone(), optimizers)
        out.append({k: float(v) for k, v in losses.items()})
    return out


def _pair(name: str):
    """The method at smoke on the CPU (float32) and on DEVICE, with identical initial weights."""
    from bench.translator import build_translator

    torch.manual_seed(0)
    cpu = build_translator(name, preset="smoke", device="cpu")
    dev = build_translator(name, preset="smoke", device=DEVICE)
    for key, module in cpu.modules().items():
        dev.modules()[key].load_state_dict(module.state_dict())
    return cpu, dev


@pytest.mark.parametrize("compiled", [False, True], ids=["eager", "compile"])
@pytest.mark.parametrize("name", _learned())
def test_fast_engine_trains_like_float32_on_the_cpu(name, compiled, smoke_suite):
    from bench.translator import TrainEngine

    if compiled and name not in COMPILED:
        pytest.skip("torch.compile is checked for CycleGAN and AU-GAN")
    cpu, dev = _pair(name)
    cpu.use_engine(TrainEngine())
    dev.use_engine(TrainEngine(precision="bf16", channels_last=True, fused_adam=True, compile=compiled))
    if not DEVICE.startswith("cuda"):  # resolved() keeps a CPU at fp32 and unfused Adam: force what CUDA gets
        dev.engine = replace(dev.engine, precision="bf16", fused_adam=True)
    if compiled:
        for m in dev.modules().values():
            m.compile()
    batches = _batches(smoke_suite.unpaired(), STEPS)
    ref, got = _losses(cpu, batches), _losses(dev, batches)
    _record(f"train[{name},{'compile' if compiled else 'eager'}]",
            {"first": got[0], "first_fp32_cpu": ref[0], "mean_g_total": sum(r["g_total"] for r in got) / STEPS,
             "mean_g_total_fp32_cpu": sum(r["g_total"] for r in ref) / STEPS})
    assert all(math.isfinite(v) for row in got for v in row.values()), got
    stochastic = name in STOCHASTIC and DEVICE.startswith("cuda")
    if not stochastic:
        for key, value in ref[0].items():  # the same weights and batch: bf16 keeps ~3 significant digits
            assert got[0][key] == pytest.approx(value, rel=0.05, abs=0.02), (key, got[0][key], value)
    mean_ref = sum(r["g_total"] for r in ref) / STEPS
    mean_got = sum(r["g_total"] for r in got) / STEPS
    assert mean_got == pytest.approx(mean_ref, rel=0.5 if stochastic else 0.25), \
        "20-step mean of g_total drifted from float32's"


@pytest.mark.parametrize("name", _learned())
def test_translate_at_an_odd_size_matches_the_cpu(name):
    cpu, dev = _pair(name)
    x = torch.rand(1, 3, 37, 53, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        want = cpu.translate(x)
        got = dev.translate(x.to(DEVICE)).cpu()
    _record(f"translate[{name}]", {"max_abs_diff": float((got - want).abs().max())})
    assert got.shape == x.shape and torch.isfinite(got).all()
    assert float((got - want).abs().max()) < 2e-2  # TF32 convolutions on CUDA by default


def test_kill_and_resume_on_cuda_equals_an_uninterrupted_run(smoke_suite, tmp_path, monkeypatch):
    from bench import conformance

    monkeypatch.setenv("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(True)
    cudnn = (torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic)
    torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic = False, True
    try:
        conformance.check_kill_and_resume("cyclegan", smoke_suite.unpaired(), tmp_path, kill_at=5, device=DEVICE)
    finally:
        torch.use_deterministic_algorithms(False)
        torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic = cudnn


def test_scoring_on_cuda_equals_scoring_on_the_cpu(smoke_suite, with_weights):
    from bench.metrics.fid_kid import InceptionExtractor, extract_features, fid_from_features

    images, reference = list(smoke_suite.test_a), list(smoke_suite.test_b)
    feats = {}
    for device in ("cpu", DEVICE):
        ext = InceptionExtractor(device=device)
        feats[device] = (extract_features(images, ext, 4, use_cache=False),
                         extract_features(reference, ext, 4, use_cache=False))
    (a_cpu, r_cpu), (a_dev, r_dev) = feats["cpu"], feats[DEVICE]
    rel = float((a_dev - a_cpu).norm() / a_cpu.norm())
    fid_cpu, fid_dev = fid_from_features(a_cpu, r_cpu), fid_from_features(a_dev, r_dev)
    _record("scoring", {"features_rel_diff": rel, "fid_cpu": fid_cpu, "fid_device": fid_dev})
    assert rel < 1e-3
    assert fid_dev == pytest.approx(fid_cpu, rel=1e-3)


def test_local_launcher_runs_two_cells_at_once_on_one_gpu(tmp_path):
    env = {**os.environ}
    data = tmp_path / "data"
    synth = subprocess.run([sys.executable, "-m", "bench.cli", "data", "synth", "--out", str(data), "--n-train", "4",
                            "--n-test", "2", "--size", "64x128"], env=env, capture_output=True, text=True)
    assert synth.returncode == 0, synth.stderr[-2000:]
    res = subprocess.run([sys.executable, "-m", "bench.cli", "run", "--suite", f"folder:{data}", "--methods",
                          "identity,zero-dce,cyclegan", "--preset", "smoke", "--device", DEVICE, "--launcher", "local",
                          "--jobs", "2", "--out", str(tmp_path / "out")], env=env, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr[-3000:]
    run_dir = next((tmp_path / "out").glob("*/smoke"))
    for method in ("identity", "zero-dce", "cyclegan"):
        assert (run_dir / "cells" / method / "seed0" / "metrics.json").is_file(), method
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["device"].startswith(DEVICE.split(":")[0])
