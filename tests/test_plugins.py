"""A third-party package that adds a method and a metric through entry points: listed, scored, tabled, and its
method run through the conformance suite, exactly like the built-in ones."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from bench.data.io import read_rgb

ROOT = Path(__file__).resolve().parents[1]

PLUGIN = '''
import numpy as np
import torch

from bench.data.io import read_rgb
from bench.metrics import MetricInfo
from bench.metrics.bootstrap import bootstrap_mean_ci


class Invert:
    """inverts the image (a plug-in method)"""
    name = "invert"
    learned = False

    def __init__(self, preset="quick", device="cpu"):
        pass

    def fit(self, data, budget, out_dir):
        pass

    def translate(self, images):
        return 1 - images

    def state_dict(self):
        return {}

    def load_state_dict(self, state):
        pass


def brightness(scorer, translated, names, record):
    values = np.array([read_rgb(p).mean() for p in translated])
    lo, hi = bootstrap_mean_ci(values)
    record("brightness", float(values.mean()), lo, hi, extractor="plugin-v1")


BRIGHTNESS = MetricInfo("brightness", "mean 8-bit value of the translation (a plug-in metric)",
                        higher_is_better=True, needs="translations", per_image=True,
                        compute="brightness_plugin:brightness", label="Brightness")
'''


@pytest.fixture(scope="module")
def plugin(tmp_path_factory):
    site = tmp_path_factory.mktemp("site")
    (site / "brightness_plugin.py").write_text(PLUGIN)
    dist = site / "brightness_plugin-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: brightness-plugin\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[augan_bench.translators]\ninvert = brightness_plugin:Invert\n\n"
                                           "[augan_bench.metrics]\nbrightness = brightness_plugin:BRIGHTNESS\n")
    env = {**os.environ, "PYTHONPATH": str(site)}
    return env


def _bench(env, *args, cwd=None):
    return subprocess.run([sys.executable, "-m", "bench.cli", *args], env=env, cwd=cwd, capture_output=True, text=True)


def test_plugin_method_and_metric_are_listed(plugin):
    out = _bench(plugin, "list").stdout
    assert "invert" in out and "inverts the image (a plug-in method)" in out
    assert "brightness" in out and "mean 8-bit value of the translation" in out


def test_plugin_metric_is_scored_and_tabled_beside_built_in_ones(plugin, tmp_path):
    data = tmp_path / "data"
    assert _bench(plugin, "data", "synth", "--out", str(data), "--n-train", "3", "--n-test", "3",
                  "--size", "64x128").returncode == 0
    res = _bench(plugin, "run", "--suite", f"folder:{data}", "--methods", "identity,invert", "--preset", "smoke",
                 "--device", "cpu", "--out", str(tmp_path / "out"))
    assert res.returncode == 0, res.stderr[-3000:]
    run_dir = next((tmp_path / "out").glob("*/smoke"))
    rows = {(r["method"], r["metric"]): r for r in csv.DictReader(open(run_dir / "metrics.csv"))}
    inputs = sorted((data / "testA").glob("*.png"))
    expected = np.mean([read_rgb(p).mean() for p in inputs])
    assert float(rows["identity", "brightness"]["value"]) == pytest.approx(expected, rel=1e-9)
    assert float(rows["invert", "brightness"]["value"]) == pytest.approx(255 - expected, abs=0.51)
    assert rows["invert", "brightness"]["extractor"] == "plugin-v1" and rows["invert", "brightness"]["ci_low"]
    assert ("identity", "fid") in rows  # the built-in metrics are still there (skipped offline)
    summary = (run_dir / "tables" / "summary.md").read_text()
    assert any(line.startswith("| method |") and "Brightness ↑" in line for line in summary.splitlines()), summary
    table = _bench(plugin, "tables", "--run", str(run_dir))
    assert table.returncode == 0 and "Brightness ↑" in table.stdout, table.stdout + table.stderr


def test_plugin_method_passes_the_conformance_suite(plugin):
    res = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-k", "invert",
                          str(ROOT / "tests" / "test_conformance.py")], env=plugin, cwd=ROOT,
                         capture_output=True, text=True)
    assert res.returncode == 0 and "2 passed" in res.stdout, res.stdout[-2000:]
