"""BDD100K suites on miniature copies of the published layout (both label formats), end to end, and bad data."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from bench.cli import main
from bench.results import read_metrics_csv
from bench.runner import RunConfig
from bench.suites import SuiteDataError, get_suite
from bench.suites.bdd100k import EXPECTED_TREE, read_frames

H, W = 72, 128  # the real frames are 720x1280; a tenth keeps the fixture small


def _name(i: int) -> str:
    return f"{i * 2654435761 % 16**8:08x}-{i * 40503 % 16**8:08x}.jpg"  # BDD100K's <hex>-<hex>.jpg names


def _frame(name: str, timeofday: str, weather: str = "clear", boxes=()) -> dict:
    labels = [{"id": k, "category": c, "attributes": {"occluded": False, "truncated": False},
               "box2d": {"x1": x1, "y1": y1, "x2": x2, "y2": y2}} for k, (c, (x1, y1, x2, y2)) in enumerate(boxes)]
    labels.append({"id": 99, "category": "drivable area", "poly2d": [{"vertices": [[0, 60], [50, 70]]}]})
    return {"name": name, "attributes": {"weather": weather, "scene": "city street", "timeofday": timeofday},
            "timestamp": 10000, "labels": labels}


def make_bdd100k(root: Path, fmt: str = "legacy", n_train: int = 26, n_val: int = 13) -> Path:
    """bdd100k/images/100k/{train,val}/*.jpg and the labels of ``fmt`` ('legacy' or 'det_20')."""
    rng = np.random.default_rng(0)
    root = root / "bdd100k"
    frames: dict[str, list] = {"train": [], "val": []}
    i = 0
    for split, n in (("train", n_train), ("val", n_val)):
        folder = root / "images" / "100k" / split
        folder.mkdir(parents=True)
        for tod, base in (("night", 30), ("daytime", 170)):
            for _ in range(n):
                i += 1
                name = _name(i)
                img = np.clip(rng.normal(base, 25, (H, W, 3)), 0, 255).astype(np.uint8)
                Image.fromarray(img).save(folder / name, quality=90)
                boxes = [("car", (10.0, 20.0, 50.0, 60.0)), ("pedestrian", (60.0, 15.0, 70.0, 50.0)),
                         ("traffic sign", (100.0, 5.0, 110.0, 15.0))] if split == "val" and tod == "night" else []
                frames[split].append(_frame(name, tod, boxes=boxes))
        # frames of other conditions, which no night/day suite selects
        frames[split].append(_frame(_name(10_000 + len(frames[split])), "dawn/dusk"))
    for split, fr in frames.items():
        if fmt == "legacy":
            path = root / "labels" / f"bdd100k_labels_images_{split}.json"
        else:
            path = root / "labels" / "det_20" / f"det_{split}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(fr))
    return root


def _labels_path(root: Path, split: str) -> Path:
    legacy = root / "labels" / f"bdd100k_labels_images_{split}.json"
    return legacy if legacy.is_file() else root / "labels" / "det_20" / f"det_{split}.json"


def _edit_labels(root: Path, split: str, edit) -> None:
    path = _labels_path(root, split)
    frames = json.loads(path.read_text())
    edit(frames)
    path.write_text(json.dumps(frames))


def test_both_label_formats_select_the_same_frames_and_boxes(tmp_path):
    a = make_bdd100k(tmp_path / "a", "legacy")
    b = make_bdd100k(tmp_path / "b", "det_20")
    suite = get_suite("bdd100k-night")
    fa, fb = suite.prepare("smoke", a), suite.prepare("smoke", b)
    assert [p.name for p in fa.test_a] == [p.name for p in fb.test_a]
    assert (len(fa.train_a), len(fa.train_b), len(fa.test_a), len(fa.test_b)) == (24, 24, 12, 12)
    assert fa.height == 64 and fa.width == 128 and fa.notes == ()
    night_val = {f.name[:-4] for f in read_frames(_labels_path(a, "val")) if f.timeofday == "night"}
    assert {p.stem for p in fa.test_a} <= night_val  # the adverse test split is val-night only
    with Image.open(fa.test_a[0]) as im:
        assert im.size == (128, 64) and im.mode == "RGB"
    gt = json.loads(fa.boxes.read_text())
    assert {c["id"] for c in gt["categories"]} >= {1, 3}
    anns = [x for x in gt["annotations"] if x["image_id"] == 1]
    # car (10,20)-(50,60) and pedestrian -> COCO 3 and 1, scaled from 72x128 to 64x128; traffic sign dropped
    assert sorted(x["category_id"] for x in anns) == [1, 3]
    car = next(x for x in anns if x["category_id"] == 3)
    assert car["bbox"] == pytest.approx([10.0, 20.0 * 64 / 72, 40.0, 40.0 * 64 / 72])


def test_smoke_run_end_to_end_from_the_environment_variable(tmp_path, monkeypatch, run_with_test_weights):
    root = make_bdd100k(tmp_path)
    monkeypatch.setenv("AUGAN_BENCH_BDD100K", str(root.parent))  # the folder that holds bdd100k/ works too
    summary = run_with_test_weights(RunConfig(suite="bdd100k-night", preset="smoke", methods=("identity", "gamma"),
                                              out=tmp_path / "out", device="cpu"))
    records = read_metrics_csv(summary.run_dir / "metrics.csv")
    fid = {r.method: r for r in records if r.metric == "fid"}
    assert set(fid) == {"identity", "gamma"} and all(r.n == 12 and "SUBSTITUTE" in r.extractor for r in fid.values())
    # night noise vs day noise: the raw input is far from the day reference set, gamma brightens it toward it
    assert fid["gamma"].value < fid["identity"].value
    assert not any(r.metric in ("psnr", "lpips", "miou") for r in records)  # no aligned day images, no seg labels
    manifest = json.loads((summary.run_dir / "manifest.json").read_text())
    assert manifest["suite"] == "bdd100k-night" and manifest["data_notes"] == []


def test_a_missing_dataset_shows_the_expected_tree(tmp_path, monkeypatch):
    monkeypatch.delenv("AUGAN_BENCH_BDD100K", raising=False)
    out = ["--out", str(tmp_path / "out")]
    res = CliRunner().invoke(main, ["run", "--suite", "bdd100k-night", "--preset", "smoke", *out])
    assert res.exit_code == 2 and "AUGAN_BENCH_BDD100K" in res.output and "images/100k/train/*.jpg" in res.output
    res = CliRunner().invoke(main, ["run", "--suite", "bdd100k-night", "--preset", "smoke", "--data-root",
                                    str(tmp_path), *out])
    assert res.exit_code == 2 and "images/100k is missing" in res.output and EXPECTED_TREE.splitlines()[1] in res.output
    root = make_bdd100k(tmp_path / "x")
    _labels_path(root, "val").unlink()
    with pytest.raises(SuiteDataError, match="no val labels"):
        get_suite("bdd100k-night").prepare("smoke", root)


def test_bad_files_are_converted_or_skipped_and_counted(tmp_path):
    root = make_bdd100k(tmp_path, n_train=30)
    train = root / "images" / "100k" / "train"
    frames = {f.name: f for f in read_frames(_labels_path(root, "train"))}
    night = sorted(n for n, f in frames.items() if f.timeofday == "night")
    truncated, gray, cmyk, deep, rgba = night[:5]
    data = (train / truncated).read_bytes()
    (train / truncated).write_bytes(data[: len(data) // 3])  # a truncated JPEG
    Image.new("L", (W, H), 40).save(train / gray, format="JPEG")
    Image.new("CMYK", (W, H), (0, 0, 0, 200)).save(train / cmyk, format="JPEG")
    Image.fromarray(np.full((H, W), 40 * 257, np.uint16)).save(train / deep, format="PNG")  # 16-bit, .jpg name
    Image.new("RGBA", (W, H), (40, 40, 40, 0)).save(train / rgba, format="PNG")
    _edit_labels(root, "train", lambda fr: fr.append(_frame("ffffffff-00000000.jpg", "night")))  # no such image
    files = get_suite("bdd100k-night").prepare("paper", root, size=(36, 64))
    names = {p.stem + ".jpg" for p in files.train_a}
    assert truncated not in names and {gray, cmyk, deep, rgba} <= names
    for n in (gray, cmyk, deep, rgba):
        with Image.open(files.root / "trainA" / (n[:-4] + ".png")) as im:
            assert im.mode == "RGB"
            assert abs(float(np.asarray(im).mean()) - 40) < 45  # 16-bit scaled to 8 bits, not clipped to white
    # a tenth of the 30 night training frames is held out for validation, by a hash of their names
    assert len(files.train_a) + len(files.val_a) == 29 and len(files.val_a) >= 2
    assert not {p.name for p in files.train_a} & {p.name for p in files.val_a}
    notes = " | ".join(files.notes)
    assert "skipped 1 file(s): undecodable image" in notes and truncated in notes
    assert "label names an image that is not in images/100k/train/" in notes and "ffffffff-00000000.jpg" in notes


def test_labels_that_escape_the_root_are_rejected_and_an_empty_split_is_an_error(tmp_path):
    root = make_bdd100k(tmp_path)
    _edit_labels(root, "train", lambda fr: fr.append(_frame("../../../etc/passwd", "night")))
    with pytest.raises(SuiteDataError, match="a path outside the image folder; rejected"):
        get_suite("bdd100k-night").prepare("smoke", root)
    root = make_bdd100k(tmp_path / "b")

    def no_night(frames):
        for f in frames:
            f["attributes"]["timeofday"] = "daytime" if f["attributes"]["timeofday"] == "night" else "dawn/dusk"

    _edit_labels(root, "val", no_night)
    with pytest.raises(SuiteDataError, match=r"no usable testA images \(timeofday night\) in the val split"):
        get_suite("bdd100k-night").prepare("smoke", root)


def test_boxes_for_another_image_size_are_skipped_and_counted(tmp_path):
    root = make_bdd100k(tmp_path)

    def full_hd_boxes(frames):
        for f in frames:
            if f["attributes"]["timeofday"] == "night" and f["labels"][:1] and "box2d" in f["labels"][0]:
                f["labels"][0]["box2d"] = {"x1": 600, "y1": 300, "x2": 900, "y2": 700}  # a 1280x720 frame's box
                break

    _edit_labels(root, "val", full_hd_boxes)
    files = get_suite("bdd100k-night").prepare("paper", root, size=(36, 64))
    assert len(files.test_a) == 12 and any("boxes outside the image" in n for n in files.notes)


def test_rain_suites_select_by_weather(tmp_path):
    root = make_bdd100k(tmp_path)

    def weather(frames):
        for k, f in enumerate(frames):
            f["attributes"]["weather"] = "rainy" if k % 2 else "clear"

    _edit_labels(root, "train", weather)
    _edit_labels(root, "val", weather)
    files = get_suite("bdd100k-rain").prepare("paper", root, size=(36, 64))
    train = {f.name: f for f in read_frames(_labels_path(root, "train"))}
    for p in files.train_a:
        f = train[p.stem + ".jpg"]
        assert f.weather == "rainy" and f.timeofday == "daytime"
    for p in files.train_b:
        f = train[p.stem + ".jpg"]
        assert f.weather == "clear" and f.timeofday == "daytime"
    night = get_suite("bdd100k-rainy-night").prepare("paper", root, size=(36, 64))
    assert all(train[p.stem + ".jpg"].timeofday == "night" for p in night.train_a)


def test_data_check_counts_and_reports(tmp_path):
    root = make_bdd100k(tmp_path)
    res = CliRunner().invoke(main, ["data", "check", "--suite", "bdd100k-night", "--data-root", str(root)])
    assert res.exit_code == 0, res.output
    assert "labels, train: 53 frames" in res.output and "trainA: 26 usable image(s)" in res.output
    assert "testA: 13 usable" in res.output and f"image sizes: {W}x{H} x78" in res.output
    assert "26 boxes on the adverse test images" in res.output and "problems: none found" in res.output
    victim = sorted((root / "images" / "100k" / "val").iterdir())[0]
    victim.write_bytes(victim.read_bytes()[:200])
    shutil.rmtree(root / "images" / "100k" / "train")
    (root / "images" / "100k" / "train").mkdir()
    res = CliRunner().invoke(main, ["data", "check", "--suite", "bdd100k-night", "--data-root", str(root)])
    assert res.exit_code == 1
    assert "trainA is empty: the suite cannot run" in res.output and "undecodable" in res.output
    assert "label names an image that is not in images/100k/train/" in res.output


def test_night_segmentation_suite_uses_the_10k_images_with_masks(tmp_path):
    root = make_bdd100k(tmp_path, n_val=15)
    val = {f.name: f for f in read_frames(_labels_path(root, "val"))}
    night = sorted(n for n, f in val.items() if f.timeofday == "night")
    day = sorted(n for n, f in val.items() if f.timeofday == "daytime")
    img10k, masks = root / "images" / "10k" / "val", root / "labels" / "sem_seg" / "masks" / "val"
    img10k.mkdir(parents=True)
    masks.mkdir(parents=True)
    mask = np.zeros((H, W), np.uint8)
    mask[: H // 2] = 10
    for n in night[:13] + day[:2]:  # the 10K set overlaps both conditions
        Image.fromarray(np.full((H, W, 3), 20, np.uint8)).save(img10k / n)
        if n != night[12]:
            Image.fromarray(mask).save(masks / (n[:-4] + ".png"))
    files = get_suite("bdd100k-night-seg").prepare("paper", root, size=(36, 64))
    assert sorted(p.stem + ".jpg" for p in files.test_a) == night[:12]  # night only; the one without mask skipped
    assert files.labels is not None and files.boxes is None
    with Image.open(files.test_a[0]) as im:
        assert np.asarray(im).mean() == pytest.approx(20, abs=1)  # the 10K image, not the 100K frame of that name
    with Image.open(files.labels[0]) as im:
        lab = np.asarray(im)
    assert lab.shape == (36, 64) and set(np.unique(lab)) == {0, 10}
    assert any("10K val image without its mask" in n for n in files.notes)
    assert len(files.test_b) == 15  # the FID reference: 100K val daytime
    shutil.rmtree(masks)
    with pytest.raises(SuiteDataError, match="sem_seg/masks/val is missing"):
        get_suite("bdd100k-night-seg").prepare("smoke", root)
