"""The package as users get it from pip: a wheel built from the checkout, installed into a fresh environment,
used from a folder outside the checkout (so nothing can be read from the source tree by accident)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
SKIP_IN_COPY = {".venv", ".git", "build", "dist", "results", ".test-artifacts", "__pycache__"}


def _run(cmd: list[str], cwd: Path, timeout: int = 900) -> subprocess.CompletedProcess:
    out = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout, env=os.environ.copy())
    assert out.returncode == 0, f"{' '.join(map(str, cmd))}\nstdout:\n{out.stdout[-3000:]}\nstderr:\n{out.stderr[-3000:]}"
    return out


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """A venv holding only the wheel; the dependencies come from this environment's site-packages (appended
    to the path, so the editable install here is not imported)."""
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"
    shutil.copytree(ROOT, src, ignore=lambda d, names: [n for n in names if n in SKIP_IN_COPY or n.endswith(".egg-info")])
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp / "dist"),
          str(src)], cwd=tmp)
    (wheel,) = (tmp / "dist").glob("augan_bench-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert {n.split("/")[0] for n in names if not n.startswith("augan_bench-")} == {"augan", "baselines", "bench"}
    assert "bench/report/papers/n2d3-table1.toml" in names
    # The default run's evaluators travel with the package, index and files (the index's hashes are tested elsewhere).
    assert {"bench/downstream/evaluators/index.json", "bench/downstream/evaluators/segmenter-quick.safetensors",
            "bench/downstream/evaluators/detector-quick.safetensors"} <= set(names)
    venv = tmp / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)], cwd=tmp)
    python = venv / "bin" / "python"
    site = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())
    _run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "-q", str(wheel)], cwd=tmp)
    (site / "zz_test_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return venv


def test_the_installed_wheel_lists_shows_paper_tables_and_scores(installed, tmp_path):
    bench = installed / "bin" / "bench"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    where = _run([str(installed / "bin" / "python"), "-c", "import bench; print(bench.__file__)"], cwd=elsewhere)
    assert str(installed) in where.stdout, where.stdout  # the wheel's copy, not the checkout
    listed = _run([str(bench), "list"], cwd=elsewhere).stdout
    assert "synthetic-night" in listed and "augan" in listed and "cyclegan" in listed
    papers = _run([str(bench), "tables", "--paper", "list"], cwd=elsewhere).stdout
    assert "n2d3-table1" in papers and "augan-bmvc21" in papers
    _run([str(bench), "data", "export", "--suite", "synthetic-night", "--preset", "smoke", "--out", "proto"],
         cwd=elsewhere)
    scored = _run([str(bench), "score", "--preset", "smoke", "--translations", "proto/testA", "--method", "raw",
                   "--protocol", "proto/protocol.json", "--no-bounds", "--device", "cpu", "--json"], cwd=elsewhere)
    data = json.loads(scored.stdout)
    psnr = next(r for r in data["records"] if r["metric"] == "psnr")
    assert psnr["value"] > 0 and data["external"]["n_scored"] == 12
    assert (elsewhere / "results" / "synthetic-night" / "smoke" / "tables" / "summary.md").is_file()
    # bench new-method writes into a project, never into the installed package
    refused = subprocess.run([str(bench), "new-method", "my-gan"], cwd=elsewhere, capture_output=True, text=True)
    assert refused.returncode == 2 and "has no baselines/ folder" in refused.stderr

