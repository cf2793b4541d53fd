"""The day-domain segmenter of the synthetic suites: shipped for the default preset, else trained and cached.

A torchvision LR-ASPP MobileNetV3-Large (``weights=None, weights_backbone=None``: nothing is
downloaded) is trained on the suite's day training images and their label maps, then used to
segment (a) the day twins (upper bound), (b) the raw adverse images, (c) every translation. Its
pooled backbone features also give ``fd-synthseg``, a Fréchet distance that needs no downloaded
weights. The weights are keyed by the training files' bytes and the training config: the file
that ships with the project for that key (``bench.downstream.training``), else the one trained and
cached under ``$AUGAN_BENCH_CACHE/segmenters/``, so every run and method reuses one model.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from bench.data.io import read_label, read_rgb
from bench.downstream.training import evaluator_weights, recalibrate_batchnorm, save_evaluator, training_key
from bench.metrics.segmentation import IGNORE, N_CLASSES

_MEAN, _STD = 0.45, 0.25


@dataclass(frozen=True)
class SegmenterConfig:
    steps: int = 400
    batch_size: int = 4
    lr: float = 1e-3
    crop: tuple[int, int] | None = (64, 128)  # random native-scale crops (H, W); None: whole images
    seed: int = 0
    version: int = 1  # bump when training changes, so cached models are retrained


SEGMENTER_PRESETS = {
    "smoke": SegmenterConfig(steps=80, batch_size=8),
    "quick": SegmenterConfig(steps=150, batch_size=8, lr=3e-3),  # day-twin mIoU 45.7 in half the steps of lr 1e-3
    "paper": SegmenterConfig(steps=3000, batch_size=8, crop=None),
}


def _build() -> torch.nn.Module:
    from torchvision.models.segmentation import lraspp_mobilenet_v3_large

    return lraspp_mobilenet_v3_large(weights=None, weights_backbone=None, num_classes=N_CLASSES)


def _batch(paths: Sequence[Path]) -> torch.Tensor:
    x = torch.stack([torch.from_numpy(read_rgb(p)).permute(2, 0, 1) for p in paths]).float() / 255.0
    return (x - _MEAN) / _STD


class SyntheticSegmenter:
    def __init__(self, model: torch.nn.Module, device: str, weights_id: str) -> None:
        self.model = model.to(device).eval()
        self.device = device
        self.id = f"synthseg-lraspp-mnv3:{weights_id}"

    @torch.no_grad()
    def analyse(self, paths: Sequence[Path]) -> tuple[list[np.ndarray], torch.Tensor]:
        """Label maps and pooled features (960-d, for fd-synthseg) from one decode and one backbone pass.

        Follows torchvision's LRASPP.forward: backbone, classifier, bilinear upsampling to the input size.
        """
        return self._analyse(_batch(paths).to(self.device))

    @torch.no_grad()
    def predict_images(self, images: torch.Tensor) -> list[np.ndarray]:
        """Label maps of N x 3 x H x W images in [0, 1] (held in memory: validation during training)."""
        return self._analyse(((images - _MEAN) / _STD).to(self.device))[0]

    def _analyse(self, x: torch.Tensor) -> tuple[list[np.ndarray], torch.Tensor]:
        feats = self.model.backbone(x)
        logits = F.interpolate(self.model.classifier(feats), size=x.shape[-2:], mode="bilinear", align_corners=False)
        labels = [p.cpu().numpy().astype(np.uint8) for p in logits.argmax(1)]
        return labels, feats["high"].mean((2, 3)).double().cpu()

    def features(self, paths: Sequence[Path]) -> torch.Tensor:
        return self.analyse(paths)[1]

    def predict(self, paths: Sequence[Path]) -> list[np.ndarray]:
        return self.analyse(paths)[0]


def trained_segmenter(images: Sequence[Path], labels: Sequence[Path], preset: str, device: str = "cpu",
                      recipe: str = "") -> SyntheticSegmenter:
    """The day-domain segmenter for ``images`` / ``labels`` (made by ``recipe``, where they are a pure function of
    one): shipped with the project, cached, or trained now."""
    from safetensors.torch import load_file

    cfg = SEGMENTER_PRESETS[preset]
    key = training_key(cfg, images, labels, recipe=recipe)
    weights = evaluator_weights("segmenters", key)
    if weights is None:
        weights = save_evaluator("segmenters", key, train_segmenter(images, labels, cfg, device))
    model = _build()
    model.load_state_dict(load_file(str(weights.path)))
    return SyntheticSegmenter(model, device, weights.id)


def train_segmenter(images: Sequence[Path], labels: Sequence[Path], cfg: SegmenterConfig, device: str = "cpu"
                    ) -> torch.nn.Module:
    """Train the segmenter with ``cfg`` on the day ``images`` and their label maps (deterministic on one CPU)."""
    torch.manual_seed(cfg.seed)
    model = _build()
    model.to(device).train()
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=1e-4)
    g = torch.Generator().manual_seed(cfg.seed)
    for step in tqdm(range(cfg.steps), desc="training day segmenter", unit="step", leave=False):
        idx = torch.randint(len(images), (cfg.batch_size,), generator=g).tolist()
        x = _batch([images[i] for i in idx]).to(device)
        y = torch.stack([torch.from_numpy(read_label(labels[i]).astype(np.int64)) for i in idx]).to(device)
        if cfg.crop is not None and (x.shape[-2] > cfg.crop[0] or x.shape[-1] > cfg.crop[1]):
            top = int(torch.randint(x.shape[-2] - cfg.crop[0] + 1, (), generator=g))
            left = int(torch.randint(x.shape[-1] - cfg.crop[1] + 1, (), generator=g))
            x = x[..., top:top + cfg.crop[0], left:left + cfg.crop[1]]
            y = y[..., top:top + cfg.crop[0], left:left + cfg.crop[1]]
        if torch.rand((), generator=g) < 0.5:
            x, y = x.flip(-1), y.flip(-1)
        lr = cfg.lr * 0.5 * (1 + np.cos(np.pi * step / cfg.steps))  # cosine to 0
        for group in opt.param_groups:
            group["lr"] = lr
        loss = F.cross_entropy(model(x)["out"], y, ignore_index=IGNORE)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    recalibrate_batchnorm(model, lambda idx: model(_batch([images[i] for i in idx]).to(device)), len(images), g,
                          cfg.batch_size, 16)
    return model
