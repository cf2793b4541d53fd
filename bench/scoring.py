"""Score one cell (a trained method's or anyone's translations of a suite's test split): every metric the
suite declares, and every installed plug-in metric the suite's files allow.

The scorer dispatches through the metric registry (``bench.metrics.METRICS``): each metric names its
compute function, metrics sharing one function (FID and KID share Inception features) are computed in
one call. The built-in compute functions below orchestrate what the pure metric code needs: decoded
images, feature extractors, the suite's downstream segmenter and detector. Models (Inception, LPIPS)
and the reference features are built once per run and shared by all cells. A metric whose weights are
missing becomes a skipped record whose note says why and how to fix it; it is never replaced by a
number from other weights.
"""

from __future__ import annotations

import math
import os
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from bench.data.io import read_rgb, to_tensor
from bench.metrics import METRICS
from bench.registry import load_target
from bench.metrics.bootstrap import Draws, draws_key, mean_replicates, percentile_ci, ratio_replicates
from bench.metrics.localisation import sift_matches
from bench.metrics.paired import psnr, ssim
from bench.results import CellScores, MetricRecord
from bench.suites.base import SuiteFiles
from bench.weights import WeightsMissing


class Scorer:
    def __init__(self, suite_name: str, files: SuiteFiles, metrics: Sequence[str], device: str = "cpu",
                 batch_size: int = 16, preset: str = "quick", segmenter: str | None = None,
                 segmenter_size: tuple[int, int] | None = None, detector: str | None = None) -> None:
        self.suite_name = suite_name
        self.files = files
        self.segmenter_spec = segmenter  # None: the suite's own day-trained segmenter
        self.segmenter_size = segmenter_size
        self.detector_spec = detector  # None: the suite's own day-trained detector
        trainable = files.train_b_labels is not None
        aligned = any(METRICS[m].needs == "twins" for m in metrics if m in METRICS)  # the suite has pixel twins
        have = {"translations": True, "reference-set": True, "twins": files.twins is not None and aligned,
                "matched-frames": files.twins is not None,
                "labels": files.labels is not None and (trainable or segmenter is not None),
                "boxes": files.boxes is not None and (files.train_b_boxes is not None or detector is not None)}
        # The suite's own metrics, then installed plug-in metrics wherever the files give what they need.
        plugins = [m for m in METRICS if METRICS.source(m).startswith("entry point") and m not in metrics]
        self.metrics = [m for m in (*metrics, *plugins) if have[METRICS[m].needs]]
        if not trainable:  # fd-synthseg lives in the synthetic segmenter's feature space
            self.metrics = [m for m in self.metrics if m != "fd-synthseg"]
        self.device = device
        self.batch_size = batch_size
        self.preset = preset
        self._inception = None
        self._dinov2 = None
        self._cleanfid = None
        self._lpips = None
        self._segmenter = None
        self._synthseg = None
        self._detector = None
        self._reference: torch.Tensor | None = None
        self._dino_reference: torch.Tensor | None = None
        self._clean_reference: torch.Tensor | None = None
        self._seg_reference: torch.Tensor | None = None
        self._twin_objects: list[set[int]] | None = None
        self.skipped: dict[str, WeightsMissing] = {}
        self.weights_used: dict[str, str] = {}  # label -> sha256
        self.protocol = protocol_components(suite_name, preset, files)
        self.draws = Draws(draws_key(self.protocol), len(files.test_a), len(files.test_b))

    # Models are built lazily so that a run without FID never loads Inception.
    def _model(self, key: str, build):
        attr = f"_{key}"
        if getattr(self, attr) is None and key not in self.skipped:
            try:
                model = build(device=self.device)
            except WeightsMissing as exc:
                self.skipped[key] = exc
            else:
                setattr(self, attr, model)
                self.weights_used[model.weights.label] = model.weights.sha256
        return getattr(self, attr)

    def inception(self):
        from bench.metrics.fid_kid import InceptionExtractor

        return self._model("inception", InceptionExtractor)

    def dinov2(self):
        from bench.metrics.dinov2 import DinoV2Extractor

        return self._model("dinov2", DinoV2Extractor)

    def cleanfid(self):
        from bench.metrics.clean_fid import CleanFidExtractor

        return self._model("cleanfid", CleanFidExtractor)

    def lpips(self):
        from bench.metrics.lpips_metric import LpipsAlex

        return self._model("lpips", LpipsAlex)

    def synthseg(self):
        """The suite's own segmenter, trained on its labelled day images (fd-synthseg's feature space)."""
        if self._synthseg is None:
            from bench.downstream.synthetic_segmenter import trained_segmenter

            assert self.files.train_b_labels is not None
            self._synthseg = trained_segmenter(self.files.train_b, self.files.train_b_labels, self.preset, self.device,
                                               recipe=self.files.train_b_recipe)
        return self._synthseg

    def segmenter(self):
        """The segmenter that mIoU is measured with: the one named by spec, else the suite's own."""
        if self._segmenter is None:
            if self.segmenter_spec is None:
                self._segmenter = self.synthseg()
            else:
                from bench.downstream.segmenters import build_segmenter

                self._segmenter = build_segmenter(self.segmenter_spec, self.device, self.segmenter_size)
        return self._segmenter

    def detector(self):
        """The detector mAP is measured with: the one named by spec, else the suite's own day-trained one
        (None at a preset where it is not trained)."""
        if self._detector is None:
            if self.detector_spec is not None:
                from bench.downstream.detectors import build_detector
                from bench.downstream.synthetic_detector import read_boxes

                assert self.files.boxes is not None
                categories = [c["id"] for c in read_boxes(self.files.boxes)[0]["categories"]]
                self._detector = build_detector(self.detector_spec, categories, self.device)
            else:
                from bench.downstream.synthetic_detector import DETECTOR_PRESETS, trained_detector

                assert self.files.train_b_boxes is not None
                cfg = DETECTOR_PRESETS[self.preset]
                if cfg is None:
                    return None
                self._detector = trained_detector(self.files.train_b, self.files.train_b_boxes, cfg, self.device,
                                                  recipe=self.files.train_b_recipe)
        return self._detector

    def twin_objects(self, gt: dict, image_ids: list[int]) -> list[set[int]]:
        """Per test image, the objects the detector finds on its day twin (what a translation can remove), once."""
        if self._twin_objects is None:
            from bench.metrics.detection import found_objects

            assert self.files.twins is not None
            twins, dets = list(self.files.twins), []
            for start in range(0, len(twins), self.batch_size):
                dets += self.detector().detect(twins[start:start + self.batch_size],
                                               image_ids[start:start + self.batch_size])
            self._twin_objects = found_objects(gt, dets, image_ids)[0]
        return self._twin_objects

    def unavailable(self, method: str, seed: int, note: str) -> list[MetricRecord]:
        """The records of a cell that could not run: every metric of the suite, skipped, with the reason."""
        n = len(self.files.test_a)
        return [MetricRecord(self.suite_name, method, seed, m, math.nan, math.nan, math.nan, n, "", note)
                for m in self.metrics]

    @property
    def has_downstream(self) -> bool:
        return any(METRICS[m].needs in ("labels", "boxes") for m in self.metrics)

    def score(self, method: str, seed: int, translated: Sequence[Path], only_downstream: bool = False
              ) -> list[MetricRecord]:
        """Every metric of the suite for ``translated`` (aligned with the test split), or only the downstream ones."""
        return self.score_cell(method, seed, translated, only_downstream).records

    def score_cell(self, method: str, seed: int, translated: Sequence[Path], only_downstream: bool = False
                   ) -> CellScores:
        """The records of :meth:`score` with each metric's replicates on the protocol's draws and the per-image
        values, as ``bench.results.write_cell`` keeps them beside the cell's metrics.json."""
        record = CellRecorder(self.suite_name, method, seed, len(translated))
        for compute, names in self.dispatch(only_downstream).items():
            load_target(compute)(self, translated, names, record)
        draws = {"key": self.draws.key, "n": self.draws.n, "n_reference": self.draws.n_reference,
                 "resamples": self.draws.resamples, "protocol": self.protocol}
        return CellScores(record.records, draws, record.replicates, [Path(p).stem for p in self.files.test_a],
                          record.per_image)

    def dispatch(self, only_downstream: bool = False) -> dict[str, list[str]]:
        """compute function -> the metrics it is asked for; downstream tasks first (they warm the model caches)."""
        groups: dict[str, list[str]] = {}
        downstream = [m for m in self.metrics if METRICS[m].needs in ("labels", "boxes")]
        others = [] if only_downstream else [m for m in self.metrics if m not in downstream]
        for m in (*downstream, *others):
            if only_downstream and m == "fd-synthseg":  # a distribution distance, not a downstream score
                continue
            groups.setdefault(METRICS[m].compute, []).append(m)
        return groups


def protocol_components(suite_name: str, preset: str, files: SuiteFiles) -> dict:
    """The draws' components of a suite's prepared files (``bootstrap.draws_components``: names by stem)."""
    from bench.metrics.bootstrap import draws_components

    return draws_components(suite_name, preset, [files.height, files.width], [Path(p).stem for p in files.test_a],
                            [Path(p).stem for p in files.test_b])


class CellRecorder:
    """The ``record`` a compute function is handed: ``record(metric, value, ci_low, ci_high, extractor=..., note=...,
    replicates=..., per_image=...)`` stores one number, its B replicates on the protocol's draws and its per-image
    values; ``record.columns(**values)`` stores per-image values that are no metric of their own (the statistics
    mIoU and mAP are accumulated from)."""

    def __init__(self, suite: str, method: str, seed: int, n: int) -> None:
        self.suite, self.method, self.seed, self.n = suite, method, seed, n
        self.records: list[MetricRecord] = []
        self.replicates: dict[str, np.ndarray] = {}
        self.per_image: dict[str, np.ndarray] = {}

    def __call__(self, metric: str, value: float, ci_low: float = math.nan, ci_high: float = math.nan,
                 extractor: str = "", note: str = "", replicates: np.ndarray | None = None,
                 per_image: np.ndarray | None = None) -> None:
        self.records.append(MetricRecord(self.suite, self.method, self.seed, metric, value, ci_low, ci_high, self.n,
                                         extractor, note))
        if replicates is not None:
            self.replicates[metric] = np.asarray(replicates, dtype=np.float64)
        if per_image is not None:
            self.columns(**{metric: per_image})

    def columns(self, **values: np.ndarray) -> None:
        for name, v in values.items():
            v = np.asarray(v)
            if len(v) != self.n:
                raise ValueError(f"per-image column {name!r} has {len(v)} values for {self.n} images")
            self.per_image[name] = v


def _with_ci(replicates: np.ndarray, scale: float = 1.0) -> dict:
    """The keyword arguments of ``record`` for a number with replicates: its CI and the replicates, scaled."""
    reps = scale * np.asarray(replicates, dtype=np.float64)
    lo, hi = percentile_ci(reps)
    return {"ci_low": lo, "ci_high": hi, "replicates": reps}


def segmentation_metrics(scorer: Scorer, translated: Sequence[Path], names: list[str], rec) -> None:
    """mIoU and per-class IoU with the suite's segmenter; fd-synthseg from the same backbone pass."""
    import cv2

    from bench.data.io import LabelError, read_label, same_aspect
    from bench.metrics.fid_kid import fid_from_features, fid_kid_replicates
    from bench.metrics.segmentation import (
        CITYSCAPES_CLASSES,
        class_stats,
        confusion,
        iou_per_class,
        iou_replicates,
        mean_iou,
        nanmean_rows,
    )

    seg = scorer.segmenter()
    want_fd = "fd-synthseg" in names
    synth = scorer.synthseg() if want_fd else None
    labels = scorer.files.labels
    assert labels is not None
    per_image, feats, resized = [], [], []
    for start in range(0, len(translated), scorer.batch_size):
        chunk = list(translated[start:start + scorer.batch_size])
        if synth is seg:  # one decode and one backbone pass give both
            preds, chunk_feats = seg.analyse(chunk)
        else:
            preds = seg.predict(chunk)
            chunk_feats = synth.features(chunk) if synth is not None else None
        for pred, lab, image in zip(preds, labels[start:start + scorer.batch_size], chunk):
            gt = read_label(lab)
            if pred.shape != gt.shape:  # e.g. 256x512 translations of 720x1280 labelled frames: same scene, resized
                (h, w), (gh, gw) = pred.shape, gt.shape
                if not same_aspect(pred.shape, gt.shape):  # another aspect ratio: not the label of this image
                    raise LabelError(f"{lab}: the label map is {gw}x{gh} but {Path(image).name} is {w}x{h}, another "
                                     "aspect ratio, so it cannot be that image's label; check the pairing "
                                     "(testA_labels/NAME.png labels testA/NAME.*) or re-export the labels at the "
                                     "images' size")
                pred = cv2.resize(pred, (gw, gh), interpolation=cv2.INTER_NEAREST)
                resized.append(Path(lab).name)
            per_image.append(confusion(pred, gt))
        if chunk_feats is not None:
            feats.append(chunk_feats)
    cms = np.stack(per_image)
    cm = cms.sum(0)
    stats = class_stats(cms)  # n x classes x (tp, gt, pred): what the pooled IoU sums, kept per image
    rec.columns(**{f"seg/{what}/{name}": stats[:, k, j] for k, name in enumerate(CITYSCAPES_CLASSES)
                   for j, what in enumerate(("tp", "gt", "pred"))})
    per_class = iou_replicates(stats, scorer.draws)
    note = (f"{len(resized)} of {len(per_image)} label maps at another size than the translation (same aspect "
            f"ratio): predictions resized to the label, nearest neighbour ({', '.join(resized[:3])}"
            f"{', ...' if len(resized) > 3 else ''})") if resized else ""
    rec("miou", 100 * mean_iou(cm), extractor=seg.id, note=note, **_with_ci(nanmean_rows(per_class), 100))
    # Per-class IoU of every class in the ground truth (a class only predicted still counts as 0 in the mean).
    for cls, iou in enumerate(iou_per_class(cm)):
        if cm[cls].sum() > 0:
            rec(f"iou/{CITYSCAPES_CLASSES[cls]}", 100 * float(iou), extractor=seg.id, **_with_ci(per_class[:, cls], 100))
    if feats:
        assert synth is not None
        if scorer._seg_reference is None:
            scorer._seg_reference = torch.cat([synth.features(list(scorer.files.test_b[i:i + scorer.batch_size]))
                                             for i in range(0, len(scorer.files.test_b), scorer.batch_size)])
        feats_t = torch.cat(feats)
        fids, _ = fid_kid_replicates(feats_t, scorer._seg_reference, scorer.draws, kid=False)
        rec("fd-synthseg", fid_from_features(feats_t, scorer._seg_reference), extractor=synth.id, **_with_ci(fids))


def detection_metrics(scorer: Scorer, translated: Sequence[Path], names: list[str], rec) -> None:
    """Detections on image i of ``translated`` are scored against the boxes of test image i."""
    from bench.downstream.synthetic_detector import read_boxes
    from bench.metrics.detection import evaluate, found_objects, objects_of

    det = scorer.detector()
    if det is None:
        from bench.downstream.synthetic_detector import NOT_TRAINED

        for m in names:
            rec(m, math.nan, note=NOT_TRAINED.format(preset=scorer.preset))
        return
    assert scorer.files.boxes is not None
    gt, _ = read_boxes(scorer.files.boxes)
    ids = {img["file_name"]: img["id"] for img in gt["images"]}
    image_ids = [ids[Path(p).name] for p in scorer.files.test_a]
    if len(image_ids) < len(gt["images"]):  # a subset of the test split is scored (bench score --allow-missing)
        keep = set(image_ids)
        gt = {**gt, "images": [i for i in gt["images"] if i["id"] in keep],
              "annotations": [a for a in gt["annotations"] if a["image_id"] in keep]}
    dets: list[dict] = []
    for start in range(0, len(translated), scorer.batch_size):
        dets += det.detect(translated[start:start + scorer.batch_size], image_ids[start:start + scorer.batch_size])
    s = evaluate(gt, dets, draws=scorer.draws, order=image_ids)
    boxes = Counter((a["image_id"], a["category_id"]) for a in gt["annotations"] if not a.get("iscrowd", 0))
    rec.columns(**{f"boxes/{c['name']}": np.array([boxes[(i, c["id"])] for i in image_ids]) for c in gt["categories"]})
    if "map" in names:
        rec("map", 100 * s.ap, extractor=det.id, **_with_ci(s.replicates["ap"], 100))
        for name, ap in s.per_class.items():
            rec(f"ap/{name}", 100 * ap, extractor=det.id, **_with_ci(s.replicates[f"ap/{name}"], 100))
    if "ap50" in names:
        rec("ap50", 100 * s.ap50, extractor=det.id, **_with_ci(s.replicates["ap50"], 100))
    rates = [m for m in ("hallucinated", "hallucination-share", "removed") if m in names]
    if rates:
        found, extra = found_objects(gt, dets, image_ids)
        n_found = np.array([len(f) for f in found], dtype=np.float64)
        rec.columns(found=n_found)
        if "hallucinated" in names:
            rec("hallucinated", 100 * extra.mean(), extractor=det.id, per_image=extra,
                **_with_ci(mean_replicates(extra, scorer.draws), 100))
        if "hallucination-share" in names:
            confident = n_found + extra
            if confident.sum() == 0:
                rec("hallucination-share", math.nan, extractor=det.id, note=NO_CONFIDENT_DETECTION)
            else:
                rec("hallucination-share", 100 * extra.sum() / confident.sum(), extractor=det.id,
                    **_with_ci(ratio_replicates(extra, confident, scorer.draws), 100))
        if "removed" in names:
            reference = scorer.twin_objects(gt, image_ids) if scorer.files.twins is not None else objects_of(gt, image_ids)
            lost = np.array([len(ref - got) for ref, got in zip(reference, found)], dtype=np.float64)
            rec("removed", 100 * lost.mean(), extractor=det.id, per_image=lost,
                **_with_ci(mean_replicates(lost, scorer.draws), 100))


NO_CONFIDENT_DETECTION = ("no confident detection (score >= 0.5) on any translation: the share of invented objects "
                          "is undefined, and nothing is ranked on it")


def distribution_metrics(scorer: Scorer, translated: Sequence[Path], names: list[str], rec) -> None:
    """FID and KID from one Inception pass (the reference set's features cached for the run)."""
    from bench.metrics.fid_kid import extract_features, fid_from_features, fid_kid_replicates, kid_from_features

    ext = scorer.inception()
    if ext is None:
        for m in ("fid", "kid"):
            if m in names:
                rec(m, math.nan, note=scorer.skipped["inception"].one_line)
        return
    if scorer._reference is None:
        scorer._reference = extract_features(scorer.files.test_b, ext, scorer.batch_size, desc="reference features")
    feats = extract_features(translated, ext, scorer.batch_size, desc="features")
    fids, kids = fid_kid_replicates(feats, scorer._reference, scorer.draws, kid="kid" in names)
    if "fid" in names:
        rec("fid", fid_from_features(feats, scorer._reference), extractor=ext.weights.label, **_with_ci(fids))
    if "kid" in names:
        mean, std = kid_from_features(feats, scorer._reference)
        rec("kid", mean, extractor=ext.weights.label, note=f"std over subsets {std:.6g}", **_with_ci(kids))


def dinov2_distance(scorer: Scorer, translated: Sequence[Path], names: list[str], rec) -> None:
    """fd-dinov2 (DINOv2 ViT-L/14 CLS features), when its optional weights are present."""
    from bench.metrics.fid_kid import extract_features, fid_from_features, fid_kid_replicates

    ext = scorer.dinov2()
    if ext is None:
        rec("fd-dinov2", math.nan, note=scorer.skipped["dinov2"].one_line)
        return
    if scorer._dino_reference is None:
        scorer._dino_reference = extract_features(scorer.files.test_b, ext, scorer.batch_size, desc="DINOv2 reference")
    feats = extract_features(translated, ext, scorer.batch_size, desc="DINOv2 features")
    fids, _ = fid_kid_replicates(feats, scorer._dino_reference, scorer.draws, kid=False)
    rec("fd-dinov2", fid_from_features(feats, scorer._dino_reference), extractor=ext.weights.label, **_with_ci(fids))


def clean_fid_metrics(scorer: Scorer, translated: Sequence[Path], names: list[str], rec) -> None:
    """fid-clean and kid-clean through the clean-fid package, when it and its weights are present."""
    from bench.metrics.clean_fid import PACKAGE_MISSING, clean_fid, clean_kid, package_available
    from bench.metrics.fid_kid import fid_kid_replicates

    ext = scorer.cleanfid() if package_available() else None
    if ext is None:
        why = scorer.skipped["cleanfid"].one_line if "cleanfid" in scorer.skipped else PACKAGE_MISSING
        for m in names:
            rec(m, math.nan, note=why)
        return
    if scorer._clean_reference is None:
        scorer._clean_reference = ext.features(scorer.files.test_b, scorer.batch_size)
    feats = ext.features(translated, scorer.batch_size)
    fids, kids = fid_kid_replicates(feats, scorer._clean_reference, scorer.draws, kid="kid-clean" in names)
    if "fid-clean" in names:
        rec("fid-clean", clean_fid(feats, scorer._clean_reference), extractor=ext.weights.label, **_with_ci(fids))
    if "kid-clean" in names:
        rec("kid-clean", clean_kid(feats, scorer._clean_reference), extractor=ext.weights.label, **_with_ci(kids))


def paired_metrics(scorer: Scorer, translated: Sequence[Path], names: list[str], rec) -> None:
    """Per-image metrics against each test image's twin (or matched frame), one decode for all of them."""
    twins = scorer.files.twins
    assert twins is not None
    want_lpips = "lpips" in names
    model = scorer.lpips() if want_lpips else None
    want_sift = "sift" in names
    vals: dict[str, list[float]] = {"psnr": [], "ssim": [], "lpips": [], "sift": []}

    def pair(i: int) -> tuple[np.ndarray, np.ndarray, dict[str, float]]:
        o, r = read_rgb(translated[i]), read_rgb(twins[i])
        out = {}
        if "psnr" in names:
            out["psnr"] = psnr(o, r)
        if "ssim" in names:
            out["ssim"] = ssim(o, r)
        if want_sift:
            out["sift"] = float(sift_matches(o, r))
        return o, r, out

    # Decoding, SSIM and SIFT release the GIL: one thread per core; a batch at a time bounds the memory.
    with ThreadPoolExecutor(len(os.sched_getaffinity(0))) as pool:
        for start in range(0, len(translated), scorer.batch_size):
            for o, r, out in pool.map(pair, range(start, min(start + scorer.batch_size, len(translated)))):
                for metric, v in out.items():
                    vals[metric].append(v)
                if model is not None:  # one at a time: test images may differ in size
                    vals["lpips"].append(float(model(to_tensor(o)[None], to_tensor(r)[None])[0]))
    for metric in ("lpips", "psnr", "ssim", "sift"):
        if metric not in names:
            continue
        if metric == "lpips" and model is None:
            rec("lpips", math.nan, note=scorer.skipped["lpips"].one_line)
            continue
        v = np.asarray(vals[metric], dtype=np.float64)
        # Identical images have infinite PSNR; cap at 100 dB so a mean stays defined (and say so).
        note = ""
        if metric == "psnr" and np.isinf(v).any():
            note = f"{int(np.isinf(v).sum())} identical image(s) counted as 100 dB"
            v = np.minimum(v, 100.0)
        extractor = model.weights.label if metric == "lpips" else ""
        rec(metric, float(v.mean()), extractor=extractor, note=note, per_image=v,
            **_with_ci(mean_replicates(v, scorer.draws)))

