"""Pretrained detectors for real suites, behind one seam (``bench run --detector SPEC``).

``torchvision:ARCH:CHECKPOINT``: a torchvision detection model (``fasterrcnn_resnet50_fpn_v2``,
``fasterrcnn_mobilenet_v3_large_fpn``, ``retinanet_resnet50_fpn_v2``, ``fcos_resnet50_fpn``, ...) with
COCO's 91 label ids, from a state dict (torchvision's own COCO weights file, or one fine-tuned on
the normal domain). Its labels are COCO category ids; a suite's ground truth names its categories
with COCO ids too (person 1, bicycle 2, car 3, motorcycle 4, bus 6, train 7, truck 8, ...), so the
mapping is the identity and detections of categories the suite does not label are dropped.

``default``: torchvision's Faster R-CNN ResNet-50 FPN v2 with its pinned COCO file (``bench weights list``).
A detector's id names its weights file and the first 12 hex digits of its sha256.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import torch

from bench.checkpoints import CheckpointError, load_tensor_dict
from bench.data.io import read_rgb
from bench.downstream.specs import ModelSpec, build_from_spec, pinned_weights
from bench.errors import BenchError
from bench.registry import Registry
from bench.weights import TORCHVISION_FRCNN_V2_COCO, file_id

COCO_LABELS = 91  # torchvision's COCO heads: ids 0 (background) .. 90, with COCO's gaps


class DetectorError(BenchError, ValueError):
    """A detector spec, file or architecture problem, said in words the user can act on."""


class TorchvisionDetector:
    def __init__(self, arch: str, checkpoint: Path, categories: Sequence[int], device: str = "cpu",
                 score_threshold: float = 0.05) -> None:
        import torchvision.models.detection as tvdet

        from bench.downstream.torchvision_builders import find_builder

        try:
            builder = find_builder(tvdet, arch, "detection")
        except LookupError as exc:
            raise DetectorError(str(exc.args[0])) from None
        try:
            state = load_tensor_dict(checkpoint)
        except CheckpointError as exc:
            raise DetectorError(str(exc)) from None
        model = builder(weights=None, weights_backbone=None, num_classes=COCO_LABELS, box_score_thresh=score_threshold) \
            if "rcnn" in arch else builder(weights=None, weights_backbone=None, num_classes=COCO_LABELS,
                                           score_thresh=score_threshold)
        try:
            model.load_state_dict(state)
        except RuntimeError as exc:
            raise DetectorError(f"{checkpoint} does not fit torchvision {arch} with COCO's {COCO_LABELS} labels: "
                                f"{str(exc).splitlines()[0]} ...") from None
        self.model = model.to(device).eval()
        self.device = device
        self.categories = set(categories)
        self.id = f"torchvision-{arch}:{file_id(checkpoint)}"

    @torch.no_grad()
    def detect(self, paths: Sequence[Path], image_ids: Sequence[int]) -> list[dict]:
        """COCO result records (xywh) for the suite's categories only."""
        images = [torch.from_numpy(read_rgb(p)).permute(2, 0, 1).float().div(255).to(self.device) for p in paths]
        out = []
        for pred, img_id in zip(self.model(images), image_ids):
            for (x0, y0, x1, y1), label, score in zip(pred["boxes"].tolist(), pred["labels"].tolist(),
                                                     pred["scores"].tolist()):
                if label in self.categories:
                    out.append({"image_id": int(img_id), "category_id": int(label),
                                "bbox": [x0, y0, x1 - x0, y1 - y0], "score": float(score)})
        return out


DEFAULT_ARCH = "fasterrcnn_resnet50_fpn_v2"


def default_detector(categories: Sequence[int], device: str = "cpu") -> TorchvisionDetector:
    """torchvision's COCO Faster R-CNN ResNet-50 FPN v2, from its pinned weights file."""
    path = pinned_weights(TORCHVISION_FRCNN_V2_COCO, "--detector", "torchvision:ARCH:CKPT", DetectorError)
    return TorchvisionDetector(DEFAULT_ARCH, path, categories, device)


DETECTORS: Registry[ModelSpec] = Registry("detector")
DETECTORS.add("torchvision", ModelSpec("torchvision:ARCH:CHECKPOINT", TorchvisionDetector, path_args=(1,)), __name__)
DETECTORS.add("default", ModelSpec("default", default_detector), __name__)
DETECTOR_SPEC_HELP = " or ".join(DETECTORS[k].usage for k in DETECTORS)


def build_detector(spec: str, categories: Sequence[int], device: str = "cpu"):
    return build_from_spec(DETECTORS, spec, DetectorError, categories=categories, device=device)
