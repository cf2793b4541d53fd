"""Which differences are real: shared draws, paired comparisons, rank groups, rankings over suites, the hallucination
share, and FID without scipy's square root (issue 28). Each statistic is checked against an independent
computation: the metric recomputed by brute force on each shared resample, exact enumerations, textbook formulas."""

from __future__ import annotations

import gzip
import itertools
import json
import math
import os

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from bench.cli import main
from bench.metrics.bootstrap import N_RESAMPLES, Draws, draws_key, mean_replicates, percentile_ci, ratio_replicates
from bench.stats.across_suites import cliques, rank_over_suites
from bench.stats.paired import holm, over_seeds, paired_difference, rank_groups


def _draws(n=40, n_ref=0, resamples=400):
    return Draws(draws_key({"suite": "test", "n": n}), n, n_ref, resamples)


# -- the draws ---------------------------------------------------------------------------------------------------

def test_draws_depend_on_the_protocol_and_the_resample_index_only():
    d = _draws(n=50, n_ref=30)
    idx = d.indices()
    assert idx.shape == (400, 50) and idx.min() >= 0 and idx.max() < 50
    # The same key gives the same draws (nothing else seeds them); the first B' rows of a longer draw are the draw of B'.
    assert np.array_equal(Draws(d.key, 50, 30, 1000).indices()[:400], idx)
    assert np.array_equal(d.counts()[7], np.bincount(idx[7], minlength=50))
    assert not np.array_equal(d.reference_indices()[:, :30], idx[:, :30])  # the reference set has its own stream
    assert not np.array_equal(Draws(draws_key({"suite": "other", "n": 50}), 50).indices()[:400], idx)
    # Close to uniform: every image drawn about B times over the B resamples.
    assert abs(np.bincount(idx.ravel(), minlength=50).mean() - 400) < 1e-9
    assert np.bincount(idx.ravel(), minlength=50).min() > 300


def test_the_draws_are_pinned_across_numpy_versions_and_machines():
    """Resample 0 of a fixed key, written down once: a change in how indices are made changes every replicate
    anyone has kept, so it must show up here (and DRAWS_FORMAT must change with it)."""
    import hashlib

    d = Draws(draws_key({"pinned": 1}), 10, 0, 3)
    assert d.indices()[0].tolist() == PINNED_DRAW
    # The mapping written with Python's integers: floor(raw * n / 2^64) of PCG64's raw output for the key's seed.
    seed = int.from_bytes(hashlib.sha256(f"{d.key}|test".encode()).digest(), "big")
    raw = np.random.PCG64(np.random.SeedSequence(seed)).random_raw(30)
    assert d.indices().ravel().tolist() == [(int(r) * 10) >> 64 for r in raw]


PINNED_DRAW = [9, 3, 0, 9, 6, 7, 8, 4, 7, 4]


# -- paired comparisons ------------------------------------------------------------------------------------------

def _brute_p(d: np.ndarray, observed: float) -> float:
    """sacreBLEU's p written out: shifted differences at least as large as the observed one, (c + 1) / (B + 1)."""
    c = sum(1 for x in d if abs(x - d.mean()) >= abs(observed) - 1e-12 * max(1, abs(observed)))
    return (c + 1) / (len(d) + 1)


def test_paired_difference_of_miou_and_fid_equals_brute_force_on_the_shared_resamples():
    """The metric recomputed from scratch on each shared resample (mIoU pooled from the resample's confusion
    matrices; FID from the resampled features with torch-fidelity's own statistics), then differenced."""
    from torch_fidelity.metric_fid import fid_features_to_statistics, fid_statistics_to_metric

    from bench.metrics.fid_kid import fid_from_features, fid_kid_replicates
    from bench.metrics.segmentation import class_stats, iou_replicates, mean_iou, nanmean_rows

    rng = np.random.default_rng(0)
    n, classes = 30, 4
    cms = {m: rng.integers(0, 50, size=(n, classes, classes)) for m in "ab"}
    cms["a"][:, np.arange(classes), np.arange(classes)] += 60  # a is the better segmenter
    d = _draws(n=n, n_ref=25, resamples=60)
    reps = {m: nanmean_rows(iou_replicates(class_stats(cms[m]), d)) for m in "ab"}
    brute = {m: np.array([mean_iou(cms[m][i].sum(0)) for i in d.indices()]) for m in "ab"}
    for m in "ab":
        np.testing.assert_allclose(reps[m], brute[m], rtol=1e-12)
    value = {m: mean_iou(cms[m].sum(0)) for m in "ab"}
    res = paired_difference(value["a"], value["b"], reps["a"], reps["b"])
    diff = brute["a"] - brute["b"]
    assert res.difference == pytest.approx(value["a"] - value["b"])
    assert res.ci == pytest.approx(tuple(np.quantile(diff, [0.025, 0.975])))
    assert res.p == pytest.approx(_brute_p(diff, value["a"] - value["b"]))

    feats = {m: torch.from_numpy(rng.normal(s, 1.0, size=(n, 8)).astype(np.float32)) for m, s in (("a", 0.1), ("b", 0.4))}
    ref = torch.from_numpy(rng.normal(0, 1, size=(25, 8)).astype(np.float32))
    fid_reps = {m: fid_kid_replicates(feats[m], ref, d, kid=False)[0] for m in "ab"}
    for m in "ab":
        by_hand = [fid_statistics_to_metric(fid_features_to_statistics(feats[m][i]), fid_features_to_statistics(ref[j]),
                                            False)["frechet_inception_distance"]
                   for i, j in zip(d.indices(), d.reference_indices())]
        np.testing.assert_allclose(fid_reps[m], by_hand, rtol=1e-6)
    fid = {m: fid_from_features(feats[m], ref) for m in "ab"}
    res = paired_difference(fid["a"], fid["b"], fid_reps["a"], fid_reps["b"])
    assert res.p == pytest.approx(_brute_p(fid_reps["a"] - fid_reps["b"], fid["a"] - fid["b"]))


def test_overlapping_intervals_with_a_clear_paired_difference_are_separated():
    """Hard and easy images dominate both methods' spread (their CIs overlap), but b is better on every image."""
    rng = np.random.default_rng(1)
    difficulty = rng.normal(20, 5, 200)
    a, b = difficulty + rng.normal(0, 0.2, 200), difficulty + 0.5 + rng.normal(0, 0.2, 200)
    d = _draws(n=200, resamples=N_RESAMPLES)
    ra, rb = mean_replicates(a, d), mean_replicates(b, d)
    (_, ahi), (blo, _) = percentile_ci(ra), percentile_ci(rb)
    assert blo < ahi  # the two CIs overlap
    res = paired_difference(a.mean(), b.mean(), ra, rb)
    assert res.p == pytest.approx(1 / (N_RESAMPLES + 1)) and res.ci[1] < 0
    # Resampled independently (another key for b), the difference is not detectable: pairing is what separates them.
    rb_indep = mean_replicates(b, Draws(draws_key({"independent": 1}), 200, 0, N_RESAMPLES))
    assert paired_difference(a.mean(), b.mean(), ra, rb_indep).p > 0.05


def test_identical_methods_are_not_separated():
    v = np.random.default_rng(2).normal(size=50)
    r = mean_replicates(v, _draws(n=50))
    res = paired_difference(v.mean(), v.mean(), r, r.copy())
    assert res.p == 1.0 and res.difference == 0 and res.ci == (0.0, 0.0)


def test_the_vectorised_p_values_of_rank_groups_equal_paired_difference():
    from bench.stats.paired import pair_pvalues

    rng = np.random.default_rng(3)
    reps = [rng.normal(loc, 1.0, 500) for loc in (0.0, 0.05, 0.3, 0.3, 2.0)]
    reps[3] = reps[2].copy()  # identical methods: p = 1 exactly
    values = [float(r.mean()) for r in reps]
    for nan_case in (False, True):
        if nan_case:
            reps[1][[3, 7]] = np.nan  # undefined resamples take the per-pair path
        got = pair_pvalues(values, reps)
        for (i, j), p in got.items():
            assert p == paired_difference(values[i], values[j], reps[i], reps[j]).p, (i, j, nan_case)
        assert got[(2, 3)] == 1.0


def test_holm_against_its_definition():
    p = [0.01, 0.04, 0.03, 0.005, math.nan]
    # sorted: 0.005 (x4), 0.01 (x3), 0.03 (x2), 0.04 (x1), each at least the previous adjusted value
    assert holm(p)[:4] == pytest.approx([0.03, 0.06, 0.06, 0.02]) and math.isnan(holm(p)[4])


def test_rank_groups_tie_indistinguishable_methods():
    rng = np.random.default_rng(3)
    base = rng.normal(10, 3, 300)
    values = {"a": base + 1.0, "b": base + 1.0 + rng.normal(0, 0.01, 300), "c": base + rng.normal(0, 0.3, 300)}
    d = _draws(n=300, resamples=N_RESAMPLES)
    reps = {m: mean_replicates(v, d) for m, v in values.items()}
    ranks = rank_groups({m: v.mean() for m, v in values.items()}, reps, higher_is_better=True)
    assert [ranks[m].rank for m in "abc"] == [1, 1, 3]
    assert ranks["a"].bold and ranks["b"].bold and not ranks["c"].bold
    lower = rank_groups({m: v.mean() for m, v in values.items()}, reps, higher_is_better=False)
    assert lower["c"].rank == 1 and lower["a"].rank == lower["b"].rank == 2 and not lower["a"].bold


def test_several_seeds_resample_seeds_then_images():
    """over_seeds written out: resample b draws k seeds with replacement and averages their replicate b."""
    from bench.stats.paired import seed_key

    rng = np.random.default_rng(4)
    per_seed = [rng.normal(s, 0.1, 500) for s in (0.0, 1.0, 2.0)]
    out = over_seeds(per_seed, "key|m")
    choice = seed_key("key|m", "seeds", 3).integers(0, 3, size=(500, 3))
    np.testing.assert_allclose(out, [np.mean([per_seed[s][b] for s in choice[b]]) for b in range(500)])
    # The interval covers the seeds' spread (means 0, 1, 2), which one seed's image resampling (sd 0.1) does not.
    lo, hi = percentile_ci(out)
    assert hi - lo > 1.0 and np.array_equal(over_seeds(per_seed[:1], "key|m"), per_seed[0])


# -- rankings over suites ----------------------------------------------------------------------------------------

def _friedman_by_hand(table: np.ndarray) -> tuple[float, float]:
    """Friedman's chi-square with the tie correction (Conover), ranks within each row, 1 = smallest."""
    from scipy.stats import chi2

    n, k = table.shape
    ranks = np.zeros_like(table, dtype=float)
    ties = 0.0
    for i, row in enumerate(table):
        for v in np.unique(row):
            where = np.flatnonzero(row == v)
            below = (row < v).sum()
            ranks[i, where] = below + (len(where) + 1) / 2
            ties += len(where) ** 3 - len(where)
    r = ranks.sum(0)
    stat = (12 / (n * k * (k + 1)) * (r ** 2).sum() - 3 * n * (k + 1)) / (1 - ties / (n * k * (k * k - 1)))
    return stat, float(chi2.sf(stat, k - 1))


def _wilcoxon_exact(x: np.ndarray, y: np.ndarray) -> float:
    """Two-sided exact Wilcoxon signed-rank p by enumerating every sign assignment (no ties, no zeros)."""
    d = x - y
    ranks = np.argsort(np.argsort(np.abs(d))) + 1
    observed = ranks[d > 0].sum()
    total = ranks.sum()
    stats = [sum(r for r, s in zip(ranks, signs) if s) for signs in itertools.product([0, 1], repeat=len(d))]
    t = min(observed, total - observed)
    return min(1.0, 2 * np.mean([s <= t for s in stats]))


def test_friedman_and_wilcoxon_holm_equal_an_independent_computation():
    rng = np.random.default_rng(5)
    suites = [f"s{i}" for i in range(9)]
    methods = ["good", "mid", "bad", "noise"]
    shift = {"good": 3.0, "mid": 1.5, "bad": 0.0, "noise": 1.4}
    values = {s: {m: shift[m] + rng.normal(0, 0.5) for m in methods} for s in suites}
    r = rank_over_suites(values, "psnr", higher_is_better=True)
    table = np.array([[values[s][m] for m in methods] for s in suites])
    stat, p = _friedman_by_hand(-table)  # higher is better: rank the negatives
    assert r.friedman_statistic == pytest.approx(stat) and r.friedman_p == pytest.approx(p)
    assert r.mean_rank["good"] < r.mean_rank["bad"] and r.methods[0] == "good"
    pairs = list(itertools.combinations(methods, 2))
    raw = [_wilcoxon_exact(table[:, methods.index(a)], table[:, methods.index(b)]) for a, b in pairs]
    adjusted = holm(raw)
    for (a, b), praw, q in zip(pairs, raw, adjusted):
        assert r.pairs[(a, b)]["p"] == pytest.approx(praw)
        assert r.pairs[(a, b)]["different"] == (q < 0.05)
    assert r.different("good", "bad") and not r.different("mid", "noise")
    assert ["mid", "noise"] in [sorted(g) for g in cliques(r)] or any({"mid", "noise"} <= set(g) for g in cliques(r))


# -- the hallucination share -------------------------------------------------------------------------------------

def test_a_blank_translator_and_the_raw_input_do_not_win_the_hallucination_share():
    """Counted per 100 images, a blank output (no detection) and the dark raw input (few) would be best. The share of
    detections that match no object is undefined without detections, and it ranks only translations that remove
    fewer objects than the raw input."""
    from bench.metrics.detection import found_objects
    from bench.report.tables import rank_exclusions

    gt = {"images": [{"id": i} for i in range(4)], "categories": [{"id": 1, "name": "car"}],
          "annotations": [{"id": 10 + i, "image_id": i, "category_id": 1, "bbox": [0, 0, 10, 10]} for i in range(4)]}

    def det(i, box, score=0.9):
        return {"image_id": i, "category_id": 1, "bbox": box, "score": score}

    outputs = {
        "black": [],
        "identity": [det(0, [0, 0, 10, 10])],  # finds one object, invents nothing
        "good": [det(i, [0, 0, 10, 10]) for i in range(4)] + [det(0, [50, 50, 5, 5])],  # finds all, invents one
    }
    rates, removed = {}, {}
    for name, dets in outputs.items():
        found, extra = found_objects(gt, dets, [0, 1, 2, 3])
        n_found = np.array([len(f) for f in found], float)
        confident = n_found + extra
        rates[name] = 100 * extra.sum() / confident.sum() if confident.sum() else math.nan
        removed[name] = 100 * (1 - n_found).clip(0).mean()
        assert (extra.sum() * 25 if name != "good" else 25.0) == pytest.approx(100 * extra.mean())
    assert math.isnan(rates["black"]) and rates["identity"] == 0.0 and rates["good"] == 20.0
    agg = {(m, "removed"): {"mean": v} for m, v in removed.items()}
    out = rank_exclusions(agg, "hallucination-share", ["identity", "good", "black"])
    assert set(out) == {"identity", "black"} and "not fewer than the raw input" in out["black"]
    # By the old count per 100 images, the blank output and the raw input would come first.
    counts = {m: 100 * found_objects(gt, d, [0, 1, 2, 3])[1].mean() for m, d in outputs.items()}
    assert counts["black"] == counts["identity"] == 0 < counts["good"]


def test_ratio_replicates_pool_over_the_resampled_images():
    num, den = np.array([1.0, 0, 2, 0]), np.array([2.0, 0, 2, 1])
    d = _draws(n=4, resamples=50)
    expected = [num[i].sum() / den[i].sum() if den[i].sum() else math.nan for i in d.indices()]
    np.testing.assert_allclose(ratio_replicates(num, den, d), expected)


# -- FID without scipy's square root ------------------------------------------------------------------------------

@pytest.mark.parametrize("n1,n2,dim", [(60, 45, 32), (300, 250, 64), (150, 150, 512)])
def test_fid_from_symmetric_eigenproblems_equals_torch_fidelity(n1, n2, dim):
    """Below and above the feature dimension (the Gram and the covariance forms), to 1e-6 relative."""
    from torch_fidelity.metric_fid import fid_features_to_statistics, fid_statistics_to_metric

    from bench.metrics.fid_kid import fid_from_features

    rng = np.random.default_rng(n1)
    mix = rng.normal(size=(dim, dim)) / math.sqrt(dim)
    a = torch.from_numpy((rng.normal(size=(n1, dim)) @ mix).astype(np.float32))
    b = torch.from_numpy((rng.normal(0.2, 1.1, size=(n2, dim)) @ mix).astype(np.float32))
    ref = fid_statistics_to_metric(fid_features_to_statistics(a), fid_features_to_statistics(b), False)
    assert fid_from_features(a, b) == pytest.approx(ref["frechet_inception_distance"], rel=1e-6)


# -- cells, runs and the command line ----------------------------------------------------------------------------

def _images(folder, names, size=(24, 48), seed=0, shade=0):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for name in names:
        Image.fromarray(np.clip(rng.integers(0, 200, (*size, 3)) + shade, 0, 255).astype(np.uint8)).save(folder / name)
    return folder


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory, run_with_test_weights):
    """One protocol (a small folder suite) run twice, in two cache folders, as two machines would."""
    from bench.runner import RunConfig

    root = tmp_path_factory.mktemp("compare")
    suite = root / "suite"
    for sub, seed in (("trainA", 1), ("trainB", 2), ("testA", 3), ("testB", 4)):
        _images(suite / sub, [f"{k:02d}.png" for k in range(12)], seed=seed)
    runs = []
    old = os.environ["AUGAN_BENCH_CACHE"]
    try:
        for k in range(2):
            os.environ["AUGAN_BENCH_CACHE"] = str(root / f"cache{k}")
            cfg = RunConfig(suite=f"folder:{suite}", methods=("identity", "gamma", "clahe"), preset="smoke",
                            out=root / f"out{k}", device="cpu")
            runs.append(run_with_test_weights(cfg).run_dir)
    finally:
        os.environ["AUGAN_BENCH_CACHE"] = old
    return suite, runs


@pytest.mark.slow  # two end-to-end runs (the fixture); the leaderboard test compares across runs quickly
def test_two_runs_of_one_protocol_keep_the_same_replicates_and_per_image_files(two_runs):
    _, (a, b) = two_runs
    for method in ("identity", "gamma", "clahe"):
        for name in ("replicates.csv.gz", "per_image.csv.gz"):
            fa, fb = (r / "cells" / method / "seed0" / name for r in (a, b))
            assert fa.read_bytes() == fb.read_bytes(), (method, name)
    draws = json.loads((a / "cells" / "gamma" / "seed0" / "metrics.json").read_text())["draws"]
    assert draws == json.loads((b / "cells" / "clahe" / "seed0" / "metrics.json").read_text())["draws"]
    assert draws["resamples"] == N_RESAMPLES and draws["protocol"]["n_test"] == 12
    # Every metric with a number has its replicates, FID and KID included; their CI is their 95% interval.
    import bench

    run = bench.load_run(a)
    frame = run.cell_replicates("gamma", 0)
    for r in run.records:
        if r.method == "gamma" and not math.isnan(r.value):
            assert r.metric in frame, r.metric
            assert (r.ci_low, r.ci_high) == pytest.approx(percentile_ci(frame[r.metric].to_numpy()))
    assert {"fid", "kid"} <= set(frame.columns) and len(frame) == N_RESAMPLES
    per_image = run.per_image("gamma")
    assert list(per_image.index) == [f"{k:02d}" for k in range(12)]
    with gzip.open(a / "cells" / "gamma" / "seed0" / "replicates.csv.gz", "rt") as fh:
        assert fh.readline().startswith("resample,")


@pytest.mark.slow  # two end-to-end runs (the fixture); the leaderboard test compares across runs quickly
def test_compare_across_runs_and_the_table_ranks(two_runs, tmp_path):
    suite, (a, b) = two_runs
    res = CliRunner().invoke(main, ["compare", str(a), "--a", "gamma", "--b", "identity", "--run", str(b),
                                    "--metric", "fid", "--json"])
    assert res.exit_code == 0, res.output
    (row,) = json.loads(res.output)
    same = CliRunner().invoke(main, ["compare", str(a), "--a", "gamma", "--b", "identity", "--metric", "fid", "--json"])
    assert json.loads(same.output)[0]["p"] == row["p"] and row["resamples"] == N_RESAMPLES
    text = CliRunner().invoke(main, ["compare", str(a), "--a", "identity", "--b", "identity", "--run", str(b)])
    assert text.exit_code == 0 and "no significant difference" in text.output and "p = 1.0000" in text.output
    vs = CliRunner().invoke(main, ["tables", "--run", str(a), "--vs", "identity", "--metrics", "fid,kid"])
    assert vs.exit_code == 0 and "Δ vs identity" in vs.output and "(baseline)" in vs.output
    summary = (a / "tables" / "summary.md").read_text()
    assert "#1" in summary and "Holm-corrected" in summary


@pytest.mark.slow  # two end-to-end runs (the fixture); the leaderboard test compares across runs quickly
def test_runs_of_different_protocols_are_not_compared_and_the_error_names_what_differs(two_runs, tmp_path,
                                                                                     run_with_test_weights):
    from bench.runner import RunConfig

    suite, (a, _) = two_runs
    other = run_with_test_weights(RunConfig(suite=f"folder:{suite}", methods=("identity",), preset="smoke",
                                            out=tmp_path / "o", size=(16, 32), device="cpu")).run_dir
    res = CliRunner().invoke(main, ["compare", str(a), "--a", "gamma", "--b", "identity", "--run", str(other)])
    assert res.exit_code == 2 and "different protocols" in res.output and "size: images at their own sizes vs 16x32" in res.output
    assert "Traceback" not in res.output


@pytest.mark.slow  # two end-to-end runs (the fixture); the leaderboard test compares across runs quickly
def test_aggregate_over_suites_prints_friedman_and_writes_the_critical_difference_figure(two_runs, tmp_path):
    _, (a, b) = two_runs
    out = tmp_path / "agg"
    res = CliRunner().invoke(main, ["tables", "--run", str(a), "--run", str(b), "--aggregate", "--out", str(out),
                                    "--metrics", "psnr,fid"])
    # psnr is not a metric of folder suites; fid is.
    assert res.exit_code == 0, res.output
    assert "Friedman" in res.output and (out / "critical-difference-fid.png").is_file()
    assert (out / "critical-difference-fid.pdf").is_file() and (out / "aggregate.json").is_file()
    bad = CliRunner().invoke(main, ["tables", "--run", str(a), "--aggregate"])
    assert bad.exit_code == 2 and "two or more --run" in bad.output


def test_a_bdd100k_sized_cell_keeps_its_replicates_and_per_image_values_under_2_mb(tmp_path):
    """4,000 test images: every metric of bdd100k-night with its replicates, and the per-image columns (the largest
    set: the synthetic suites' 19 classes x 3 segmentation statistics and two box counts, plus the rates)."""
    from bench.results import CellScores, MetricRecord, write_cell

    rng = np.random.default_rng(6)
    n = 4000
    metrics = ["fid", "kid", "fid-clean", "kid-clean", "fd-dinov2", "map", "ap50", "hallucinated",
               "hallucination-share", "removed", "miou"] + [f"ap/{c}" for c in range(9)] + [f"iou/{c}" for c in range(19)]
    reps = {m: rng.normal(30, 2, 200 if m in ("fid", "fid-clean", "fd-dinov2", "kid", "kid-clean") else N_RESAMPLES)
            for m in metrics}
    per_image = {f"seg/{w}/{c}": rng.integers(0, 40000, n) * (rng.random(n) < 0.5) for c in range(19)
                 for w in ("tp", "gt", "pred")}
    per_image |= {f"boxes/{c}": rng.poisson(1.0, n) for c in range(9)}
    per_image |= {"found": rng.poisson(3, n).astype(float), "hallucinated": rng.poisson(1, n).astype(float),
                  "removed": rng.poisson(1, n).astype(float)}
    scores = CellScores([MetricRecord("s", "m", 0, m, 1.0) for m in metrics], {"key": "k"}, reps,
                        [f"b1c0c847-{k:08x}" for k in range(n)], per_image)
    write_cell(tmp_path, scores)
    size = sum((tmp_path / f).stat().st_size for f in ("replicates.csv.gz", "per_image.csv.gz"))
    assert size < 2 * 1024 * 1024, size
