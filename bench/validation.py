"""Validation during training: scores of a method's translations of the suite's validation split, never the test split.

``SuiteValidation`` is what a run hands to the training loop (``bench.translator.Validator``): the first
``val_images`` images of ``valA`` (the same every time), and, for their translations,

- ``kid``: KID against the Inception features of all of ``valB`` (computed once and cached), torch-fidelity's
  estimator with its subset size capped at the set sizes, as the test metric;
- ``miou``: mIoU of the suite's day-trained segmenter against ``valA``'s label maps (the synthetic suites).

Only validation files are opened here; the test split's paths are not even given to it.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from bench.errors import BenchError

METRICS = {"kid": False, "miou": True}  # validation metric -> higher is better


class ValidationError(BenchError, ValueError):
    pass


@dataclass(frozen=True)
class ValidationFiles:
    """The validation split, and what the curves need besides it (no test file)."""

    val_a: tuple[Path, ...]
    val_b: tuple[Path, ...]
    val_labels: tuple[Path, ...] | None = None
    train_b: tuple[Path, ...] = ()  # the day training split the suite's segmenter is trained on
    train_b_labels: tuple[Path, ...] | None = None
    train_b_recipe: str = ""


@dataclass
class SuiteValidation:
    files: ValidationFiles
    preset: str
    device: str = "cpu"
    n_images: int = 16
    batch_size: int = 16
    metrics: dict[str, bool] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)  # metrics that cannot be computed here, and why
    inputs: torch.Tensor = field(init=False)

    def __post_init__(self) -> None:
        from bench.data.io import read_rgb, to_tensor

        f = self.files
        if not f.val_a:
            raise ValidationError("the suite has no validation split")
        images = [read_rgb(p) for p in f.val_a[: self.n_images]]
        # A batch needs one size: in a folder suite of mixed sizes the curves use the images of the most common one.
        shape = Counter(im.shape for im in images).most_common(1)[0][0]
        self._chosen = [i for i, im in enumerate(images) if im.shape == shape]
        if len(self._chosen) < len(images):
            self.notes.append(f"validation uses the {len(self._chosen)} of the first {len(images)} valA images that "
                              f"are {shape[1]}x{shape[0]} (a batch needs one size)")
        self.inputs = torch.stack([to_tensor(images[i]) for i in self._chosen])
        self._reference = self._kid_reference()
        if self._reference is not None:
            self.metrics["kid"] = METRICS["kid"]
        self._segmenter = self._miou_segmenter()
        if self._segmenter is not None:
            self.metrics["miou"] = METRICS["miou"]

    def _kid_reference(self) -> torch.Tensor | None:
        from bench.metrics.fid_kid import InceptionExtractor, extract_features
        from bench.weights import WeightsMissing

        try:
            self._inception = InceptionExtractor(device=self.device)
        except WeightsMissing as exc:
            self.notes.append(f"no kid curve: {exc}")
            return None
        return extract_features(list(self.files.val_b), self._inception, batch_size=self.batch_size,
                                desc="validation reference features")

    def _miou_segmenter(self):
        f = self.files
        if f.val_labels is None or f.train_b_labels is None:
            return None
        from bench.downstream.synthetic_segmenter import trained_segmenter

        seg = trained_segmenter(f.train_b, f.train_b_labels, self.preset, self.device, recipe=f.train_b_recipe)
        self._labels = [f.val_labels[i] for i in self._chosen]
        return seg

    def __call__(self, translated: torch.Tensor) -> dict[str, float]:
        out: dict[str, float] = {}
        if self._reference is not None:
            from bench.metrics.fid_kid import kid_from_features

            as_bytes = torch.round(translated.clamp(0, 1) * 255).to(torch.uint8)
            feats = torch.cat([self._inception(b) for b in as_bytes.split(self.batch_size)])
            out["kid"] = kid_from_features(feats, self._reference)[0]
        if self._segmenter is not None:
            out["miou"] = self._miou(translated)
        return out

    def _miou(self, translated: torch.Tensor) -> float:
        from bench.data.io import read_label
        from bench.metrics.segmentation import confusion, mean_iou

        preds = [p for b in translated.split(self.batch_size) for p in self._segmenter.predict_images(b)]
        cm = np.sum([confusion(p, read_label(lab)) for p, lab in zip(preds, self._labels)], axis=0)
        return 100.0 * mean_iou(cm)  # in percent, as the tables report mIoU


def validation_for(files, preset: str, device: str, n_images: int, batch_size: int,
                   needed: Sequence[str] = ()) -> SuiteValidation | None:
    """The validation of a suite's prepared files (``bench.suites.SuiteFiles``), or None where it has no validation
    split; a metric in ``needed`` (the selection rule's) that cannot be computed is an error, before training."""
    if not files.val_a or not files.val_b:  # (a real suite whose every valB image was undecodable has only valA)
        if needed:
            raise ValidationError(f"--select val:{needed[0]}: this suite has no validation split (a folder suite "
                                  "takes valA/ and valB/ beside trainA/ ...)")
        return None
    v = SuiteValidation(ValidationFiles(files.val_a, files.val_b, files.val_labels, files.train_b,
                                        files.train_b_labels, files.train_b_recipe),
                        preset, device, n_images, batch_size)
    for metric in needed:
        if metric not in v.metrics:
            why = "; ".join(v.notes) or ("it has no validation label maps" if metric == "miou" else "")
            raise ValidationError(f"--select val:{metric}: not available on this suite's validation split "
                                  f"(available: {', '.join(v.metrics) or 'none'}){f'; {why}' if why else ''}")
    return v
