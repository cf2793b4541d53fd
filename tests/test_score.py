"""Scoring outside translations: `bench data export` -> your own code -> `bench score`, the results API, strict JSON.

The round trip is the contract: translating the exported inputs with code the benchmark has never seen and
scoring the folder gives the numbers `bench run` computes for a registered method doing the same, CIs included.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

import bench
from bench.cli import main
from bench.external import RESIZE_FILTER, ScoreError
from bench.protocol import ProtocolError
from bench.results import COLUMNS, REFERENCE_ROW, read_manifest
from bench.runner import RunConfig
from bench.translator import METHODS, register_translator

METHOD = "double-test"  # registered in-process for the comparison, removed afterwards


def double(img: np.ndarray) -> np.ndarray:
    """The test's own 'method': every 8-bit level doubled (exact in integers, so both routes give the same pixels)."""
    return np.minimum(img.astype(np.uint16) * 2, 255).astype(np.uint8)


@contextmanager
def torch_home(path: Path):
    old = os.environ["TORCH_HOME"]
    os.environ["TORCH_HOME"] = str(path)
    try:
        yield
    finally:
        os.environ["TORCH_HOME"] = old


def no_nan(text: str):
    """json.loads that fails on NaN/Infinity, as strict readers (JavaScript, jq) do."""
    def refuse(token):
        raise AssertionError(f"non-standard JSON token {token}")
    return json.loads(text, parse_constant=refuse)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    out = tmp_path_factory.mktemp("export") / "night-smoke"
    protocol = bench.export("synthetic-night", out, preset="smoke")
    return out, protocol


def translate_with_own_code(export_dir: Path, dest: Path, ext: str = ".png") -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    for p in sorted((export_dir / "testA").glob("*.png")):
        Image.fromarray(double(np.asarray(Image.open(p).convert("RGB")))).save(dest / f"{p.stem}{ext}")
    return dest


@pytest.fixture(scope="module")
def round_trip(exported, tmp_path_factory, run_with_test_weights):
    """The same transform scored twice: from an outside folder (bench.score) and as a method of bench run."""
    export_dir, protocol = exported
    root = tmp_path_factory.mktemp("roundtrip")
    translations = translate_with_own_code(export_dir, root / "mine")

    class Double:
        name = METHOD
        learned = False

        def __init__(self, preset="quick", device="cpu"):
            pass

        def fit(self, data, budget, out_dir):
            pass

        def translate(self, images):
            u = torch.round(images.clamp(0, 1) * 255)
            return torch.clamp(u * 2, max=255) / 255

        def state_dict(self):
            return {}

        def load_state_dict(self, state):
            pass

    register_translator(METHOD, description="test: doubles every level", learned=False)(Double)
    try:
        run_with_test_weights(RunConfig(preset="smoke", methods=("identity", METHOD), out=root / "run", device="cpu"))
    finally:
        METHODS._entries.pop(METHOD, None)
        METHODS._sources.pop(METHOD, None)
    with torch_home(run_with_test_weights.torch_home):
        scored = bench.score(translations, "mine", preset="smoke", out=root / "scored", device="cpu",
                             protocol=export_dir / "protocol.json")
    ran = bench.load_run(root / "run" / "synthetic-night" / "smoke")
    return scored, ran, translations, root


def test_export_holds_the_protocol_with_hashes(exported, smoke_suite):
    out, protocol = exported
    assert sorted(p.name for p in out.iterdir()) == ["protocol.json", "testA", "testA_boxes.json", "testA_labels",
                                                     "testA_twins", "testB", "valA", "valA_labels", "valB"]
    # the validation split is part of the protocol, and shares no image with the test split
    val = {n for n in protocol["files"] if n.startswith("val")}
    assert len([n for n in val if n.startswith("valA/")]) == len(smoke_suite.val_a) == 8
    test_pixels = {f["pixels"] for n, f in protocol["files"].items() if n.startswith("test")}
    assert not test_pixels & {protocol["files"][n]["pixels"] for n in val}
    assert protocol == no_nan((out / "protocol.json").read_text())
    assert protocol["suite"] == "synthetic-night" and protocol["preset"] == "smoke"
    assert protocol["image_size"] == [smoke_suite.height, smoke_suite.width]
    assert protocol["n_test"] == len(smoke_suite.test_a) == len(list((out / "testA").iterdir()))
    # the exported inputs are the pixels the benchmark feeds a method
    for src in smoke_suite.test_a:
        np.testing.assert_array_equal(np.asarray(Image.open(out / "testA" / f"{src.stem}.png")),
                                      np.asarray(Image.open(src).convert("RGB")))
    import hashlib

    entry = protocol["files"][f"testA/{smoke_suite.test_a[0].stem}.png"]
    assert entry["sha256"] == hashlib.sha256((out / "testA" / f"{smoke_suite.test_a[0].stem}.png").read_bytes()).hexdigest()
    assert set(protocol["settings"]["metrics"]) >= {"fid", "kid", "psnr", "ssim", "lpips", "miou", "map"}
    boxes = json.loads((out / "testA_boxes.json").read_text())
    assert {img["file_name"] for img in boxes["images"]} == {f"{p.stem}.png" for p in smoke_suite.test_a}
    assert len(protocol["protocol_id"]) == 12


def test_export_again_gives_the_same_protocol_id_and_refuses_a_used_folder(exported, tmp_path):
    out, protocol = exported
    again = bench.export("synthetic-night", tmp_path / "again", preset="smoke")
    assert again["protocol_id"] == protocol["protocol_id"] and again["files"].keys() == protocol["files"].keys()
    with pytest.raises(ProtocolError, match="not an empty folder"):
        bench.export("synthetic-night", out, preset="smoke")
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no staging folder left


def test_outside_translations_score_as_the_same_method_inside_bench_run(round_trip):
    scored, ran, _, _ = round_trip
    ours = {r.metric: r for r in scored.records if r.method == "mine"}
    theirs = {r.metric: r for r in ran.records if r.method == METHOD}
    assert ours.keys() == theirs.keys()
    assert {"fid", "kid", "lpips", "psnr", "ssim", "miou", "map", "ap50"} <= ours.keys()
    for metric, r in theirs.items():
        o = ours[metric]
        for field in ("value", "ci_low", "ci_high"):
            a, b = getattr(o, field), getattr(r, field)
            assert (math.isnan(a) and math.isnan(b)) or a == pytest.approx(b, rel=1e-9, abs=1e-12), (metric, field)
        assert o.n == r.n and o.extractor == r.extractor
    # the bounds were added, so gap recovered exists beside the outside method
    assert {"identity", "mine", REFERENCE_ROW} <= set(scored.methods)
    summary = (scored.path / "tables" / "summary.md").read_text()
    assert "| mine |" in summary and "gap recovered" in summary and "scored with `bench score`" in summary


def test_the_manifest_marks_the_cell_external_with_the_folders_hash(round_trip, exported):
    scored, _, translations, _ = round_trip
    entry = scored.manifest.external["mine"]
    assert entry["folder"] == str(translations.resolve()) and len(entry["sha256"]) == 64
    assert entry["n_scored"] == entry["n_test"] and entry["missing"] == [] and entry["resized"] == 0
    assert entry["protocol_id"] == exported[1]["protocol_id"]
    assert sorted(p.name for p in (scored.path / "cells" / "mine" / "seed0" / "translations").iterdir()) == \
        sorted(p.name for p in translations.iterdir())


def test_results_api_frames_agree_with_the_tables(round_trip):
    scored, _, _, _ = round_trip
    frame = scored.to_dataframe()
    assert list(frame.columns) == COLUMNS and len(frame) == len(scored.records)
    summary = scored.summary()
    assert list(summary.index) == scored.methods
    fid = scored.agg[("mine", "psnr")]
    assert summary.loc["mine", ("psnr", "mean")] == fid["mean"]
    assert summary.loc["mine", ("psnr", "ci_low")] == fid["ci"][0]
    assert math.isnan(summary.loc[REFERENCE_ROW, ("psnr", "mean")])  # the upper bound has downstream rows only


def test_reading_results_does_not_import_torch(round_trip):
    scored = round_trip[0]
    code = ("import sys, bench; r = bench.load_run(sys.argv[1]); r.summary(); r.to_dataframe(); "
            "assert 'torch' not in sys.modules, 'torch was imported'; print(len(r.records))")
    out = subprocess.run([sys.executable, "-c", code, str(scored.path)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert int(out.stdout) == len(scored.records)


def test_cell_metrics_manifest_and_table_json_are_strict_json(round_trip):
    scored = round_trip[0]
    for path in [scored.path / "manifest.json", *scored.path.glob("cells/*/seed*/metrics.json")]:
        no_nan(path.read_text())
    metrics = no_nan((scored.path / "cells" / REFERENCE_ROW / "seed0" / "metrics.json").read_text())
    result = CliRunner().invoke(main, ["tables", "--run", str(scored.path), "--format", "json"])
    assert result.exit_code == 0, result.output
    table = no_nan(result.output)
    rows = {r["label"]: r for r in table["rows"]}
    assert rows["mine"]["values"]["PSNR ↑"] == pytest.approx(scored.value("mine", "psnr"))
    assert "†" in rows["mine"]["text"]["FID ↓"]  # substitute weights are marked in JSON too
    assert any("bench score" in n for n in table["notes"])
    assert metrics["records"]


def test_unchanged_folder_keeps_its_cell_and_force_rescores_from_cached_features(round_trip, run_with_test_weights,
                                                                                  monkeypatch):
    scored, _, translations, root = round_trip
    metrics = scored.path / "cells" / "mine" / "seed0" / "metrics.json"
    protocol = scored.manifest.external["mine"]["protocol_id"]
    with torch_home(run_with_test_weights.torch_home):
        bench.score(translations, "mine", preset="smoke", out=root / "scored", device="cpu")  # no --protocol: new
    assert protocol is not None and bench.load_run(scored.path).manifest.external["mine"]["protocol_id"] is None
    before, mtime = metrics.read_text(), metrics.stat().st_mtime_ns
    with torch_home(run_with_test_weights.torch_home):
        bench.score(translations, "mine", preset="smoke", out=root / "scored", device="cpu")  # the same again
    assert metrics.stat().st_mtime_ns == mtime
    from bench.metrics.fid_kid import InceptionExtractor

    def no_network(self, batch):
        raise AssertionError("Inception ran: the features of unchanged images should come from the cache")

    monkeypatch.setattr(InceptionExtractor, "__call__", no_network)
    with torch_home(run_with_test_weights.torch_home):
        bench.score(translations, "mine", preset="smoke", out=root / "scored", device="cpu", force=True)
    assert metrics.stat().st_mtime_ns != mtime
    assert json.loads(metrics.read_text())["records"] == json.loads(before)["records"]


def _copy(src: Path, dest: Path) -> Path:
    shutil.copytree(src, dest)
    return dest


def test_every_bad_folder_problem_in_one_error_and_nothing_written(round_trip, tmp_path):
    translations = _copy(round_trip[2], tmp_path / "bad")
    names = sorted(p.stem for p in translations.iterdir())
    (translations / f"{names[0]}.png").unlink()  # missing
    (translations / "stray.png").write_bytes((translations / f"{names[1]}.png").read_bytes())  # extra
    Image.new("RGB", (20, 10)).save(translations / f"{names[2]}.png")  # another size
    (translations / f"{names[3]}.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")  # unreadable
    shutil.copy(translations / f"{names[4]}.png", translations / f"{names[4]}.jpg")  # two files, one name
    out = tmp_path / "results"
    result = CliRunner().invoke(main, ["score", "--preset", "smoke", "--translations", str(translations),
                                       "--method", "mine", "--out", str(out), "--device", "cpu"])
    assert result.exit_code == 2, result.output
    msg = result.output
    assert "nothing was written" in msg and "Traceback" not in msg
    assert f"1 of {len(names)} test input(s) have no translation: {names[0]}" in msg
    assert "1 extra file(s), no test input has their name: stray.png" in msg
    assert f"{names[2]}.png is 10x20, its input" in msg and "--resize-to-input" in msg
    assert f"1 unreadable file(s): {names[3]}.png" in msg
    assert f"1 name(s) with two files: {names[4]} ({names[4]}.jpg, {names[4]}.png)" in msg
    assert not out.exists()


def test_allow_missing_scores_the_rest_and_counts_the_skips(round_trip, tmp_path):
    translations = _copy(round_trip[2], tmp_path / "partial")
    gone = sorted(translations.iterdir())[:2]
    for p in gone:
        p.unlink()
    with pytest.raises(ScoreError, match="--allow-missing scores the rest"):
        bench.score(translations, "partial", preset="smoke", out=tmp_path / "r", device="cpu", bounds=False)
    run = bench.score(translations, "partial", preset="smoke", out=tmp_path / "r", device="cpu", bounds=False,
                      allow_missing=True)
    entry = run.manifest.external["partial"]
    assert entry["missing"] == [p.stem for p in gone] and entry["n_scored"] == entry["n_test"] - 2
    assert {r.n for r in run.records} == {entry["n_test"] - 2}
    assert "2 missing (--allow-missing)" in (run.path / "tables" / "summary.md").read_text()
    assert run.methods == ["partial"]  # --no-bounds: no identity or day-twin rows
    # no Inception file in this test: FID is skipped, and written as null (strict JSON), never NaN
    cell = no_nan((run.path / "cells" / "partial" / "seed0" / "metrics.json").read_text())
    fid = next(r for r in cell["records"] if r["metric"] == "fid")
    assert fid["value"] is None and fid["ci_low"] is None and "weights" in fid["note"]


def test_resize_to_input_is_opt_in_and_recorded(round_trip, tmp_path, smoke_suite):
    translations = tmp_path / "big"
    translations.mkdir()
    for p in sorted(round_trip[2].iterdir()):
        Image.open(p).resize((256, 128)).save(translations / p.name)  # the inputs' 1:2 aspect, at twice their size
    with pytest.raises(ScoreError, match="another size than their input"):
        bench.score(translations, "big", preset="smoke", out=tmp_path / "r", device="cpu", bounds=False)
    assert not (tmp_path / "r").exists()
    run = bench.score(translations, "big", preset="smoke", out=tmp_path / "r", device="cpu", bounds=False,
                      resize_to_input=True)
    entry = run.manifest.external["big"]
    assert entry["resized"] == len(smoke_suite.test_a) and entry["resize_filter"] == RESIZE_FILTER
    cell = run.path / "cells" / "big" / "seed0" / "translations"
    assert Image.open(next(cell.iterdir())).size == (smoke_suite.width, smoke_suite.height)


@pytest.mark.slow
def test_protocol_mismatch_names_the_first_differing_file(exported, round_trip, tmp_path):
    export_dir, protocol = exported
    tampered = json.loads((export_dir / "protocol.json").read_text())
    first = next(n for n in tampered["files"] if n.startswith("testA_twins/"))
    tampered["files"][first]["pixels"] = "0" * 64
    (tmp_path / "p.json").write_text(json.dumps(tampered))
    with pytest.raises(ProtocolError, match=f"first differing file {first}"):
        bench.score(round_trip[2], "mine", preset="smoke", out=tmp_path / "r", device="cpu",
                    protocol=tmp_path / "p.json")
    with pytest.raises(ProtocolError, match="is preset 'smoke', this score is preset 'quick'"):
        bench.score(round_trip[2], "mine", preset="quick", out=tmp_path / "r", device="cpu",
                    protocol=export_dir / "protocol.json")
    (tmp_path / "junk.json").write_text("{")
    with pytest.raises(ProtocolError, match="not a protocol file"):
        bench.score(round_trip[2], "mine", preset="smoke", out=tmp_path / "r", protocol=tmp_path / "junk.json")
    assert not (tmp_path / "r").exists()


def test_run_folder_conflicts_are_refused(round_trip, tmp_path):
    _, ran, translations, root = round_trip
    with pytest.raises(ScoreError, match="is a bound every run has"):
        bench.score(translations, "identity", preset="smoke", out=root / "run")
    with pytest.raises(ScoreError, match=f"already has a cell of the method '{METHOD}'"):
        bench.score(translations, METHOD, preset="smoke", out=root / "run")
    fake = tmp_path / "synthetic-night" / "smoke"
    fake.mkdir(parents=True)
    manifest = read_manifest(ran.path / "manifest.json").to_dict()
    (fake / "manifest.json").write_text(json.dumps({**manifest, "image_size": [32, 32]}))
    with pytest.raises(ScoreError, match=r"is a run of image size \[32, 32\]"):
        bench.score(translations, "mine", preset="smoke", out=tmp_path)
    assert sorted(p.name for p in fake.iterdir()) == ["manifest.json"]
    with pytest.raises(ScoreError, match="unknown score setting"):
        bench.score(translations, "mine", presett="smoke")


def test_score_json_prints_the_cells_numbers(round_trip, run_with_test_weights):
    scored, _, translations, root = round_trip
    with torch_home(run_with_test_weights.torch_home):
        result = CliRunner().invoke(main, [
            "score", "--preset", "smoke", "--translations", str(translations), "--method", "mine",
            "--out", str(root / "scored"), "--device", "cpu", "--json"])
    assert result.exit_code == 0, result.output
    data = no_nan(result.stdout)
    assert data["method"] == "mine" and data["run"] == str(scored.path)
    psnr = next(r for r in data["records"] if r["metric"] == "psnr")
    assert psnr["value"] == pytest.approx(scored.value("mine", "psnr"))
    assert data["external"]["sha256"] == scored.manifest.external["mine"]["sha256"]


def test_new_method_never_writes_into_site_packages(tmp_path):
    import sysconfig

    from bench.scaffold import ScaffoldError, new_method

    with pytest.raises(ScaffoldError, match="installed package"):
        new_method("my-gan", Path(sysconfig.get_paths()["purelib"]))


def test_protocol_settings_do_not_depend_on_which_method_packages_were_imported():
    """A method registers its checkpoint files when its package is imported: an export made before that and a
    score made after must still agree (`bench data export` then `bench score` in two processes)."""
    from bench.protocol import metric_settings
    from bench.translator import available_methods

    before = metric_settings(["fid", "lpips"])
    available_methods()  # imports every method package, CycleGAN-Turbo's registered files with it
    after = metric_settings(["fid", "lpips"])
    assert before == after and not any(k.startswith("cyclegan-turbo") for k in after["weights"])
    assert "inception-v3-2015-12-05" in after["weights"]
