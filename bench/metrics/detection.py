"""COCO box mAP, as pycocotools' COCOeval computes it (bbox, area 'all', maxDets 100), with bootstrap CIs.

Why our own implementation: a bootstrap CI re-scores hundreds of resampled test sets, which
pycocotools would redo from the JSON each time. Matching is per image, so we match once and
re-accumulate with per-image multiplicities. Tests check equality with pycocotools on
constructed cases (crowd boxes, images without boxes, categories absent from images).

The definition, step by step (pycocotools ``evaluateImg`` and ``accumulate``):
- per image and category, detections sorted by score (stable) and cut to the 100 best;
- ground truth with ``iscrowd`` is 'ignored': matching it neither counts a true positive nor a
  false positive, and IoU with a crowd box is intersection / detection area;
- at each IoU threshold 0.50:0.05:0.95, each detection in score order takes the unmatched
  ground-truth box of highest IoU >= the threshold, preferring non-ignored boxes;
- per category, detections of all images sorted by score (stable, image order); precision made
  monotone from the right; sampled at 101 recall points (the first point whose recall reaches each);
- AP = mean over thresholds, recall points and categories that have non-ignored ground truth.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np

from bench.metrics.bootstrap import Draws, column_cis, draws_for_seed, percentile_ci

IOU_THRESHOLDS = np.linspace(0.5, 0.95, 10)
RECALL_POINTS = np.linspace(0.0, 1.0, 101)
MAX_DETS = 100


def box_iou(dets: np.ndarray, gts: np.ndarray, crowd: np.ndarray) -> np.ndarray:
    """IoU of xywh boxes (D x G); for crowd ground truth the denominator is the detection's area."""
    if len(dets) == 0 or len(gts) == 0:
        return np.zeros((len(dets), len(gts)))
    dx0, dy0 = dets[:, 0:1], dets[:, 1:2]
    dx1, dy1 = dx0 + dets[:, 2:3], dy0 + dets[:, 3:4]
    gx0, gy0 = gts[:, 0], gts[:, 1]
    gx1, gy1 = gx0 + gts[:, 2], gy0 + gts[:, 3]
    iw = np.clip(np.minimum(dx1, gx1) - np.maximum(dx0, gx0), 0, None)
    ih = np.clip(np.minimum(dy1, gy1) - np.maximum(dy0, gy0), 0, None)
    inter = iw * ih
    d_area = dets[:, 2:3] * dets[:, 3:4]
    g_area = gts[:, 2] * gts[:, 3]
    union = np.where(crowd[None, :], d_area, d_area + g_area - inter)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, inter / union, 0.0)


def _match_image(dets: np.ndarray, gts: np.ndarray, crowd: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(T x D) true-positive and ignored flags for one image and category; dets already score-sorted."""
    order = np.argsort(crowd, kind="mergesort")  # non-ignored ground truth first
    gts, crowd = gts[order], crowd[order]
    ious = box_iou(dets, gts, crowd)
    tp = np.zeros((len(IOU_THRESHOLDS), len(dets)), dtype=bool)
    ignored = np.zeros_like(tp)
    for t, thr in enumerate(IOU_THRESHOLDS):
        taken = np.zeros(len(gts), dtype=bool)
        for d in range(len(dets)):
            best_iou, m = min(thr, 1 - 1e-10), -1
            for g in range(len(gts)):
                if taken[g] and not crowd[g]:
                    continue
                if m > -1 and not crowd[m] and crowd[g]:
                    break  # only ignored boxes remain: keep the real match
                if ious[d, g] < best_iou:
                    continue
                best_iou, m = ious[d, g], g
            if m == -1:
                continue
            taken[m] = True
            ignored[t, d] = crowd[m]
            tp[t, d] = not crowd[m]
    return tp, ignored


@dataclass
class _CategoryMatches:
    """Every detection of one category over the test set, in accumulation order."""

    scores: list[np.ndarray] = field(default_factory=list)
    image: list[np.ndarray] = field(default_factory=list)  # test-set index of each detection's image
    tp: list[np.ndarray] = field(default_factory=list)
    ignored: list[np.ndarray] = field(default_factory=list)


@dataclass
class DetectionMatches:
    """Per-image matching results, reusable for resampled test sets."""

    n_images: int
    categories: dict[int, str]
    scores: dict[int, np.ndarray]  # per category, sorted for accumulation
    image: dict[int, np.ndarray]
    tp: dict[int, np.ndarray]  # T x D
    ignored: dict[int, np.ndarray]
    positives: dict[int, np.ndarray]  # per category: non-ignored ground-truth count per image

    def precision(self, weights: np.ndarray | None = None) -> np.ndarray:
        """COCO's precision array (T x R x K), -1 where a category has no ground truth.

        ``weights`` gives each image's multiplicity (a bootstrap resample); duplicating an image
        adds copies of its detections right beside each other (same score), and the interpolated
        precision at the end of such a run of copies equals that of the expanded list, so
        weighted cumulative sums give the exact value.
        """
        w = np.ones(self.n_images) if weights is None else np.asarray(weights, dtype=np.float64)
        out = -np.ones((len(IOU_THRESHOLDS), len(RECALL_POINTS), len(self.categories)))
        for k, cat in enumerate(sorted(self.categories)):
            npig = float(self.positives[cat] @ w)
            if npig == 0:
                continue
            out[:, :, k] = 0.0
            n_dets = self.tp[cat].shape[1]
            if n_dets == 0:
                continue
            # All IoU thresholds at once (T x D); only the recall look-up is per threshold.
            dw = w[self.image[cat]]
            tps = np.cumsum(self.tp[cat] * dw, axis=1)
            fps = np.cumsum((~self.tp[cat] & ~self.ignored[cat]) * dw, axis=1)
            rc = tps / npig
            pr = tps / (fps + tps + np.spacing(1))
            pr = np.maximum.accumulate(pr[:, ::-1], axis=1)[:, ::-1]
            for t in range(len(IOU_THRESHOLDS)):
                idx = np.searchsorted(rc[t], RECALL_POINTS, side="left")
                valid = idx < n_dets
                out[t, valid, k] = pr[t, idx[valid]]
        return out


def match(gt: dict, detections: list[dict]) -> DetectionMatches:
    """Match ``detections`` (COCO result format) against the COCO ground truth ``gt``."""
    image_ids = sorted(img["id"] for img in gt["images"])
    index = {img_id: i for i, img_id in enumerate(image_ids)}
    categories = {c["id"]: c["name"] for c in gt["categories"]}
    gts: dict[tuple[int, int], list[dict]] = defaultdict(list)
    for a in gt["annotations"]:
        gts[(a["image_id"], a["category_id"])].append(a)
    dts: dict[tuple[int, int], list[dict]] = defaultdict(list)
    for d in detections:
        if d["image_id"] not in index:
            raise ValueError(f"detection for image id {d['image_id']}, which the ground truth does not list")
        dts[(d["image_id"], d["category_id"])].append(d)

    per_cat: dict[int, _CategoryMatches] = {c: _CategoryMatches() for c in categories}
    positives = {c: np.zeros(len(image_ids)) for c in categories}
    for cat in categories:
        acc = per_cat[cat]
        for img_id in image_ids:
            g, d = gts.get((img_id, cat), []), dts.get((img_id, cat), [])
            crowd = np.array([bool(a.get("iscrowd", 0)) for a in g], dtype=bool)
            positives[cat][index[img_id]] = float((~crowd).sum())
            if not d:
                continue
            scores = np.array([x["score"] for x in d], dtype=np.float64)
            order = np.argsort(-scores, kind="mergesort")[:MAX_DETS]
            boxes = np.array([d[i]["bbox"] for i in order], dtype=np.float64).reshape(-1, 4)
            gboxes = np.array([a["bbox"] for a in g], dtype=np.float64).reshape(-1, 4)
            tp, ign = _match_image(boxes, gboxes, crowd)
            acc.scores.append(scores[order])
            acc.image.append(np.full(len(order), index[img_id]))
            acc.tp.append(tp)
            acc.ignored.append(ign)

    def cat_arrays(acc: _CategoryMatches):
        if not acc.scores:
            empty = np.zeros((len(IOU_THRESHOLDS), 0), dtype=bool)
            return np.zeros(0), np.zeros(0, dtype=np.int64), empty, empty
        scores = np.concatenate(acc.scores)
        order = np.argsort(-scores, kind="mergesort")
        return (scores[order], np.concatenate(acc.image)[order], np.concatenate(acc.tp, 1)[:, order],
                np.concatenate(acc.ignored, 1)[:, order])

    arrays = {c: cat_arrays(per_cat[c]) for c in categories}
    return DetectionMatches(
        n_images=len(image_ids),
        categories=categories,
        scores={c: a[0] for c, a in arrays.items()},
        image={c: a[1] for c, a in arrays.items()},
        tp={c: a[2] for c, a in arrays.items()},
        ignored={c: a[3] for c, a in arrays.items()},
        positives=positives,
    )


def _mean_valid(p: np.ndarray) -> float:
    valid = p[p > -1]
    return float(valid.mean()) if valid.size else float("nan")


@dataclass
class DetectionScores:
    ap: float  # AP @[.50:.95], COCO's headline number
    ap50: float
    per_class: dict[str, float]  # AP @[.50:.95] per category (NaN: no ground truth)
    ap_ci: tuple[float, float] = (float("nan"), float("nan"))
    ap50_ci: tuple[float, float] = (float("nan"), float("nan"))
    per_class_ci: dict[str, tuple[float, float]] = field(default_factory=dict)  # from the same resamples
    # B resampled values of "ap", "ap50" and each "ap/<class>" (fractions, like the values above)
    replicates: dict[str, np.ndarray] = field(default_factory=dict)


def scores_from_precision(p: np.ndarray) -> tuple[float, float]:
    return _mean_valid(p), _mean_valid(p[0])  # IOU_THRESHOLDS[0] == 0.5


def evaluate(gt: dict, detections: list[dict], n_boot: int = 1000, seed: int = 0, draws: Draws | None = None,
             order: list[int] | None = None) -> DetectionScores:
    """AP, AP50 and per-class AP, with 95% bootstrap CIs over test images and their replicates.

    ``draws`` resample the test images in ``order`` (image ids as the test set lists them; default: ascending
    ids); without them, ``n_boot`` resamples keyed by ``seed``.
    """
    m = match(gt, detections)
    p = m.precision()
    ap, ap50 = scores_from_precision(p)
    per_class = {name: _mean_valid(p[:, :, k]) for k, (_, name) in enumerate(sorted(m.categories.items()))}
    out = DetectionScores(ap, ap50, per_class)
    if draws is None:
        if m.n_images < 2 or n_boot <= 0:
            return out
        draws = draws_for_seed(m.n_images, seed, n_boot)
    ids = sorted(img["id"] for img in gt["images"])
    position = {img: k for k, img in enumerate(order if order is not None else ids)}
    counts = draws.counts()[:, [position[i] for i in ids]]  # into match()'s image order
    stats, classes = [], []
    for weights in counts:
        p = m.precision(weights)
        stats.append(scores_from_precision(p))
        classes.append([_mean_valid(p[:, :, k]) for k in range(len(m.categories))])
    stats_a, classes_a = np.array(stats), np.array(classes).reshape(len(counts), len(m.categories))
    out.replicates = {"ap": stats_a[:, 0], "ap50": stats_a[:, 1]}
    out.ap_ci, out.ap50_ci = percentile_ci(stats_a[:, 0]), percentile_ci(stats_a[:, 1])
    for k, (name, (c_lo, c_hi)) in enumerate(zip(out.per_class, column_cis(classes_a))):
        out.replicates[f"ap/{name}"] = classes_a[:, k]
        if not np.isnan(c_lo):
            out.per_class_ci[name] = (float(c_lo), float(c_hi))
    return out


# Hallucination and removal rates: what a translation makes the detector see that is not there, and what it hides.
RATE_SCORE = 0.5  # a detection is the detector's answer at this score or above (mAP integrates over all scores)
RATE_IOU = 0.5  # and finds a ground-truth object of its category at this IoU or above


def found_objects(gt: dict, detections: list[dict], image_ids: list[int], score: float = RATE_SCORE,
                  iou: float = RATE_IOU) -> tuple[list[set[int]], np.ndarray]:
    """Per image of ``image_ids``: the ids of the ground-truth objects that a confident detection finds, and the
    number of confident detections that find none (hallucinations).

    Matching as COCO's at one IoU threshold: per image and category, detections in score order each take the
    unmatched object of highest IoU; one that only overlaps a crowd region is neither a find nor a hallucination.
    """
    gts: dict[tuple[int, int], list[dict]] = defaultdict(list)
    for a in gt["annotations"]:
        gts[(a["image_id"], a["category_id"])].append(a)
    dts: dict[tuple[int, int], list[dict]] = defaultdict(list)
    for d in detections:
        if d["score"] >= score:
            dts[(d["image_id"], d["category_id"])].append(d)
    found: list[set[int]] = [set() for _ in image_ids]
    extra = np.zeros(len(image_ids))
    index = {img: i for i, img in enumerate(image_ids)}
    for (img, cat), ds in dts.items():
        if img not in index:
            continue
        objs = gts.get((img, cat), [])
        crowd = np.array([bool(a.get("iscrowd", 0)) for a in objs], dtype=bool)
        boxes = np.array([a["bbox"] for a in objs], dtype=np.float64).reshape(-1, 4)
        ds = sorted(ds, key=lambda d: -d["score"])
        ious = box_iou(np.array([d["bbox"] for d in ds], dtype=np.float64).reshape(-1, 4), boxes, crowd)
        taken = np.zeros(len(objs), dtype=bool)
        for k in range(len(ds)):
            free = np.where(~taken & ~crowd & (ious[k] >= iou), ious[k], -1.0)
            if free.max(initial=-1.0) >= 0:
                g = int(free.argmax())
                taken[g] = True
                found[index[img]].add(objs[g]["id"])
            elif not (crowd & (ious[k] >= iou)).any():
                extra[index[img]] += 1
    return found, extra


def objects_of(gt: dict, image_ids: list[int]) -> list[set[int]]:
    """Per image, the ids of its ground-truth objects (crowd regions left out)."""
    index = {img: i for i, img in enumerate(image_ids)}
    out: list[set[int]] = [set() for _ in image_ids]
    for a in gt["annotations"]:
        if a["image_id"] in index and not a.get("iscrowd", 0):
            out[index[a["image_id"]]].add(a["id"])
    return out
