"""The runner end to end on the smoke suite: outputs, numbers, resume, and failure behaviour."""

import csv
import errno
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from bench.data.io import read_rgb
from bench.data.scene import CLASS_NAMES
from bench.results import COLUMNS, read_metrics_csv
from bench.runner import RunConfig, RunError, run

METHODS = ("identity", "gamma", "clahe", "histmatch")


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory, weights_dir, run_with_test_weights):
    out = tmp_path_factory.mktemp("results")
    summary = run_with_test_weights(RunConfig(preset="smoke", methods=METHODS, out=out, device="cpu"))
    return summary, weights_dir, run_with_test_weights.torch_home


def test_run_writes_the_documented_layout(smoke_run):
    summary, _, _ = smoke_run
    d = summary.run_dir
    assert d.name == "smoke" and d.parent.name == "synthetic-night"
    for rel in ("manifest.json", "metrics.csv", "tables/summary.md", "figures/qualitative.png"):
        assert (d / rel).is_file(), rel
    assert not list(d.rglob(".*.tmp-*")), "temporary files left behind"
    with open(d / "metrics.csv") as fh:
        assert next(csv.reader(fh)) == COLUMNS
    records = read_metrics_csv(d / "metrics.csv")
    assert {r.method for r in records} == set(METHODS) | {"day-twin"}
    main = {"fid", "kid", "fd-dinov2", "fid-clean", "kid-clean", "lpips", "psnr", "ssim", "sift", "miou", "map", "ap50", "hallucinated",
            "hallucination-share", "removed", "fd-synthseg"}
    for method in METHODS:
        found = {r.metric for r in records if r.method == method}
        assert main <= found and all(m.startswith(("iou/", "ap/")) for m in found - main)
    per_class = {f"iou/{c}" for c in CLASS_NAMES.values()}
    detection = ("map", "ap50", "hallucinated", "hallucination-share", "removed")
    assert {r.metric for r in records if r.method == "day-twin"} - per_class == {"miou", *detection}
    # At smoke the day detector is not trained: its metrics are skipped, saying why, never ranked.
    not_trained = [r for r in records if r.metric in detection]
    assert len(not_trained) == len(detection) * (len(METHODS) + 1)
    assert all(r.skipped and "not measured at --preset smoke" in r.note for r in not_trained)
    assert all(not r.skipped and r.n == 12 for r in records if "/" not in r.metric and r not in not_trained)
    manifest = json.loads((d / "manifest.json").read_text())
    assert manifest["versions"]["torch"] and "git_commit" in manifest and manifest["seeds"] == [0]
    assert any("SUBSTITUTE" in k for k in manifest["weights"])  # test weights are labelled as such
    assert all("SUBSTITUTE" in r.extractor for r in records if r.metric in ("fid", "kid", "lpips"))
    fig = read_rgb(d / "figures" / "qualitative.png")
    assert fig.shape[1] > fig.shape[0]  # 5 columns (input, 3 methods, twin) x 4 rows


def test_qualitative_grid_shows_the_input_once(smoke_run, tmp_path, monkeypatch):
    """identity's translation is the input: the grid has the input column and no identity column."""
    import bench.runner

    summary, _, torch_home = smoke_run
    monkeypatch.setenv("TORCH_HOME", str(torch_home))  # the same weights: the shared run folder stays as it was
    grids = []
    monkeypatch.setattr(bench.runner, "image_grid", lambda rows, columns, path: grids.append((rows, columns)))
    run(RunConfig(preset="smoke", methods=METHODS, out=summary.run_dir.parent.parent, device="cpu"))  # cells reused
    ((rows, columns),) = grids
    assert columns == ["input", "gamma", "clahe", "histmatch", "day twin"]
    assert all(set(r) == set(columns) for r in rows)


def test_summary_table_bolds_the_best_and_every_method_not_significantly_worse(smoke_run):
    """Bold and the rank, recomputed here from the cells' replicate files: sacreBLEU's paired p for every pair of
    methods, Holm over the pairs, the best mean bold, and every method whose adjusted p against it is >= 0.05."""
    import itertools

    import pandas as pd

    from bench.stats.paired import holm, paired_difference

    summary, _, _ = smoke_run
    records = read_metrics_csv(summary.run_dir / "metrics.csv")
    table = (summary.run_dir / "tables" / "summary.md").read_text()
    rows = {line.split("|")[1].strip(): [c.strip() for c in line.split("|")[1:-1]]
            for line in table.splitlines() if line.startswith("| ") and "---" not in line}
    separated = 0
    for metric, higher, head in (("psnr", True, "PSNR ↑"), ("fid", False, "FID ↓"), ("ssim", True, "SSIM ↑")):
        vals = {r.method: r.value for r in records if r.metric == metric}
        reps = {m: pd.read_csv(summary.run_dir / "cells" / m / "seed0" / "replicates.csv.gz")[metric].to_numpy()
                for m in vals}
        pairs = list(itertools.combinations(vals, 2))
        adjusted = dict(zip(pairs, holm([paired_difference(vals[a], vals[b], reps[a], reps[b]).p for a, b in pairs])))
        sign = 1 if higher else -1

        def better(x, y):
            q = adjusted.get((x, y), adjusted.get((y, x)))
            return q < 0.05 and sign * (vals[x] - vals[y]) > 0

        best = max(vals, key=lambda m: sign * vals[m])
        col = rows["method"].index(head)
        for m in vals:
            assert rows[m][col].startswith("**") == (m == best or not better(best, m)), (metric, m)
            assert rows[m][col].rstrip("*").endswith(f"#{1 + sum(better(o, m) for o in vals if o != m)}"), (metric, m)
            separated += m != best and better(best, m)
    assert separated > 0  # the smoke methods differ enough for some column to separate them
    assert "FID ↓" in table and "PSNR ↑" in table


def test_runner_numbers_equal_direct_reference_calls(smoke_run, smoke_suite):
    import lpips
    import torch
    import torch_fidelity
    from skimage.metrics import peak_signal_noise_ratio

    summary, weights_dir, torch_home = smoke_run
    records = {(r.method, r.metric): r for r in read_metrics_csv(summary.run_dir / "metrics.csv")}
    trans = summary.run_dir / "cells" / "gamma" / "seed0" / "translations"
    ref = torch_fidelity.calculate_metrics(
        input1=str(trans), input2=str(smoke_suite.root / "testB"), fid=True, kid=True, kid_subset_size=12,
        cuda=False, feature_extractor_weights_path=str(weights_dir / "weights-inception-2015-12-05-6726825d.pth"),
        save_cpu_ram=True, cache=False, verbose=False,
    )
    assert records[("gamma", "fid")].value == pytest.approx(ref["frechet_inception_distance"], rel=1e-4)
    assert records[("gamma", "kid")].value == pytest.approx(ref["kernel_inception_distance_mean"], rel=1e-4)
    # fid-clean / kid-clean: the clean-fid package on the same two folders, loading the test file itself.
    import cleanfid.fid
    from cleanfid.inception_torchscript import InceptionV3W

    model = InceptionV3W(str(weights_dir), download=False).eval()
    kw = dict(mode="clean", num_workers=0, device=torch.device("cpu"), verbose=False, use_dataparallel=False)
    build, cleanfid.fid.build_feature_extractor = cleanfid.fid.build_feature_extractor, lambda *a, **k: model
    try:
        np.random.seed(0)
        clean_kid = cleanfid.fid.compute_kid(str(trans), str(smoke_suite.root / "testB"), **kw)
    finally:
        cleanfid.fid.build_feature_extractor = build
    # FID from the package's own features (its compute_fid, sqrtm and all, is compared in test_clean_fid.py).
    from bench.metrics.fid_kid import _fid_gram

    feats = [cleanfid.fid.get_folder_features(str(d), model, num_workers=0, device=torch.device("cpu"), mode="clean",
                                              verbose=False) for d in (trans, smoke_suite.root / "testB")]
    clean = _fid_gram(*(f.astype(np.float64) for f in feats))
    r = records[("gamma", "fid-clean")]
    assert r.value == pytest.approx(clean, rel=1e-6) and r.ci_low <= r.value <= r.ci_high and "SUBSTITUTE" in r.extractor
    assert records[("gamma", "kid-clean")].value == pytest.approx(clean_kid, rel=1e-6)
    assert r.value != pytest.approx(records[("gamma", "fid")].value, rel=1e-3)  # another resize, another number

    os.environ["TORCH_HOME"], old = str(torch_home), os.environ["TORCH_HOME"]
    try:
        model = lpips.LPIPS(net="alex", version="0.1", verbose=False)
    finally:
        os.environ["TORCH_HOME"] = old
    outs = sorted(trans.glob("*.png"))
    d, p = [], []
    for o, t in zip(outs, smoke_suite.twins):
        a, b = read_rgb(o), read_rgb(t)
        ta = torch.from_numpy(a).permute(2, 0, 1)[None].float() / 127.5 - 1
        tb = torch.from_numpy(b).permute(2, 0, 1)[None].float() / 127.5 - 1
        d.append(float(model(ta, tb)))
        p.append(peak_signal_noise_ratio(b, a, data_range=255))
    assert records[("gamma", "lpips")].value == pytest.approx(np.mean(d), rel=1e-5)
    assert records[("gamma", "psnr")].value == pytest.approx(np.mean(p), rel=1e-10)
    r = records[("gamma", "psnr")]
    assert r.ci_low < r.value < r.ci_high


def test_rerun_skips_finished_cells_and_force_redoes_them(smoke_run):
    summary, _, torch_home = smoke_run
    out = summary.run_dir.parent.parent
    metrics = summary.run_dir / "cells" / "identity" / "seed0" / "metrics.json"
    before = metrics.stat().st_mtime_ns
    rows_before = read_metrics_csv(summary.run_dir / "metrics.csv")
    again = run(RunConfig(preset="smoke", methods=METHODS, out=out, device="cpu"))
    assert again.done == [] and len(again.skipped) == 4
    assert metrics.stat().st_mtime_ns == before
    # The results survive a re-run unchanged (the weights are not even needed to rebuild them).
    assert read_metrics_csv(summary.run_dir / "metrics.csv") == rows_before
    forced = run(RunConfig(preset="smoke", methods=("identity",), out=out, device="cpu", force=True))
    assert forced.done == [("identity", 0)] and metrics.stat().st_mtime_ns != before


def test_unknown_names_list_the_valid_ones(tmp_path):
    with pytest.raises(RunError, match="unknown suite 'synthetic-nite'.*Did you mean 'synthetic-night'.*synthetic-fog"):
        run(RunConfig(suite="synthetic-nite", out=tmp_path))
    with pytest.raises(RunError, match="unknown method 'clahee'.*Did you mean 'clahe'.*histmatch"):
        run(RunConfig(methods=("clahee",), out=tmp_path, preset="smoke"))
    with pytest.raises(RunError, match="unknown preset"):
        run(RunConfig(preset="fast", out=tmp_path))


def test_unwritable_output_folder_is_reported(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with pytest.raises(RunError, match="cannot write results to .*--out"):
        run(RunConfig(preset="smoke", methods=("identity",), out=blocker / "results"))


def test_full_disk_leaves_no_half_written_file_and_the_run_resumes(tmp_path, monkeypatch):
    import bench.atomic as atomic

    real_fsync = os.fsync
    calls = {"n": 0}

    def failing_fsync(fd):
        calls["n"] += 1
        if calls["n"] > 10:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_fsync(fd)

    monkeypatch.setattr(atomic.os, "fsync", failing_fsync)
    with pytest.raises(OSError, match="No space"):
        run(RunConfig(preset="smoke", methods=("identity", "gamma"), out=tmp_path))
    assert not list(tmp_path.rglob(".*.tmp-*"))
    for png in tmp_path.rglob("*.png"):
        read_rgb(png)  # every file that exists is whole
    monkeypatch.setattr(atomic.os, "fsync", real_fsync)
    summary = run(RunConfig(preset="smoke", methods=("identity", "gamma"), out=tmp_path))
    records = read_metrics_csv(summary.run_dir / "metrics.csv")
    for method in ("identity", "gamma"):
        assert {"psnr", "ssim", "miou", "fd-synthseg"} <= {r.metric for r in records if r.method == method}
    assert {r.method for r in records} == {"identity", "gamma", "day-twin"}


def test_interrupt_during_a_write_removes_the_temporary_file(tmp_path, monkeypatch):
    import bench.atomic as atomic

    def interrupted(fd):
        raise KeyboardInterrupt

    monkeypatch.setattr(atomic.os, "fsync", interrupted)
    with pytest.raises(KeyboardInterrupt):
        atomic.atomic_write_text(tmp_path / "x.json", "{}")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_a_killed_run_resumes_and_completes(tmp_path, plugin_site):
    # Identity that takes 0.3 s per image, so the run can be killed mid-way.
    site = plugin_site("slow_plugin", "slow", "Slow", preamble="import time", learned=True,
                       translate="time.sleep(0.3 * len(images)); return images.clone()")
    env = {**os.environ, "PYTHONPATH": str(site)}
    cmd = [sys.executable, "-m", "bench.cli", "run", "--preset", "smoke", "--methods", "identity,slow",
           "--seeds", "0,1", "--batch-size", "1", "--out", str(tmp_path / "out")]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    trans = tmp_path / "out" / "synthetic-night" / "smoke" / "cells" / "slow" / "seed0" / "translations"
    deadline = time.time() + 120
    while time.time() < deadline and len(list(trans.glob("*.png"))) < 3:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    partial = {p.name: p.stat().st_mtime_ns for p in trans.glob("*.png")}
    assert 3 <= len(partial) < 12, "the run was not killed mid-way"
    assert not (trans.parent / "metrics.json").exists()
    done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "finished 2 cell(s), reused 1" in done.stdout
    # Images written before the kill were kept, not redone; the run is complete.
    assert all((trans / n).stat().st_mtime_ns == t for n, t in partial.items())
    records = read_metrics_csv(tmp_path / "out" / "synthetic-night" / "smoke" / "metrics.csv")
    assert {(r.method, r.seed) for r in records} == {("identity", 0), ("slow", 0), ("slow", 1), ("day-twin", 0)}
    # slow is the identity: its scores equal identity's exactly.
    psnr = {(r.method, r.seed): r.value for r in records if r.metric == "psnr"}
    assert psnr[("slow", 0)] == psnr[("slow", 1)] == psnr[("identity", 0)]
    # Two seeds: summary.csv holds their mean and std (here the two seeds agree: std 0), one seed a CI.
    import csv

    rows = {(r["method"], r["metric"]): r for r in
            csv.DictReader(open(tmp_path / "out" / "synthetic-night" / "smoke" / "tables" / "summary.csv"))}
    slow = rows[("slow", "psnr")]
    assert slow["n_seeds"] == "2" and float(slow["mean"]) == psnr[("identity", 0)] and float(slow["std_over_seeds"]) == 0
    assert slow["ci_low"] == "" and float(rows[("identity", "psnr")]["ci_low"]) < psnr[("identity", 0)]
