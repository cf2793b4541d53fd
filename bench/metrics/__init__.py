"""Metric metadata, declared once with each metric: direction, unit, label, what it needs, how it is computed.

The ``METRICS`` registry is what the scorer dispatches through and what the tables, figures and
``bench list`` read. A metric's number comes from its ``compute`` function (``"module:function"``,
imported when first used), called as ``compute(scorer, translated, names, record)``: ``scorer`` gives
the suite's files (``scorer.files``), the device and the batch size, ``translated`` the translation of
each test image (aligned with ``scorer.files.test_a``), ``names`` the metrics of this compute function
the run asks for (metrics that share features share one function, so features are extracted once), and
``record(metric, value, ci_low, ci_high, extractor=..., note=...)`` stores one number. A metric that also passes
``replicates=`` (its value on each of ``scorer.draws``' resampled test sets: ``bench.metrics.bootstrap``'s
``mean_replicates(values, scorer.draws)`` for a per-image mean) takes part in the paired comparisons and rank
groups; ``per_image=`` keeps its per-image values in the cell's ``per_image.csv.gz``.

Built-in metrics register here; their computations sit in ``bench.scoring`` (the orchestration layer,
since downstream metrics need the suite's segmenter and detector) and in this package's modules.
Installed packages add metrics through the entry-point group ``augan_bench.metrics`` (a ``MetricInfo``,
or a callable returning one); such a metric is scored on every suite whose files give what it needs.
This package is a leaf: it imports nothing of ``bench`` but the registry and the errors.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bench.registry import Registry

# What a metric needs besides the translations:
NEEDS = {
    "translations": "the translations alone",
    "reference-set": "the target domain's test images",
    "twins": "a pixel-aligned day twin of each test image",
    "matched-frames": "a matched (not necessarily aligned) day frame of each test image",
    "labels": "test label maps and a segmenter (the suite's own, trained on labelled day images, or --segmenter)",
    "boxes": "test boxes and a detector (the suite's own, trained on boxed day images, or --detector)",
}
ENTRY_POINT_GROUP = "augan_bench.metrics"


@dataclass(frozen=True)
class MetricInfo:
    name: str
    description: str
    higher_is_better: bool
    unit: str = ""
    needs: str = "reference-set"  # a key of NEEDS
    per_image: bool = False  # a mean over per-image values (bootstrap CI over images)
    compute: str = ""  # "module:function", see the module docstring
    label: str = ""  # how tables and figures name it (default: the name)
    ranked: bool = True  # False: shown for information, never bolded or ranked (a number a blank output would win)

    def __post_init__(self) -> None:
        if self.needs not in NEEDS:
            raise ValueError(f"metric {self.name!r}: needs={self.needs!r}; choose one of {', '.join(NEEDS)}")
        if ":" not in self.compute:
            raise ValueError(f"metric {self.name!r}: compute={self.compute!r} must be 'module:function'")

    @property
    def arrow(self) -> str:
        return "↑" if self.higher_is_better else "↓"


def _check(name: str, value: Any) -> None:
    if not isinstance(value, MetricInfo):
        raise TypeError(f"metric {name!r} is a {type(value).__name__}, not a bench.metrics.MetricInfo")
    if value.name != name:
        raise ValueError(f"metric registered as {name!r} calls itself {value.name!r}")


def _from_entry_point(name: str, obj: Any, source: str) -> MetricInfo:
    return obj if isinstance(obj, MetricInfo) else obj()


METRICS: Registry[MetricInfo] = Registry("metric", group=ENTRY_POINT_GROUP, from_entry_point=_from_entry_point,
                                         check=_check)


def register_metric(info: MetricInfo, source: str | None = None) -> MetricInfo:
    METRICS.add(info.name, info, source or info.compute.split(":")[0])
    return info


_DISTRIBUTION = "bench.scoring:distribution_metrics"
_PAIRED = "bench.scoring:paired_metrics"
_SEGMENTATION = "bench.scoring:segmentation_metrics"
_DETECTION = "bench.scoring:detection_metrics"
_DINOV2 = "bench.scoring:dinov2_distance"
_CLEAN_FID = "bench.scoring:clean_fid_metrics"

for _m in (
    MetricInfo(
        "fid",
        "Fréchet Inception Distance (torch-fidelity, Inception-v3 2015-12-05 pool3) of the translations "
        "vs. the target domain's test images",
        higher_is_better=False,
        compute=_DISTRIBUTION,
        label="FID",
    ),
    MetricInfo(
        "kid",
        "Kernel Inception Distance (torch-fidelity: cubic polynomial kernel, 100 subsets of min(1000, N)), "
        "same features as fid",
        higher_is_better=False,
        compute=_DISTRIBUTION,
        label="KID",
    ),
    MetricInfo(
        "fd-dinov2",
        "Fréchet distance of DINOv2 ViT-L/14 CLS features at 224x224, as torch-fidelity's dinov2-vit-l-14 "
        "extractor computes it, translations vs. the target domain's test images; computed when its weights "
        "are present",
        higher_is_better=False,
        compute=_DINOV2,
        label="FD-DINOv2",
    ),
    MetricInfo(
        "fid-clean",
        "FID as the clean-fid package computes it (anti-aliased PIL bicubic resize to 299, NVIDIA's TorchScript "
        "Inception-v3), translations vs. the target domain's test images; computed when its weights are present",
        higher_is_better=False,
        compute=_CLEAN_FID,
        label="FID (clean)",
    ),
    MetricInfo(
        "kid-clean",
        "KID as the clean-fid package computes it (100 subsets of min(1000, N), numpy seed 0), same features as "
        "fid-clean",
        higher_is_better=False,
        compute=_CLEAN_FID,
        label="KID (clean)",
    ),
    MetricInfo(
        "lpips",
        "LPIPS v0.1 (AlexNet) between each translation and its pixel-aligned day twin",
        higher_is_better=False,
        needs="twins",
        per_image=True,
        compute=_PAIRED,
        label="LPIPS",
    ),
    MetricInfo(
        "psnr",
        "PSNR (8-bit, peak 255) between each translation and its pixel-aligned day twin",
        higher_is_better=True,
        unit="dB",
        needs="twins",
        per_image=True,
        compute=_PAIRED,
        label="PSNR",
    ),
    MetricInfo(
        "ssim",
        "SSIM (Wang et al. 2004: Gaussian window sigma 1.5, K1 0.01, K2 0.03, 8-bit) to the day twin",
        higher_is_better=True,
        needs="twins",
        per_image=True,
        compute=_PAIRED,
        label="SSIM",
    ),
    MetricInfo(
        "sift",
        "SIFT keypoint matches per frame between each translation and its matched day frame (OpenCV SIFT "
        "defaults, Lowe ratio 0.8, no geometric check): the Alderley localisation protocol",
        higher_is_better=True,
        needs="matched-frames",
        per_image=True,
        compute=_PAIRED,
        label="SIFT matches",
    ),
    MetricInfo(
        "miou",
        "mIoU (%) of the day-trained segmenter on the translations (Cityscapes train ids, pooled confusion "
        "matrix); per-class IoU in metrics.csv as iou/<class>",
        higher_is_better=True,
        unit="%",
        needs="labels",
        compute=_SEGMENTATION,
        label="mIoU",
    ),
    MetricInfo(
        "map",
        "COCO box mAP@[.50:.95] (%) of the day-trained detector on the translations (pycocotools' definition, "
        "area all, 100 detections per image); per-class AP in metrics.csv as ap/<class>",
        higher_is_better=True,
        unit="%",
        needs="boxes",
        compute=_DETECTION,
        label="mAP",
    ),
    MetricInfo(
        "ap50",
        "COCO box AP at IoU 0.5 (%) of the same detector",
        higher_is_better=True,
        unit="%",
        needs="boxes",
        compute=_DETECTION,
        label="AP50",
    ),
    MetricInfo(
        "hallucinated",
        "objects the day-trained detector reports on the translation (score >= 0.5) that match no ground-truth object "
        "(IoU >= 0.5, same category), per 100 images; information only (a blank translation reports none), ranked "
        "as hallucination-share",
        higher_is_better=False,
        unit="per 100 images",
        needs="boxes",
        per_image=True,
        compute=_DETECTION,
        ranked=False,
    ),
    MetricInfo(
        "hallucination-share",
        "the share (%) of the detector's confident detections (score >= 0.5) on the translations that match no "
        "ground-truth object (IoU >= 0.5, same category): invented objects per object reported; undefined without "
        "detections, and ranked only among translations that remove fewer objects than the raw input",
        higher_is_better=False,
        unit="%",
        needs="boxes",
        compute=_DETECTION,
        label="hallucination share",
    ),
    MetricInfo(
        "removed",
        "ground-truth objects the detector finds on the day twin (score >= 0.5, IoU >= 0.5) but misses on the "
        "translation, per 100 images; on suites without twins, objects it misses on the translation",
        higher_is_better=False,
        unit="per 100 images",
        needs="boxes",
        per_image=True,
        compute=_DETECTION,
    ),
    MetricInfo(
        "fd-synthseg",
        "Fréchet distance of the day-trained synthetic segmenter's pooled backbone features (960-d), "
        "translations vs. the target domain's test images; needs no downloaded weights (not FID)",
        higher_is_better=False,
        needs="labels",
        compute=_SEGMENTATION,
        label="FD-synthseg",
    ),
):
    register_metric(_m, source="bench.metrics")


def metric_label(name: str, unit: bool = False) -> str:
    """How tables and figures name a metric (``mIoU``); with ``unit``, its unit in parentheses."""
    info = METRICS.get(name)
    label = (info.label or name) if info is not None else name
    u = info.unit if info is not None else ""
    return f"{label} ({u})" if unit and u else label


def metric_info(name: str) -> MetricInfo:
    return METRICS.get_entry(name)
