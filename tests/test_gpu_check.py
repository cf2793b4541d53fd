"""benchmarks/gpu_check.sh: without a GPU it says so and stops; its CPU rehearsal (GPU_CHECK_DRY=1) runs every
part and records each one's status, time and figures as JSON lines and a Markdown summary."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "gpu_check.sh"


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU: the script would run for real")
def test_without_cuda_the_script_says_so_and_exits_2(tmp_path):
    res = subprocess.run(["bash", str(SCRIPT), str(tmp_path / "out")], env={**os.environ, "PYTHON": sys.executable},
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 2 and "no CUDA: nothing to check" in res.stdout
    assert "torch sees no CUDA GPU" in (tmp_path / "out" / "device.txt").read_text()


@pytest.mark.slow
def test_cpu_rehearsal_records_every_part(tmp_path):
    out = tmp_path / "out"
    res = subprocess.run(["bash", str(SCRIPT), str(out)], capture_output=True, text=True, timeout=900,
                         env={**os.environ, "PYTHON": sys.executable, "GPU_CHECK_DRY": "1"})
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    rows = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    status = {r["part"]: r["status"] for r in rows if "status" in r}
    assert status == {"gpu_tests": "ok", "training_throughput": "ok", "bench_run": "ok", "feature_extraction": "ok"}
    assert any(r["part"] == "gpu_tests_figures" and r["test"].startswith("translate[") for r in rows)
    assert any(r["part"] == "training_throughput" and "img_per_s" in r for r in rows)
    assert any(r["part"] == "feature_extraction" and r.get("bench") == "feature_extraction" for r in rows)
    summary = (out / "summary.md").read_text()
    assert "| gpu_tests | ok (exit 0) |" in summary and "CPU rehearsal" in summary
