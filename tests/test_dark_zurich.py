"""Dark Zurich on a miniature copy of the published layout: GPS-matched references, SIFT, labels, bad data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from bench.results import read_metrics_csv
from bench.runner import RunConfig
from bench.suites import SuiteDataError, get_suite

H, W = 54, 96  # Dark Zurich frames are 1080x1920


def _scene(rng, k: int) -> np.ndarray:
    """A textured frame (SIFT needs corners): blocks whose layout depends on k."""
    g = np.random.default_rng(k).integers(0, 255, (H // 6 + 1, W // 6 + 1, 3)).astype(np.uint8)
    return np.kron(g, np.ones((6, 6, 1), np.uint8))[:H, :W]


def make_dark_zurich(root: Path, side_by_side: bool = False, n_train: int = 26, n_val: int = 13) -> Path:
    rng = np.random.default_rng(2)
    root = root / "dark_zurich"
    train = root / "Dark_Zurich_train_anon" if side_by_side else root
    val = root / "Dark_Zurich_val_anon" if side_by_side else root

    def save(path: Path, img: np.ndarray) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(img).save(path)

    for tod, gain in (("night", 0.25), ("day", 1.0)):
        for k in range(n_train):
            seq = f"GOPR03{60 + k % 2}"
            save(train / "rgb_anon" / "train" / tod / seq / f"{seq}_frame_{k:06d}_rgb_anon.png",
                 (_scene(rng, 1000 + k) * gain).astype(np.uint8))
    for k in range(n_val):
        seq, frame = "GOPR0356", f"GOPR0356_frame_{k:06d}"
        day = _scene(rng, k)
        save(val / "rgb_anon" / "val" / "night" / seq / f"{frame}_rgb_anon.png", (day * 0.25).astype(np.uint8))
        save(val / "rgb_anon" / "val_ref" / "day" / f"{seq}_ref" / f"{frame}_ref_rgb_anon.png", day)
        label = np.zeros((H, W), np.uint8)
        label[: H // 3] = 10
        save(val / "gt" / "val" / "night" / seq / f"{frame}_gt_labelTrainIds.png", label)
    return root


@pytest.mark.parametrize("side_by_side", [False, True])
def test_matched_references_labels_and_both_unpacking_styles(tmp_path, side_by_side):
    root = make_dark_zurich(tmp_path, side_by_side)
    files = get_suite("dark-zurich").prepare("smoke", root)
    assert (len(files.train_a), len(files.train_b), len(files.test_a), len(files.test_b)) == (24, 24, 12, 12)
    assert files.twins is not None and files.labels is not None
    assert [p.name for p in files.twins] == [p.name for p in files.test_a] == [p.name for p in files.labels]
    # each twin is the GPS-matched day frame of its night frame (here: the same scene, 4x brighter)
    with Image.open(files.test_a[0]) as a, Image.open(files.twins[0]) as b:
        night, day = np.asarray(a, float), np.asarray(b, float)
    assert abs(day.mean() / max(night.mean(), 1e-6) - 4) < 0.6
    assert {p.name for p in files.test_b} == {p.name for p in files.test_a}


def test_smoke_run_scores_sift_against_the_matched_frames(tmp_path, run_with_test_weights):
    root = make_dark_zurich(tmp_path)
    summary = run_with_test_weights(RunConfig(suite="dark-zurich", data_root=root, preset="smoke",
                                              methods=("identity", "gamma"), out=tmp_path / "out", device="cpu"))
    records = read_metrics_csv(summary.run_dir / "metrics.csv")
    assert {r.metric for r in records} == {"fid", "kid", "fd-dinov2", "fid-clean", "kid-clean", "sift"}  # mIoU needs --segmenter
    sift = {r.method: r for r in records if r.metric == "sift"}
    assert sift["identity"].n == 12 and sift["gamma"].value > 0


def test_frames_without_label_or_match_are_counted_and_a_missing_archive_is_named(tmp_path):
    root = make_dark_zurich(tmp_path)
    next((root / "gt" / "val" / "night" / "GOPR0356").glob("*frame_000003*")).unlink()
    next((root / "rgb_anon" / "val_ref" / "day" / "GOPR0356_ref").glob("*frame_000004*")).unlink()
    files = get_suite("dark-zurich").prepare("paper", root, size=(27, 48))
    assert len(files.test_a) == 11
    notes = " | ".join(files.notes)
    assert "without its label in gt/val/night/" in notes and "without its GPS-matched day frame" in notes
    only_val = make_dark_zurich(tmp_path / "v", side_by_side=True)
    import shutil

    shutil.rmtree(only_val / "Dark_Zurich_train_anon")
    with pytest.raises(SuiteDataError, match=r"Dark_Zurich_train_anon/rgb_anon/train is missing"):
        get_suite("dark-zurich").prepare("smoke", only_val)
