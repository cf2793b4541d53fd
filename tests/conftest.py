"""Shared fixtures: an isolated cache, offline mode, and locally made weight files.

No test downloads anything. Metric tests use weight files of the right architecture made from
random initialisation, re-initialised with Kaiming-normal convolutions so that features do
not vanish (with PyTorch's default init Inception's 2048-d features have std ~5e-8 and every
FID would be ~0, so a test would pass while checking nothing).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))


def random_images(folder: Path, names: list[str], size: tuple[int, int] = (16, 24), seed: int = 0) -> Path:
    """``names`` as random 8-bit RGB images of ``size`` (H, W) in ``folder`` (made if missing)."""
    import numpy as np
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for name in names:
        Image.fromarray(rng.integers(0, 255, (*size, 3), dtype=np.uint8)).save(folder / name)
    return folder


# Screenshots and other files a reviewer opens after CI (the browser tests write theirs here).
ARTIFACTS = Path(os.environ.get("AUGAN_BENCH_TEST_ARTIFACTS", Path(__file__).resolve().parents[1] / ".test-artifacts"))
BROWSER_FLAGS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync")


def headless_chromium(width: int = 1280, height: int = 2000):
    """A Selenium driver of Debian's headless Chromium; skips where it is not installed, fails where CI requires it."""
    import shutil

    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if not (chromium and driver):
        if os.environ.get("AUGAN_BENCH_REQUIRE_CHROMIUM"):
            pytest.fail("Chromium is required here (AUGAN_BENCH_REQUIRE_CHROMIUM): apt-get install chromium "
                        "chromium-driver")
        pytest.skip("headless Chromium not installed (apt-get install chromium chromium-driver); .ci/run installs it")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = chromium
    for flag in (*BROWSER_FLAGS, f"--window-size={width},{height}"):
        opts.add_argument(flag)
    return webdriver.Chrome(service=Service(driver), options=opts)


@pytest.fixture(scope="session", autouse=True)
def _isolated_env(tmp_path_factory):
    root = tmp_path_factory.mktemp("env")
    saved = dict(os.environ)
    os.environ["AUGAN_BENCH_OFFLINE"] = "1"
    os.environ["AUGAN_BENCH_CACHE"] = str(root / "cache")
    os.environ["TORCH_HOME"] = str(root / "torch-home-empty")
    os.environ.pop("AUGAN_BENCH_WEIGHTS", None)
    yield
    os.environ.clear()
    os.environ.update(saved)


@pytest.fixture(scope="session")
def weights_dir(tmp_path_factory) -> Path:
    """A folder with test-only Inception and AlexNet files under their published names."""
    from bench.substitute_weights import make_substitute_weights

    return make_substitute_weights(tmp_path_factory.mktemp("weights"))


@pytest.fixture(scope="session")
def run_with_test_weights(tmp_path_factory, weights_dir):
    """``run(cfg)`` with the test weights in TORCH_HOME's hub cache (for module-scoped run fixtures)."""
    from bench.runner import run

    torch_home = tmp_path_factory.mktemp("th")
    (torch_home / "hub" / "checkpoints").mkdir(parents=True)
    for f in weights_dir.iterdir():
        (torch_home / "hub" / "checkpoints" / f.name).symlink_to(f)

    def run_it(cfg):
        old = os.environ["TORCH_HOME"]
        os.environ["TORCH_HOME"] = str(torch_home)
        try:
            return run(cfg)
        finally:
            os.environ["TORCH_HOME"] = old

    run_it.torch_home = torch_home
    return run_it


@pytest.fixture
def with_weights(weights_dir, monkeypatch) -> Path:
    """Test weights visible where our code and the reference packages look (TORCH_HOME hub cache)."""
    torch_home = weights_dir.parent / (weights_dir.name + "-torch-home")
    ckpt = torch_home / "hub" / "checkpoints"
    if not ckpt.is_dir():
        ckpt.mkdir(parents=True)
        for f in weights_dir.iterdir():
            (ckpt / f.name).symlink_to(f)
    monkeypatch.setenv("TORCH_HOME", str(torch_home))
    return ckpt


@pytest.fixture(scope="session")
def smoke_suite():
    """The synthetic-night smoke suite, rendered once per session."""
    from bench.suites import get_suite

    return get_suite("synthetic-night").prepare("smoke", None)


_PLUGIN_TEMPLATE = """{preamble}

class {attr}:
    \"\"\"{doc}\"\"\"
    name = "{method}"
    learned = {learned}

    def __init__(self, preset="quick", device="cpu"):
        pass

    def fit(self, data, budget, out_dir):
        pass

    def translate(self, images):
        {translate}

    def state_dict(self):
        return {{}}

    def load_state_dict(self, state):
        pass
"""


@pytest.fixture
def plugin_site(tmp_path):
    """Make a folder that, on PYTHONPATH, is an installed plug-in package with one entry point.

    ``translate`` is the body of the plug-in translator's ``translate(images)``; ``source`` replaces
    the generated module entirely.
    """

    def make(module: str, method: str, attr: str, *, doc: str = "a test plug-in", translate: str = "return images",
             learned: bool = False, preamble: str = "", source: str | None = None) -> Path:
        site = tmp_path / "site"
        dist = site / f"{module}-0.1.dist-info"
        dist.mkdir(parents=True)
        if source is None:
            source = _PLUGIN_TEMPLATE.format(preamble=preamble, attr=attr, doc=doc, method=method, learned=learned,
                                             translate=translate)
        (site / f"{module}.py").write_text(source)
        (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {module.replace('_', '-')}\nVersion: 0.1\n")
        (dist / "entry_points.txt").write_text(f"[augan_bench.translators]\n{method} = {module}:{attr}\n")
        return site

    return make


@pytest.fixture
def cli_translation(tmp_path):
    """``bench translate --method METHOD --checkpoint FILE`` on one random 36 x 52 PNG: returns (output, input) as
    3 x H x W tensors in [0, 1], for comparing an authors' file's translation with a reference translator's."""
    from click.testing import CliRunner

    from bench.cli import main
    from bench.data.io import read_rgb, to_tensor, write_png

    def run(method: str, checkpoint: Path, name: str = "cli") -> tuple[torch.Tensor, torch.Tensor]:
        folder = tmp_path / name
        (folder / "in").mkdir(parents=True)
        write_png(folder / "in" / "a.png", (torch.rand(36, 52, 3) * 255).byte().numpy())
        res = CliRunner().invoke(main, ["translate", "--method", method, "--checkpoint", str(checkpoint), "--input",
                                        str(folder / "in"), "--output", str(folder / "out"), "--device", "cpu"])
        assert res.exit_code == 0, res.output
        return to_tensor(read_rgb(folder / "out" / "a.png")), to_tensor(read_rgb(folder / "in" / "a.png"))

    return run
