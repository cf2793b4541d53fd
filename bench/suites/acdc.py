"""ACDC (Sakaridis et al., ICCV 2021): fog, night, rain and snow, each with normal-condition references.

Layout as ETH Zurich ships it (checked against the ACDC loaders of mmsegmentation-based projects:
``rgb_anon/<condition>/<split>`` with ``_rgb_anon.png``, ``gt/<condition>/<split>`` with
``_gt_labelTrainIds.png``, references in ``<split>_ref`` with ``_rgb_ref_anon.png``)::

    acdc/
      rgb_anon/<condition>/{train,val,test}/<GOPR sequence>/<frame>_rgb_anon.png
      rgb_anon/<condition>/{train_ref,val_ref,test_ref}/<GOPR sequence>/<frame>_rgb_ref_anon.png
      gt/<condition>/{train,val}/<GOPR sequence>/<frame>_gt_labelTrainIds.png

``acdc-<condition>``: A = the condition's train images (training) and val images (testing, each
with its Cityscapes train-id label: mIoU with ``--segmenter``), B = the normal-condition references
of the same splits. The references show the same places but are not pixel-aligned, so the suite
computes distribution metrics (FID, KID, fd-dinov2) and mIoU, not PSNR/SSIM/LPIPS. Images and label
maps are resized to the preset's size (label maps nearest-neighbour), as ``bench.suites.prepared``
does for every real-data suite.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from bench.suites import prepared
from bench.suites.folder import SuiteDataError

ENV_VAR = "AUGAN_BENCH_ACDC"
CONDITIONS = ("night", "rain", "fog", "snow")
EXPECTED_TREE = """acdc/                                          (--data-root or $AUGAN_BENCH_ACDC)
  rgb_anon/<condition>/train/GOPR*/*_rgb_anon.png
  rgb_anon/<condition>/train_ref/GOPR*/*_rgb_ref_anon.png
  rgb_anon/<condition>/val/GOPR*/*_rgb_anon.png
  rgb_anon/<condition>/val_ref/GOPR*/*_rgb_ref_anon.png
  gt/<condition>/val/GOPR*/*_gt_labelTrainIds.png
Download rgb_anon_trainvaltest.zip and gt_trainval.zip from https://acdc.vision.ee.ethz.ch/"""
IMAGE_SUFFIX, REF_SUFFIX, LABEL_SUFFIX = "_rgb_anon.png", "_rgb_ref_anon.png", "_gt_labelTrainIds.png"


@dataclass(frozen=True)
class ACDCSuite(prepared.ListedSuite):
    def root(self, data_root: Path | None) -> Path:
        root = prepared.dataset_root(self.name, data_root, ENV_VAR, "ACDC", EXPECTED_TREE)
        if not (root / "rgb_anon").is_dir() and (root / "acdc" / "rgb_anon").is_dir():
            root = root / "acdc"
        folder = root / "rgb_anon" / self.condition
        if not folder.is_dir():
            raise SuiteDataError(f"{self.name}: {folder} is missing. Expected layout:\n{EXPECTED_TREE}")
        return root

    def _images(self, root: Path, split: str, suffix: str) -> list[Path]:
        folder = root / "rgb_anon" / self.condition / split
        if not folder.is_dir():
            raise SuiteDataError(f"{self.name}: {folder} is missing. Expected layout:\n{EXPECTED_TREE}")
        return sorted(p for p in folder.glob(f"*/*{suffix}") if p.is_file())

    def sources(self, data_root: Path | None) -> tuple[dict[str, list[prepared.SourceImage]], prepared.Skips]:
        root = self.root(data_root)
        skips = prepared.Skips()

        def items(paths: list[Path], suffix: str) -> list[prepared.SourceImage]:
            return [prepared.SourceImage(p, p.name[: -len(suffix)] + ".png") for p in paths]

        test_a = []
        for p in self._images(root, "val", IMAGE_SUFFIX):
            frame = p.name[: -len(IMAGE_SUFFIX)]
            label = root / "gt" / self.condition / "val" / p.parent.name / (frame + LABEL_SUFFIX)
            if not label.is_file():
                skips.add(f"val image without its label in gt/{self.condition}/val/", p.name)
                continue
            test_a.append(prepared.SourceImage(p, frame + ".png", label=label))
        return {
            "trainA": items(self._images(root, "train", IMAGE_SUFFIX), IMAGE_SUFFIX),
            "trainB": items(self._images(root, "train_ref", REF_SUFFIX), REF_SUFFIX),
            "testA": test_a,
            "testB": items(self._images(root, "val_ref", REF_SUFFIX), REF_SUFFIX),
        }, skips


SUITES = tuple(
    ACDCSuite(name=f"acdc-{c}", description=f"ACDC {c} -> its normal-condition references (val split for testing)",
              condition=c, metrics=("fid", "kid", "fd-dinov2", "fid-clean", "kid-clean", "miou"),
              default_methods=("identity", "gamma", "clahe", "histmatch"), needs_data_root=True, presets=prepared.PRESETS)
    for c in CONDITIONS
)
