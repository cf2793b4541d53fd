"""ACDC suites on a miniature copy of the published layout: selection, labels, end to end, bad data."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from bench.cli import main
from bench.results import read_metrics_csv
from bench.runner import RunConfig
from bench.suites import SuiteDataError, get_suite

H, W = 54, 96  # ACDC frames are 1080x1920


def make_acdc(root: Path, conditions=("night", "fog"), n_train: int = 26, n_val: int = 13) -> Path:
    rng = np.random.default_rng(1)
    root = root / "acdc"
    for cond in conditions:
        for split, n in (("train", n_train), ("val", n_val)):
            for k in range(n):
                seq = f"GOPR03{55 + k % 2}"  # two sequences per split
                frame = f"{seq}_frame_{k:06d}"
                adverse = root / "rgb_anon" / cond / split / seq / f"{frame}_rgb_anon.png"
                ref = root / "rgb_anon" / cond / f"{split}_ref" / seq / f"{frame}_rgb_ref_anon.png"
                for path, base in ((adverse, 35), (ref, 160)):
                    path.parent.mkdir(parents=True, exist_ok=True)
                    Image.fromarray(np.clip(rng.normal(base, 20, (H, W, 3)), 0, 255).astype(np.uint8)).save(path)
                label = np.full((H, W), 0, np.uint8)  # road below, sky (10) above, ignore (255) in a corner
                label[: H // 2] = 10
                label[:4, :4] = 255
                gt = root / "gt" / cond / split / seq / f"{frame}_gt_labelTrainIds.png"
                gt.parent.mkdir(parents=True, exist_ok=True)
                Image.fromarray(label).save(gt)
    return root


def test_splits_labels_and_references(tmp_path):
    root = make_acdc(tmp_path)
    files = get_suite("acdc-night").prepare("smoke", root)
    assert (len(files.train_a), len(files.train_b), len(files.test_a), len(files.test_b)) == (24, 24, 12, 12)
    assert all("frame" in p.name and p.suffix == ".png" for p in files.test_a) and files.notes == ()
    assert files.labels is not None and [p.name for p in files.labels] == [p.name for p in files.test_a]
    with Image.open(files.labels[0]) as im:
        lab = np.asarray(im)
    assert lab.shape == (64, 128) and set(np.unique(lab)) <= {0, 10, 255}  # nearest: no invented class ids
    assert (lab[:30] == 10).mean() > 0.9 and (lab[40:] == 0).all()
    fog = get_suite("acdc-fog").prepare("smoke", root)
    assert not set(fog.test_a) & set(files.test_a)
    with pytest.raises(SuiteDataError, match=r"rgb_anon/rain is missing.*\n.*acdc/"):
        get_suite("acdc-rain").prepare("smoke", root)


def test_smoke_run_end_to_end(tmp_path, run_with_test_weights):
    root = make_acdc(tmp_path, conditions=("snow",))
    summary = run_with_test_weights(RunConfig(suite="acdc-snow", data_root=root, preset="smoke",
                                              methods=("identity", "gamma"), out=tmp_path / "out", device="cpu"))
    records = read_metrics_csv(summary.run_dir / "metrics.csv")
    assert {r.metric for r in records} == {"fid", "kid", "fd-dinov2", "fid-clean", "kid-clean"}  # mIoU needs --segmenter
    fid = {r.method: r.value for r in records if r.metric == "fid"}
    assert fid["gamma"] < fid["identity"]  # brightening moves dark noise toward the bright references
    assert not any(r.metric in ("psnr", "ssim", "lpips") for r in records)  # references are not pixel-aligned


def test_missing_labels_and_mismatched_label_sizes_are_counted(tmp_path):
    root = make_acdc(tmp_path, conditions=("night",))
    gts = sorted((root / "gt" / "night" / "val").glob("*/*.png"))
    gts[0].unlink()
    Image.fromarray(np.zeros((H // 2, W // 2), np.uint8)).save(gts[1])  # labels for another size
    files = get_suite("acdc-night").prepare("paper", root, size=(27, 48))
    assert len(files.test_a) == 11
    notes = " | ".join(files.notes)
    assert "skipped 1 file(s): val image without its label in gt/night/val/" in notes
    assert "label map size 48x27 differs from its image's" in notes
    res = CliRunner().invoke(main, ["data", "check", "--suite", "acdc-night", "--data-root", str(root)])
    assert res.exit_code == 1 and "val image without its label" in res.output and "mIoU needs --segmenter" in res.output
    manifest_note = json.dumps(list(files.notes))
    assert "gt/night/val" in manifest_note
