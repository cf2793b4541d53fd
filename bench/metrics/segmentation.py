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


def class_stats(cm: np.ndarray) -> np.ndarray:
    """Per class (rows): true positives, ground-truth pixels, predicted pixels; a confusion matrix (or a stack of
    them, ... x n x n) reduced to what IoU needs, so per-image statistics sum to the pooled ones."""
    return np.stack([np.diagonal(cm, axis1=-2, axis2=-1), cm.sum(-1), cm.sum(-2)], axis=-1)


def iou_from_stats(stats: np.ndarray) -> np.ndarray:
    """Per-class IoU (NaN where a class has neither ground truth nor prediction) from ``class_stats`` (... x n x 3)."""
    tp, gt, pred = (stats[..., k].astype(np.float64) for k in range(3))
    union = gt + pred - tp
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, tp / union, np.nan)


def nanmean_rows(values: np.ndarray) -> np.ndarray:
    """The mean of each row's defined values (NaN for a row with none), without numpy's empty-slice warning."""
    defined = np.isfinite(values)
    total = np.where(defined, values, 0.0).sum(-1)
    count = defined.sum(-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def iou_replicates(per_image: np.ndarray, draws) -> np.ndarray:
    """Per-class IoU of each resample (B x n_classes) from per-image ``class_stats`` (n_images x n_classes x 3):
    the resample's images' statistics summed (pooled, as over the whole set), then IoU."""
    n, n_classes, _ = per_image.shape
    pooled = (draws.counts() @ per_image.reshape(n, -1).astype(np.float64)).reshape(-1, n_classes, 3)
    return iou_from_stats(pooled)


def bootstrap_iou_cis(per_image: np.ndarray, seed: int = 0, n_boot: int = 1000) -> tuple[tuple[float, float], np.ndarray]:
    """95% CIs of mIoU and of every class's IoU (n_classes x 2; NaN where a class never has one), from the same
    resamples of the test images (their confusion matrices, with replacement)."""
    from bench.metrics.bootstrap import draws_for_seed, percentile_ci

    n, n_classes = len(per_image), per_image.shape[1]
    if n < 2:
        return (float("nan"), float("nan")), np.full((n_classes, 2), np.nan)
    per_class = iou_replicates(class_stats(per_image), draws_for_seed(n, seed, n_boot))
    return percentile_ci(nanmean_rows(per_class)), column_cis(per_class)


def bootstrap_miou_ci(per_image: np.ndarray, seed: int = 0, n_boot: int = 1000) -> tuple[float, float]:
    """95% CI of mIoU by resampling test images (their confusion matrices) with replacement."""
    return bootstrap_iou_cis(per_image, seed, n_boot)[0]
