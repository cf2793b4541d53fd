"""Semantic segmentation scores from a confusion matrix, as mmsegmentation and Cityscapes compute them.

IoU_c = TP / (TP + FP + FN) over the whole test set (pixels pooled across images, not a mean of
per-image scores); pixels labelled ``ignore`` (255) are left out; a class with neither ground-truth
nor predicted pixels has no IoU (NaN) and does not enter the mean; a class predicted but absent from
the ground truth scores 0. mIoU is the mean of the defined IoUs.
"""

from __future__ import annotations

import numpy as np

from bench.metrics.bootstrap import column_cis

N_CLASSES = 19  # Cityscapes train ids 0..18
IGNORE = 255
CITYSCAPES_CLASSES = ("road", "sidewalk", "building", "wall", "fence", "pole", "traffic light", "traffic sign",
                      "vegetation", "terrain", "sky", "person", "rider", "car", "truck", "bus", "train", "motorcycle",
                      "bicycle")  # train id order


def confusion(pred: np.ndarray, gt: np.ndarray, n_classes: int = N_CLASSES, ignore: int = IGNORE) -> np.ndarray:
    """n x n matrix, rows = ground truth, columns = prediction."""
    if pred.shape != gt.shape:
        raise ValueError(f"prediction {pred.shape} and label {gt.shape} differ in size")
    keep = gt != ignore
    g, p = gt[keep].astype(np.int64), pred[keep].astype(np.int64)
    if g.size and (g.max() >= n_classes or p.max() >= n_classes):
        raise ValueError(f"label ids must be < {n_classes} or {ignore}")
    return np.bincount(g * n_classes + p, minlength=n_classes * n_classes).reshape(n_classes, n_classes)


def iou_per_class(cm: np.ndarray) -> np.ndarray:
    tp = np.diag(cm).astype(np.float64)
    union = cm.sum(0) + cm.sum(1) - tp
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, tp / union, np.nan)


def mean_iou(cm: np.ndarray) -> float:
    iou = iou_per_class(cm)
    return float(np.nanmean(iou)) if np.isfinite(iou).any() else float("nan")


def bootstrap_iou_cis(per_image: np.ndarray, seed: int = 0, n_boot: int = 1000) -> tuple[tuple[float, float], np.ndarray]:
    """95% CIs of mIoU and of every class's IoU (n_classes x 2; NaN where a class never has one), from the same
    resamples of the test images (their confusion matrices, with replacement)."""
    n = len(per_image)
    n_classes = per_image.shape[1]
    if n < 2:
        return (float("nan"), float("nan")), np.full((n_classes, 2), np.nan)
    rng = np.random.default_rng(seed)
    flat = per_image.reshape(n, -1)
    means, per_class = [], []
    for _ in range(n_boot):
        counts = np.bincount(rng.integers(0, n, n), minlength=n)
        iou = iou_per_class((counts @ flat).reshape(per_image.shape[1:]))
        per_class.append(iou)
        means.append(float(np.nanmean(iou)) if np.isfinite(iou).any() else float("nan"))
    lo, hi = np.nanquantile(means, [0.025, 0.975])
    return (float(lo), float(hi)), column_cis(np.array(per_class))


def bootstrap_miou_ci(per_image: np.ndarray, seed: int = 0, n_boot: int = 1000) -> tuple[float, float]:
    """95% CI of mIoU by resampling test images (their confusion matrices) with replacement."""
    return bootstrap_iou_cis(per_image, seed, n_boot)[0]
