"""The day-domain detector of the synthetic suites: shipped for the default preset, else trained and cached.

A torchvision FCOS with a ResNet-18 FPN backbone (``weights=None``: nothing is downloaded) is
trained on the suite's day training images and their car/person boxes, then detects on (a) the
day twins (upper bound), (b) the raw adverse images, (c) every translation; COCO mAP scores it.
Why these choices: FCOS is anchor-free and single-stage, four times faster to train on the CPU
than a Faster R-CNN of the same backbone, and its P3 level (stride 8) still sees the 8-pixel
pedestrians of a 128x256 frame. Training from scratch needs real BatchNorm (torchvision's
default FrozenBatchNorm only makes sense with pretrained statistics), recalibrated after
training as for the segmenter.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from tqdm import tqdm

from bench.data.io import read_rgb
from bench.downstream.training import evaluator_weights, recalibrate_batchnorm, save_evaluator, training_key


@dataclass(frozen=True)
class DetectorConfig:
    steps: int = 300
    batch_size: int = 4
    lr: float = 1e-3
    score_threshold: float = 0.05  # COCO practice: keep low-scoring boxes, mAP integrates over scores
    crop: tuple[int, int] | None = (64, 128)  # random native-scale crops (H, W) for training; None: whole images
    channels: int = 256  # FPN and head width
    seed: int = 0
    version: int = 1  # bump when training changes, so cached models are retrained


# None: not trained at that preset. At smoke (24 day images, seconds of training) the detector finds
# nothing, even on the day twins (mAP 0.00), so its metrics are skipped rather than ranked.
DETECTOR_PRESETS: dict[str, DetectorConfig | None] = {
    "smoke": None,
    # 64-wide FPN and head: 1.8x faster to train than torchvision's 256 and as good here (day-twin mAP
    # 6.2 against 5.6; benchmarks/bench_default_run.py).
    "quick": DetectorConfig(steps=300, batch_size=8, lr=2e-3, channels=64),
    "paper": DetectorConfig(steps=3000, batch_size=8, crop=None),
}
NOT_TRAINED = ("not measured at --preset {preset}: the day-trained detector cannot learn to find objects in "
               "that budget (its mAP on the day twins would be 0); use --preset quick, or --detector")


def build_detector(n_classes: int, height: int, width: int, score_threshold: float = 0.05,
                   channels: int = 256) -> torch.nn.Module:
    from torchvision.models import resnet18
    from torchvision.models.detection import FCOS
    from torchvision.models.detection.anchor_utils import AnchorGenerator
    from torchvision.models.detection.backbone_utils import BackboneWithFPN
    from torchvision.ops.feature_pyramid_network import LastLevelP6P7

    # torchvision's resnet_fpn_backbone with the FPN width as a parameter (it fixes 256): C3-C5 into P3-P7.
    backbone = BackboneWithFPN(resnet18(weights=None, norm_layer=torch.nn.BatchNorm2d),
                               return_layers={"layer2": "0", "layer3": "1", "layer4": "2"},
                               in_channels_list=[128, 256, 512], out_channels=channels,
                               extra_blocks=LastLevelP6P7(channels, channels))
    # One square anchor per level (FCOS's "anchor" is a point's size prior), halved from torchvision's
    # 32..512 for small frames.
    anchors = AnchorGenerator(((16,), (32,), (64,), (128,), (256,)), ((1.0,),) * 5)
    # min/max size equal to the frame: torchvision would otherwise upsample to 800 pixels.
    return FCOS(backbone, num_classes=n_classes + 1, anchor_generator=anchors, min_size=height, max_size=width,
                score_thresh=score_threshold, detections_per_img=100)


def _images(paths: Sequence[Path], device: str) -> list[torch.Tensor]:
    return [torch.from_numpy(read_rgb(p)).permute(2, 0, 1).float().div(255.0).to(device) for p in paths]


def read_boxes(path: Path) -> tuple[dict, dict[str, list[dict]]]:
    """A COCO ground-truth file and its annotations grouped by image file name."""
    gt = json.loads(Path(path).read_text())
    by_id = {img["id"]: img["file_name"] for img in gt["images"]}
    grouped: dict[str, list[dict]] = {name: [] for name in by_id.values()}
    for a in gt["annotations"]:
        grouped[by_id[a["image_id"]]].append(a)
    return gt, grouped


class SyntheticDetector:
    def __init__(self, model: torch.nn.Module, categories: list[int], device: str, weights_id: str) -> None:
        self.model = model.to(device).eval()
        self.categories = categories  # model label k (1-based) -> COCO category id categories[k - 1]
        self.device = device
        self.id = f"synthdet-fcos-r18:{weights_id}"

    @torch.no_grad()
    def detect(self, paths: Sequence[Path], image_ids: Sequence[int]) -> list[dict]:
        """COCO result records (xywh boxes) for ``paths``, tagged with ``image_ids``."""
        out = []
        for pred, img_id in zip(self.model(_images(paths, self.device)), image_ids):
            for (x0, y0, x1, y1), label, score in zip(pred["boxes"].tolist(), pred["labels"].tolist(),
                                                     pred["scores"].tolist()):
                out.append({"image_id": int(img_id), "category_id": self.categories[label - 1],
                            "bbox": [x0, y0, x1 - x0, y1 - y0], "score": float(score)})
        return out


def trained_detector(images: Sequence[Path], boxes_json: Path, cfg: DetectorConfig, device: str = "cpu",
                     recipe: str = "") -> SyntheticDetector:
    """The day-domain detector for ``images`` and their COCO boxes (made by ``recipe``, where they are a pure function
    of one): shipped with the project, cached, or trained now."""
    from safetensors.torch import load_file

    key = training_key(cfg, images, [boxes_json], recipe=recipe)
    weights = evaluator_weights("detectors", key)
    if weights is None:
        weights = save_evaluator("detectors", key, train_detector(images, boxes_json, cfg, device))
    categories = sorted(c["id"] for c in read_boxes(boxes_json)[0]["categories"])
    h, w = read_rgb(images[0]).shape[:2]
    model = build_detector(len(categories), h, w, cfg.score_threshold, cfg.channels)
    model.load_state_dict(load_file(str(weights.path)))
    return SyntheticDetector(model, categories, device, weights.id)


def train_detector(images: Sequence[Path], boxes_json: Path, cfg: DetectorConfig, device: str = "cpu"
                   ) -> torch.nn.Module:
    """Train the detector with ``cfg`` on the day ``images`` and their COCO boxes (deterministic on one CPU)."""
    gt, grouped = read_boxes(boxes_json)
    categories = sorted(c["id"] for c in gt["categories"])
    to_label = {c: k + 1 for k, c in enumerate(categories)}
    h, w = read_rgb(images[0]).shape[:2]
    torch.manual_seed(cfg.seed)
    model = build_detector(len(categories), h, w, cfg.score_threshold, cfg.channels)

    def sample(idx: list[int], g: torch.Generator) -> tuple[list[torch.Tensor], list[dict]]:
        """Images and targets of a training batch: a random crop (same window for the batch) and flip."""
        ch, cw = cfg.crop if cfg.crop is not None else (h, w)
        ch, cw = min(ch, h), min(cw, w)
        top = int(torch.randint(h - ch + 1, (), generator=g))
        left = int(torch.randint(w - cw + 1, (), generator=g))
        flip = bool(torch.rand((), generator=g) < 0.5)
        xs, targets = [], []
        for x, i in zip(_images([images[i] for i in idx], device), idx):
            anns = grouped.get(Path(images[i]).name, [])
            b = torch.tensor([a["bbox"] for a in anns], dtype=torch.float32).reshape(-1, 4)
            b[:, 2:] += b[:, :2]  # xywh -> xyxy
            area = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
            b[:, [0, 2]] = (b[:, [0, 2]] - left).clamp(0, cw)
            b[:, [1, 3]] = (b[:, [1, 3]] - top).clamp(0, ch)
            # Keep a box if at least half of it is inside the crop (and it is not a sliver).
            keep = ((b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1]) >= 0.5 * area) & (b[:, 2] - b[:, 0] >= 2) & (
                b[:, 3] - b[:, 1] >= 2)
            labels = torch.tensor([to_label[a["category_id"]] for a in anns], dtype=torch.int64)[keep]
            b, x = b[keep], x[:, top:top + ch, left:left + cw]
            if flip:
                b[:, [0, 2]] = cw - b[:, [2, 0]]
                x = x.flip(-1)
            xs.append(x)
            targets.append({"boxes": b.to(device), "labels": labels.to(device)})
        return xs, targets

    model.to(device).train()
    # torchvision's transform resizes every input so that its sides reach (min_size, max_size); training on
    # crops must keep native scale, so the crop size is the target while training, the frame size after.
    if cfg.crop is not None:
        model.transform.min_size, model.transform.max_size = (min(cfg.crop[0], h),), min(cfg.crop[1], w)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=1e-4)
    g = torch.Generator().manual_seed(cfg.seed)
    warmup = max(1, cfg.steps // 10)
    for step in tqdm(range(cfg.steps), desc="training day detector", unit="step", leave=False):
        x, targets = sample(torch.randint(len(images), (cfg.batch_size,), generator=g).tolist(), g)
        # Linear warm-up, then cosine to 0: from-scratch FCOS diverges without the warm-up.
        lr = cfg.lr * min(1.0, (step + 1) / warmup) * 0.5 * (1 + np.cos(np.pi * step / cfg.steps))
        for group in opt.param_groups:
            group["lr"] = lr
        loss = sum(model(x, targets).values())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 10.0)
        opt.step()
    model.transform.min_size, model.transform.max_size = (h,), w

    def forward_backbone(idx: list[int]) -> None:
        batch, _ = model.transform(_images([images[i] for i in idx], device))
        model.backbone(batch.tensors)

    recalibrate_batchnorm(model, forward_backbone, len(images), g, cfg.batch_size, 16)
    return model
