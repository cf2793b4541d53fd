"""Alderley on a miniature copy of the published layout: ForkGAN's split, ground-truth matches, bad data."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from bench.cli import main
from bench.data.io import read_rgb
from bench.results import read_metrics_csv
from bench.runner import RunConfig
from bench.suites import SuiteDataError, default_preset, get_suite

H, W = 52, 128  # Alderley frames are wide and low
N_TRAIN = 26
# day test frame -> night frame, as framematches.csv states it: night 13803 is named by no line (its matched
# frame is that of a neighbour), night 13802 by two, and night 13830 lies beyond the tolerance of every match.
TEST_MATCHES = {11687 + i: 13801 + i for i in range(14)} | {11689: 13802}
UNMATCHED_NIGHT = (13803, 13830)


def _place(k: int) -> np.ndarray:
    """A textured frame (SIFT needs corners) whose layout depends on the place k."""
    g = np.random.default_rng(k).integers(0, 255, (H // 4 + 1, W // 4 + 1, 3)).astype(np.uint8)
    return np.kron(g, np.ones((4, 4, 1), np.uint8))[:H, :W]


def make_alderley(root: Path, header: bool = True, nested: bool = False) -> Path:
    root = root / "alderley"
    night_dir, day_dir = root / "FRAMESA", root / "FRAMESB"
    if nested:
        night_dir, day_dir = night_dir / "FRAMESA", day_dir / "FRAMESB"
    night_dir.mkdir(parents=True)
    day_dir.mkdir(parents=True)
    matches = {k: k for k in range(1, N_TRAIN + 1)} | TEST_MATCHES
    for d, n in matches.items():
        Image.fromarray(_place(d)).save(day_dir / f"Image{d:05d}.jpg", quality=95)
        Image.fromarray((_place(d) * 0.25).astype(np.uint8)).save(night_dir / f"Image{n:05d}.jpg", quality=95)
    for n in UNMATCHED_NIGHT:
        Image.fromarray((_place(n) * 0.25).astype(np.uint8)).save(night_dir / f"Image{n:05d}.jpg", quality=95)
    lines = [f"{n},{d}" for d, n in sorted(matches.items())]
    if header:
        (root / "framematches.csv").write_text("\n".join(["night,day", *lines]) + "\n")
    else:  # an editor's byte-order mark before the first match must not turn it into a "header"
        (root / "framematches.csv").write_text("\n".join(reversed(lines)) + "\n", encoding="utf-8-sig")
    return root


def _prepared(path: Path, size: tuple[int, int]) -> np.ndarray:
    """A source frame as the suite stores it: decoded, resized bilinearly."""
    return np.array(Image.fromarray(read_rgb(path)).resize((size[1], size[0]), Image.BILINEAR))


@pytest.mark.parametrize("header", [True, False])
def test_forkgan_split_and_ground_truth_matches(tmp_path, header):
    root = make_alderley(tmp_path, header=header)
    files = get_suite("alderley").prepare("paper", root, size=(26, 64))
    # ForkGAN's split: night 1-13800 and day 1-11686 train; the rest test
    # ForkGAN's training frames, less a tenth held out (by name hash) for validation
    assert (len(files.train_a) + len(files.val_a), len(files.train_b) + len(files.val_b), len(files.test_b)) == (
        N_TRAIN, N_TRAIN, 14)
    assert len(files.val_a) == N_TRAIN // 10 and not set(files.val_a) & set(files.train_a)
    test_names = sorted(p.name for p in files.test_a)
    assert test_names == [f"Image{n:05d}.png" for n in range(13801, 13815)]  # 13830: no match within 5 frames
    assert "no ground-truth day frame within 5 frames" in " | ".join(files.notes)
    assert sorted(p.name for p in files.test_b) == [f"Image{d:05d}.png" for d in range(11687, 11701)]
    twins = {p.name: t for p, t in zip(files.test_a, files.twins)}
    day = root / "FRAMESB"
    expected = {"Image13801.png": 11687, "Image13802.png": 11688,  # two day frames name 13802: the first
                "Image13803.png": 11688,  # named by no line: the nearest named night frames tie, the earlier wins
                "Image13810.png": 11696, "Image13814.png": 11700}
    for name, d in expected.items():
        stored = np.asarray(Image.open(twins[name]))
        assert np.array_equal(stored, _prepared(day / f"Image{d:05d}.jpg", (26, 64))), name


def test_smoke_run_scores_sift_against_the_matched_frames(tmp_path, run_with_test_weights):
    root = make_alderley(tmp_path, nested=True)  # FRAMESA/FRAMESA/, as the archives unzip
    summary = run_with_test_weights(RunConfig(suite="alderley", data_root=root, preset="smoke",
                                              methods=("identity", "gamma"), out=tmp_path / "out", device="cpu"))
    records = read_metrics_csv(summary.run_dir / "metrics.csv")
    assert {r.metric for r in records} == {"fid", "kid", "fd-dinov2", "fid-clean", "kid-clean", "sift"}
    sift = {r.method: r for r in records if r.metric == "sift"}
    assert sift["identity"].n == 12 and sift["gamma"].value > sift["identity"].value


def test_bad_data_is_refused_or_counted(tmp_path):
    root = make_alderley(tmp_path)
    suite = get_suite("alderley")
    # counted: a truncated JPEG, a stray file, a line naming a day frame that is not there
    night_test = root / "FRAMESA" / "Image13805.jpg"
    night_test.write_bytes(night_test.read_bytes()[:300])
    (root / "FRAMESB" / "Thumbs.db").write_bytes(b"\0")
    with open(root / "framematches.csv", "a") as f:
        f.write("13814,14600\n")
    files = suite.prepare("paper", root, size=(26, 64))
    notes = " | ".join(files.notes)
    assert len(files.test_a) == 13 and "undecodable image" in notes and "Image13805.jpg" in notes
    assert "not named ImageNNNNN.jpg" in notes and "naming a day frame missing from FRAMESB" in notes
    res = CliRunner().invoke(main, ["data", "check", "--suite", "alderley", "--data-root", str(root)])
    assert res.exit_code == 1 and "1 undecodable testA image(s): Image13805.jpg" in res.output
    assert "metrics it can compute: fid, kid, fd-dinov2, fid-clean, kid-clean, sift" in res.output

    # refused, with the file and the fix named
    with open(root / "framematches.csv", "a") as f:
        f.write("13814;11700\n")
    with pytest.raises(SuiteDataError, match=r"framematches.csv, line \d+: expected two frame numbers"):
        suite.sources(root)
    (root / "framematches.csv").unlink()
    with pytest.raises(SuiteDataError, match="framematches.csv is missing"):
        suite.sources(root)

    swapped = make_alderley(tmp_path / "s")
    (swapped / "FRAMESA").rename(swapped / "night")
    (swapped / "FRAMESB").rename(swapped / "FRAMESA")
    (swapped / "night").rename(swapped / "FRAMESB")
    with pytest.raises(SuiteDataError, match="folders look swapped"):
        suite.sources(swapped)

    empty = make_alderley(tmp_path / "e")
    (empty / "framematches.csv").write_text("night,day\n")
    with pytest.raises(SuiteDataError, match="holds no frame correspondences. Re-download framematches.csv"):
        suite.sources(empty)
    for frame in (empty / "FRAMESB").glob("*.jpg"):
        frame.unlink()
    with pytest.raises(SuiteDataError, match=r"FRAMESB/ holds no ImageNNNNN.jpg frames"):
        suite.sources(empty)

    forkgan = tmp_path / "forkgan"
    for sub in ("trainA", "trainB", "testA", "testB"):
        (forkgan / sub).mkdir(parents=True)
    with pytest.raises(SuiteDataError, match=r"FRAMESA is missing(.|\n)*--suite folder:PATH"):
        suite.sources(forkgan)
    shutil.rmtree(forkgan)
    with pytest.raises(SuiteDataError, match=r"AUGAN_BENCH_ALDERLEY"):
        suite.sources(None)


def test_published_datasets_default_to_the_paper_preset(tmp_path):
    assert default_preset("alderley") == default_preset("bdd100k-night") == default_preset("acdc-fog") == "paper"
    assert default_preset("synthetic-night") == default_preset("folder:/data/x") == "quick"
    # through the CLI: no --preset on Alderley trains in the paper preset's run folder, on 256x512 images
    root = make_alderley(tmp_path)
    res = CliRunner().invoke(main, ["train", "--suite", "alderley", "--data-root", str(root), "--method", "zero-dce",
                                    "--max-steps", "1", "--device", "cpu", "--out", str(tmp_path / "out")])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "out" / "alderley" / "paper" / "cells" / "zero-dce" / "seed0" / "checkpoint.safetensors").is_file()
    assert get_suite("alderley").prepare("paper", root).height == 256
