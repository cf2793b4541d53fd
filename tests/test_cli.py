"""The command line: help texts, listings, errors a user sees, and `bench data synth`."""

import errno
import json
import os
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from bench.cli import main
from bench.data.io import list_images, read_rgb

COMMANDS = [[], ["run"], ["translate"], ["import-checkpoint"], ["new-method"], ["list"], ["data"], ["data", "synth"], ["weights"], ["weights", "list"],
            ["weights", "where"], ["weights", "check"]]


@pytest.mark.parametrize("cmd", COMMANDS, ids=lambda c: " ".join(c) or "bench")
def test_every_command_has_help_with_an_example(cmd):
    res = CliRunner().invoke(main, [*cmd, "--help"])
    assert res.exit_code == 0 and "Example" in res.output


def test_list_shows_suites_methods_and_metrics():
    res = CliRunner().invoke(main, ["list"])
    assert res.exit_code == 0
    for name in ("synthetic-night", "synthetic-rain", "synthetic-fog", "folder:PATH", "identity", "gamma", "clahe",
                 "histmatch", "fid", "kid", "lpips", "psnr", "ssim"):
        assert name in res.output


def test_bad_names_exit_2_with_one_clear_line(tmp_path):
    res = CliRunner().invoke(main, ["run", "--suite", "bdd100k-nigth", "--out", str(tmp_path)])
    assert res.exit_code == 2 and "error: unknown suite 'bdd100k-nigth'" in res.output
    assert "synthetic-night" in res.output and "Traceback" not in res.output
    res = CliRunner().invoke(main, ["run", "--methods", "identity,cyclegann", "--preset", "smoke", "--out", str(tmp_path)])
    assert res.exit_code == 2 and "unknown method 'cyclegann'" in res.output
    res = CliRunner().invoke(main, ["run", "--seeds", "a,b"])
    assert res.exit_code == 2 and "comma list" in res.output
    res = CliRunner().invoke(main, ["run", "--size", "12x"])
    assert res.exit_code == 2 and "HxW" in res.output


@pytest.mark.parametrize("args, says", [
    (["--seeds", "3-1"], "--seeds '3-1' runs backwards and names no seed"),
    (["--seeds", ","], "--seeds ',' names no seed"),
    (["--seeds", "0,0"], "negative or repeated seed"),
    (["--methods", ","], "--methods ',' names no method"),
])
def test_options_that_would_run_nothing_or_the_defaults_are_refused(args, says, tmp_path):
    """Before: --seeds 3-1 ran nothing and exited 0, --methods , silently ran the suite's defaults."""
    res = CliRunner().invoke(main, ["run", "--preset", "smoke", "--out", str(tmp_path), *args])
    assert res.exit_code == 2 and says in res.output
    assert not any(tmp_path.iterdir())  # nothing started


def test_translate_output_naming_a_file_is_refused_before_any_work(tmp_path):
    (tmp_path / "in").mkdir()
    target = tmp_path / "day.png"
    target.write_bytes(b"not a folder")
    res = CliRunner().invoke(main, ["translate", "--method", "identity", "--checkpoint", str(target),
                                    "--input", str(tmp_path / "in"), "--output", str(target)])
    assert res.exit_code == 2 and "Invalid value for '--output'" in res.output and "is a file" in res.output
    assert target.read_bytes() == b"not a folder"


def test_missing_folder_suite_shows_the_expected_tree(tmp_path):
    res = CliRunner().invoke(main, ["run", "--suite", f"folder:{tmp_path}/nope", "--out", str(tmp_path / "r")])
    assert res.exit_code == 2 and "trainA/" in res.output and "testB/" in res.output


def test_ctrl_c_exits_130_with_a_resume_hint(monkeypatch):
    import bench.runner

    def interrupted(cfg):
        raise KeyboardInterrupt

    monkeypatch.setattr(bench.runner, "run", interrupted)
    res = CliRunner().invoke(main, ["run"])
    assert res.exit_code == 130 and "run the same command again to resume" in res.output


def test_full_disk_is_one_line_not_a_traceback(monkeypatch):
    import bench.runner

    def full(cfg):
        raise OSError(errno.ENOSPC, "No space left on device", "/results/x.png")

    monkeypatch.setattr(bench.runner, "run", full)
    res = CliRunner().invoke(main, ["run"])
    assert res.exit_code == 1 and "No space left on device" in res.output and "resume" in res.output


@pytest.mark.slow
def test_run_options_change_behaviour(tmp_path):
    out = tmp_path / "r"
    res = CliRunner().invoke(main, ["run", "--preset", "smoke", "--methods", "identity", "--suite", "synthetic-fog",
                                    "--size", "48x96", "--name", "mine", "--out", str(out), "--device", "cpu",
                                    "--seeds", "3"])
    assert res.exit_code == 0, res.output
    run_dir = out / "synthetic-fog" / "mine"
    assert (run_dir / "cells" / "identity" / "seed3" / "metrics.json").is_file()
    img = read_rgb(next((run_dir / "cells" / "identity" / "seed3" / "translations").glob("*.png")))
    assert img.shape == (48, 96, 3)
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["config"]["size"] == [48, 96] and manifest["device"] == "cpu"
    table = (run_dir / "tables" / "summary.md").read_text()  # offline: each skipped metric with the reason
    assert "LPIPS skipped: weights file alexnet" in table
    assert "FID (clean), KID (clean) skipped: weights file inception-2015-12-05.pt" in table and \
        "https://nvlabs-fi-cdn.nvidia.com/stylegan2-ada-pytorch/pretrained/metrics/inception-2015-12-05.pt" in table
    res = CliRunner().invoke(main, ["run", "--preset", "smoke", "--methods", "identity", "--suite", "synthetic-fog",
                                    "--size", "48x96", "--name", "mine", "--out", str(out), "--seeds", "3"])
    assert "reused 1 finished cell" in res.output


def test_data_synth_writes_an_inspectable_suite(tmp_path):
    res = CliRunner().invoke(main, ["data", "synth", "--suite", "synthetic-rain", "--out", str(tmp_path),
                                    "--n-train", "3", "--n-test", "2", "--size", "32x64"])
    assert res.exit_code == 0, res.output
    for sub, n in (("trainA", 3), ("trainB", 3), ("testA", 2), ("testB", 2), ("testA_labels", 2)):
        files = list_images(tmp_path / sub)
        assert len(files) == n
    assert read_rgb(tmp_path / "testA" / "00000.png").shape == (32, 64, 3)
    label = np.asarray(__import__("PIL.Image", fromlist=["Image"]).open(tmp_path / "testA_labels" / "00000.png"))
    assert label.shape == (32, 64) and label.dtype == np.uint8
    coco = json.loads((tmp_path / "testA_boxes.json").read_text())
    assert {c["name"] for c in coco["categories"]} == {"car", "person"} and len(coco["images"]) == 2


def test_weights_check_reports_missing_files_with_the_fix():
    res = CliRunner().invoke(main, ["weights", "check"])
    assert res.exit_code == 1 and "MISSING" in res.output and "download https://" in res.output


def test_data_root_is_refused_where_a_suite_does_not_read_it(tmp_path):
    res = CliRunner().invoke(main, ["run", "--preset", "smoke", "--data-root", str(tmp_path), "--out", str(tmp_path)])
    assert res.exit_code == 2 and "does not read --data-root" in res.output


@pytest.mark.slow
def test_force_flag_redoes_finished_cells(tmp_path):
    args = ["run", "--preset", "smoke", "--methods", "identity", "--suite", "synthetic-fog", "--size", "32x64",
            "--out", str(tmp_path)]
    assert CliRunner().invoke(main, args).exit_code == 0
    assert "reused 1 finished cell" in CliRunner().invoke(main, args).output
    res = CliRunner().invoke(main, [*args, "--force"])
    assert res.exit_code == 0 and "finished 1 cell(s), reused 0" in res.output


def test_weights_check_passes_without_optional_files_and_flags_substitutes(weights_dir, tmp_path, monkeypatch):
    ckpt = tmp_path / "hub" / "checkpoints"
    ckpt.mkdir(parents=True)
    for f in weights_dir.iterdir():
        if f.name != "dinov2_vitl14_pretrain.pth":  # optional: fd-dinov2 is then skipped
            (ckpt / f.name).symlink_to(f)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    res = CliRunner().invoke(main, ["weights", "check"])
    assert "absent" in res.output and "optional" in res.output and "dinov2_vitl14_pretrain.pth" in res.output
    # The required files are present but are the test substitutes, so the check still fails, saying so.
    assert res.exit_code == 1 and res.output.count("MISMATCH") == 2 and "MISSING" not in res.output


@pytest.mark.slow
def test_new_method_scaffold_is_registered_runs_and_its_own_test_passes(tmp_path):
    """The scaffold goes into the project named by --dest (this checkout, where discovery finds it); it is removed
    afterwards. Without --dest it writes into the current folder, which must be a project with baselines/."""
    import shutil
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[1]
    name = f"scaffold-probe-{os.getpid()}"
    ident = name.replace("-", "_")
    package, test = root / "baselines" / ident, root / "tests" / f"test_{ident}.py"
    try:
        res = CliRunner().invoke(main, ["new-method", name, "--dest", str(root)])
        assert res.exit_code == 0, res.output
        assert package.joinpath("__init__.py").is_file() and test.is_file()
        env = {**os.environ}
        check = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(test)], cwd=root,
                               env=env, capture_output=True, text=True)
        assert check.returncode == 0 and "2 passed" in check.stdout, check.stdout[-2000:]
        listed = subprocess.run([sys.executable, "-m", "bench.cli", "list"], cwd=tmp_path, capture_output=True, text=True)
        assert name in listed.stdout
        again = CliRunner().invoke(main, ["new-method", name, "--dest", str(root)])
        assert again.exit_code == 2 and "already" in again.output
    finally:
        shutil.rmtree(package, ignore_errors=True)
        test.unlink(missing_ok=True)
    elsewhere = CliRunner().invoke(main, ["new-method", "my-gan", "--dest", str(tmp_path)])
    assert elsewhere.exit_code == 2 and f"{tmp_path} has no baselines/ folder" in elsewhere.output
    assert not any(tmp_path.iterdir())
    for bad in ("My_GAN", "1gan", "class"):
        res = CliRunner().invoke(main, ["new-method", bad])
        assert res.exit_code == 2 and "error:" in res.output
