"""Dark Zurich (Sakaridis et al., ICCV 2019): night -> day, with GPS-matched day references and val labels.

Layout as ETH Zurich ships it (Dark_Zurich_train_anon.zip and Dark_Zurich_val_anon.zip; checked
against several projects that read it)::

    <root>/                     both archives unpacked into one folder, or side by side as
                                Dark_Zurich_train_anon/ and Dark_Zurich_val_anon/
      rgb_anon/train/{day,night,twilight}/<seq>/<seq>_frame_<n>_rgb_anon.png
      rgb_anon/val/night/<seq>/<seq>_frame_<n>_rgb_anon.png
      rgb_anon/val_ref/day/<seq>_ref/<seq>_frame_<n>_ref_rgb_anon.png      the GPS-matched day frame
      gt/val/night/<seq>/<seq>_frame_<n>_gt_labelTrainIds.png

``dark-zurich``: A = night, B = day (train split for training); testing on the labelled val night
frames, with their GPS-matched day frames as the FID/KID reference set and as the matched frame of
the SIFT localisation metric. The matches are not pixel-aligned: no PSNR/SSIM/LPIPS.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from bench.suites import prepared
from bench.suites.folder import SuiteDataError

ENV_VAR = "AUGAN_BENCH_DARK_ZURICH"
EXPECTED_TREE = """dark_zurich/                                   (--data-root or $AUGAN_BENCH_DARK_ZURICH)
  rgb_anon/train/night/<seq>/*_rgb_anon.png
  rgb_anon/train/day/<seq>/*_rgb_anon.png
  rgb_anon/val/night/<seq>/<seq>_frame_<n>_rgb_anon.png
  rgb_anon/val_ref/day/<seq>_ref/<seq>_frame_<n>_ref_rgb_anon.png
  gt/val/night/<seq>/<seq>_frame_<n>_gt_labelTrainIds.png
(Dark_Zurich_train_anon/ and Dark_Zurich_val_anon/ side by side also work.)
Download both archives from https://www.trace.ethz.ch/publications/2019/GCMA_UIoU/"""
PRESETS = {**prepared.PRESETS, "quick": {**prepared.PRESETS["quick"], "n_test": 50}}  # val night has 50 frames
SUFFIX, REF_SUFFIX, LABEL_SUFFIX = "_rgb_anon.png", "_ref_rgb_anon.png", "_gt_labelTrainIds.png"


@dataclass(frozen=True)
class DarkZurichSuite(prepared.ListedSuite):
    def roots(self, data_root: Path | None) -> tuple[Path, Path]:
        """(folder holding rgb_anon/train, folder holding rgb_anon/val): one folder, or the two archives' folders."""
        root = prepared.dataset_root(self.name, data_root, ENV_VAR, "Dark Zurich", EXPECTED_TREE)
        train = root if (root / "rgb_anon" / "train").is_dir() else root / "Dark_Zurich_train_anon"
        val = root if (root / "rgb_anon" / "val").is_dir() else root / "Dark_Zurich_val_anon"
        for folder in (train / "rgb_anon" / "train", val / "rgb_anon" / "val", val / "rgb_anon" / "val_ref"):
            if not folder.is_dir():
                raise SuiteDataError(f"{self.name}: {folder} is missing. Expected layout:\n{EXPECTED_TREE}")
        return train, val

    def sources(self, data_root: Path | None) -> tuple[dict[str, list[prepared.SourceImage]], prepared.Skips]:
        train, val = self.roots(data_root)
        skips = prepared.Skips()

        def listed(folder: Path, suffix: str) -> list[Path]:
            return sorted(p for p in folder.glob(f"*/*{suffix}") if p.is_file()) if folder.is_dir() else []

        def items(paths: list[Path], suffix: str) -> list[prepared.SourceImage]:
            return [prepared.SourceImage(p, p.name[: -len(suffix)] + ".png") for p in paths]

        test_a, test_b = [], []
        for p in listed(val / "rgb_anon" / "val" / "night", SUFFIX):
            frame, seq = p.name[: -len(SUFFIX)], p.parent.name
            label = val / "gt" / "val" / "night" / seq / (frame + LABEL_SUFFIX)
            ref = val / "rgb_anon" / "val_ref" / "day" / f"{seq}_ref" / (frame + REF_SUFFIX)
            if not label.is_file():
                skips.add("val night frame without its label in gt/val/night/", p.name)
                continue
            if not ref.is_file():
                skips.add("val night frame without its GPS-matched day frame in rgb_anon/val_ref/day/", p.name)
                continue
            test_a.append(prepared.SourceImage(p, frame + ".png", label=label, twin=ref))
            test_b.append(prepared.SourceImage(ref, frame + ".png"))
        return {
            "trainA": items(listed(train / "rgb_anon" / "train" / "night", SUFFIX), SUFFIX),
            "trainB": items(listed(train / "rgb_anon" / "train" / "day", SUFFIX), SUFFIX),
            "testA": test_a,
            "testB": test_b,
        }, skips

    def choose(self, found: dict[str, list[prepared.SourceImage]], spec: dict) -> dict[str, list[prepared.SourceImage]]:
        chosen = super().choose(found, spec)
        kept = {s.name for s in chosen["testA"]}  # the reference set: the matched day frames of the chosen test frames
        chosen["testB"] = [s for s in found["testB"] if s.name in kept]
        return chosen


SUITES = (
    DarkZurichSuite(name="dark-zurich", description="Dark Zurich night -> day (val: labelled night, GPS-matched day)",
                    condition="night", metrics=("fid", "kid", "fd-dinov2", "fid-clean", "kid-clean", "sift", "miou"),
                    default_methods=("identity", "gamma", "clahe", "histmatch"), needs_data_root=True,
                    presets=PRESETS),
)
