"""Metric metadata, declared once: direction, unit and what a metric needs drive the tables.

Each metric's computation lives in its own module (``fid_kid``, ``lpips_metric``, ``paired``);
this registry is what the runner, the tables and ``bench list`` read.
"""

from __future__ import annotations

from dataclasses import dataclass

from bench.translator import unknown_name_message


@dataclass(frozen=True)
class MetricInfo:
    name: str
    description: str
    higher_is_better: bool
    unit: str = ""
    # 'reference-set': target-domain test images; 'twins': pixel-aligned day twins;
    # 'labels': test label maps and labelled day training images (downstream segmenter);
    # 'boxes': test boxes and boxed day training images (downstream detector)
    needs: str = "reference-set"
    per_image: bool = False  # a mean over per-image values (bootstrap CI over images)

    @property
    def arrow(self) -> str:
        return "↑" if self.higher_is_better else "↓"


METRICS: dict[str, MetricInfo] = {
    m.name: m
    for m in (
        MetricInfo(
            "fid",
            "Fréchet Inception Distance (torch-fidelity, Inception-v3 2015-12-05 pool3) of the translations "
            "vs. the target domain's test images",
            higher_is_better=False,
        ),
        MetricInfo(
            "kid",
            "Kernel Inception Distance (torch-fidelity: cubic polynomial kernel, 100 subsets of min(1000, N)), "
            "same features as fid",
            higher_is_better=False,
        ),
        MetricInfo(
            "fd-dinov2",
            "Fréchet distance of DINOv2 ViT-L/14 CLS features at 224x224, as torch-fidelity's dinov2-vit-l-14 "
            "extractor computes it, translations vs. the target domain's test images; computed when its weights "
            "are present",
            higher_is_better=False,
        ),
        MetricInfo(
            "lpips",
            "LPIPS v0.1 (AlexNet) between each translation and its pixel-aligned day twin",
            higher_is_better=False,
            needs="twins",
            per_image=True,
        ),
        MetricInfo(
            "psnr",
            "PSNR (8-bit, peak 255) between each translation and its pixel-aligned day twin",
            higher_is_better=True,
            unit="dB",
            needs="twins",
            per_image=True,
        ),
        MetricInfo(
            "ssim",
            "SSIM (Wang et al. 2004: Gaussian window sigma 1.5, K1 0.01, K2 0.03, 8-bit) to the day twin",
            higher_is_better=True,
            needs="twins",
            per_image=True,
        ),
        MetricInfo(
            "sift",
            "SIFT keypoint matches per frame between each translation and its matched day frame (OpenCV SIFT "
            "defaults, Lowe ratio 0.8, no geometric check): the Alderley localisation protocol",
            higher_is_better=True,
            needs="twins",
            per_image=True,
        ),
        MetricInfo(
            "miou",
            "mIoU (%) of the day-trained segmenter on the translations (Cityscapes train ids, pooled confusion "
            "matrix); per-class IoU in metrics.csv as iou/<class>",
            higher_is_better=True,
            unit="%",
            needs="labels",
        ),
        MetricInfo(
            "map",
            "COCO box mAP@[.50:.95] (%) of the day-trained detector on the translations (pycocotools' definition, "
            "area all, 100 detections per image); per-class AP in metrics.csv as ap/<class>",
            higher_is_better=True,
            unit="%",
            needs="boxes",
        ),
        MetricInfo(
            "ap50",
            "COCO box AP at IoU 0.5 (%) of the same detector",
            higher_is_better=True,
            unit="%",
            needs="boxes",
        ),
        MetricInfo(
            "fd-synthseg",
            "Fréchet distance of the day-trained synthetic segmenter's pooled backbone features (960-d), "
            "translations vs. the target domain's test images; needs no downloaded weights (not FID)",
            higher_is_better=False,
            needs="labels",
        ),
    )
}


_LABELS = {"fid": "FID", "kid": "KID", "fd-dinov2": "FD-DINOv2", "lpips": "LPIPS", "psnr": "PSNR", "ssim": "SSIM",
           "sift": "SIFT matches", "miou": "mIoU", "map": "mAP", "ap50": "AP50", "fd-synthseg": "FD-synthseg"}


def metric_label(name: str, unit: bool = False) -> str:
    """How tables and figures name a metric (``mIoU``); with ``unit``, its unit in parentheses."""
    label = _LABELS.get(name, name)
    u = METRICS[name].unit if name in METRICS else ""
    return f"{label} ({u})" if unit and u else label


def metric_info(name: str) -> MetricInfo:
    if name not in METRICS:
        raise KeyError(unknown_name_message("metric", name, METRICS))
    return METRICS[name]
