"""Downstream segmentation: the mIoU definition, the cached day segmenter, and the table's bounds."""

import numpy as np
import pytest
from sklearn.metrics import confusion_matrix as sk_confusion

from bench.metrics.segmentation import IGNORE, N_CLASSES, bootstrap_miou_ci, confusion, iou_per_class, mean_iou


def test_confusion_matrix_equals_sklearn_with_ignore_labels():
    rng = np.random.default_rng(0)
    gt = rng.integers(0, 5, (20, 30)).astype(np.uint8)
    gt[rng.random(gt.shape) < 0.2] = IGNORE
    pred = rng.integers(0, 6, (20, 30)).astype(np.uint8)
    keep = gt != IGNORE
    ref = sk_confusion(gt[keep], pred[keep], labels=list(range(N_CLASSES)))
    assert np.array_equal(confusion(pred, gt), ref)


def test_miou_by_hand_with_absent_and_false_positive_classes():
    gt = np.array([[0, 0, 1, 1], [0, 0, 1, IGNORE]], np.uint8)
    pred = np.array([[0, 0, 1, 2], [0, 1, 1, 7]], np.uint8)  # class 2 predicted but absent: IoU 0
    iou = iou_per_class(confusion(pred, gt))
    assert iou[0] == pytest.approx(3 / 4)  # TP 3, FN 1
    assert iou[1] == pytest.approx(2 / 4)  # TP 2, FP 1, FN 1 (the ignored pixel's prediction does not count)
    assert iou[2] == 0.0
    assert np.isnan(iou[3:]).all() and np.isnan(iou[7])  # neither in labels nor (counted) predictions
    assert mean_iou(confusion(pred, gt)) == pytest.approx((0.75 + 0.5 + 0.0) / 3)


def test_miou_pools_pixels_over_images_not_per_image_means():
    a_gt, a_pred = np.zeros((2, 2), np.uint8), np.zeros((2, 2), np.uint8)
    b_gt, b_pred = np.ones((2, 2), np.uint8), np.zeros((2, 2), np.uint8)
    pooled = mean_iou(confusion(a_pred, a_gt) + confusion(b_pred, b_gt))
    assert pooled == pytest.approx((4 / 8 + 0) / 2)


def test_size_mismatch_is_an_error():
    with pytest.raises(ValueError, match="differ in size"):
        confusion(np.zeros((4, 4), np.uint8), np.zeros((4, 5), np.uint8))


def test_bootstrap_ci_of_miou_brackets_the_estimate():
    rng = np.random.default_rng(1)
    cms = []
    for _ in range(30):
        gt = rng.integers(0, 3, (8, 8)).astype(np.uint8)
        pred = np.where(rng.random((8, 8)) < 0.7, gt, rng.integers(0, 3, (8, 8))).astype(np.uint8)
        cms.append(confusion(pred, gt))
    cms = np.stack(cms)
    lo, hi = bootstrap_miou_ci(cms)
    assert lo < mean_iou(cms.sum(0)) < hi
    # Every class gets its CI from the same resamples: written out by hand, and mIoU's is unchanged by it.
    from bench.metrics.segmentation import bootstrap_iou_cis

    (mlo, mhi), per_class = bootstrap_iou_cis(cms, n_boot=300)
    from bench.metrics.bootstrap import draws_for_seed

    by_hand = np.array([iou_per_class(np.einsum("i,ijk->jk", np.bincount(i, minlength=30), cms))
                        for i in draws_for_seed(30, 0, 300).indices()])
    assert np.allclose(per_class[:3], np.quantile(by_hand[:, :3], [0.025, 0.975], axis=0).T)
    assert np.isnan(per_class[3:]).all()  # classes that never occur have no IoU and no interval
    assert (mlo, mhi) == bootstrap_miou_ci(cms, n_boot=300)
    iou = iou_per_class(cms.sum(0))
    assert all(per_class[c, 0] < iou[c] < per_class[c, 1] for c in range(3))


def test_smoke_run_has_upper_bound_lower_bound_and_gap(tmp_path, with_weights):
    from bench.results import read_metrics_csv
    from bench.runner import RunConfig, run

    summary = run(RunConfig(preset="smoke", methods=("identity", "histmatch"), out=tmp_path, device="cpu"))
    records = read_metrics_csv(summary.run_dir / "metrics.csv")
    miou = {r.method: r.value for r in records if r.metric == "miou"}
    assert set(miou) == {"identity", "histmatch", "day-twin"}
    assert miou["day-twin"] > miou["identity"] + 5  # the day segmenter does much better on day images
    per_class = {r.metric for r in records if r.method == "day-twin" and r.metric.startswith("iou/")}
    assert {"iou/road", "iou/sky", "iou/car"} <= per_class
    fd = {r.method: r.value for r in records if r.metric == "fd-synthseg"}
    assert all(0 < r.ci_low < r.ci_high for r in records if r.metric == "fd-synthseg")  # resampled sets: a CI
    assert set(fd) == {"identity", "histmatch"} and all(v > 0 for v in fd.values())
    table = (summary.run_dir / "tables" / "summary.md").read_text()
    assert "mIoU gap recovered ↑" in table and "day-twin (upper bound)" in table
    rows = {line.split("|")[1].strip(): [c.strip() for c in line.split("|")[1:-1]]
            for line in table.splitlines() if line.startswith("| ")}
    col = rows["method"].index("mIoU gap recovered ↑")
    assert rows["identity"][col] == "0.00" and rows["day-twin (upper bound)"][col] == "1.00"
    gap = (miou["histmatch"] - miou["identity"]) / (miou["day-twin"] - miou["identity"])
    assert rows["histmatch"][col] == f"{gap:.2f}"
    assert "mAP gap recovered ↑" not in table  # no detector at smoke: nothing to recover
    # The segmenter is cached by content: a second run trains nothing.
    import bench.downstream.synthetic_segmenter as seg

    called = []
    original = seg._build
    seg._build = lambda: called.append(1) or original()
    try:
        run(RunConfig(preset="smoke", methods=("gamma",), out=tmp_path, device="cpu"))
    finally:
        seg._build = original
    assert called == [1]  # built once to load the cached weights, not trained (no second training loop)


def test_one_pass_analysis_equals_the_full_model(smoke_suite):
    import torch

    from bench.downstream.synthetic_segmenter import _batch, trained_segmenter

    seg = trained_segmenter(smoke_suite.train_b, smoke_suite.train_b_labels, "smoke")
    paths = list(smoke_suite.test_a[:3])
    labels, feats = seg.analyse(paths)
    with torch.no_grad():
        x = _batch(paths)
        full = seg.model(x)["out"].argmax(1).numpy()
        pooled = seg.model.backbone(x)["high"].mean((2, 3)).double()
    assert all(np.array_equal(a, b) for a, b in zip(labels, full))
    assert torch.equal(feats, pooled) and feats.shape == (3, 960)
