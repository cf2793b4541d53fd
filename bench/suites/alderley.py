"""Alderley Day/Night (Milford & Wyeth, ICRA 2012): rainy night -> sunny day on the same route.

Layout as QUT ships it (FRAMESA.zip, FRAMESB.zip, framematches.csv). The publisher's wiki page is no
longer reachable, so the layout was checked against several independent projects that read the
original files (place-recognition loaders in Python, C++ and MATLAB, day/night pairing scripts).
They agree on the folder and file names and on the correspondence file: two columns of 1-based
frame numbers (one asserts a line per day frame). All but one read FRAMESA, and the first column, as the night
(the counts fit: ForkGAN's 11,686 day training frames are four fifths of FRAMESB's 14,607)::

    alderley/
      FRAMESA/Image00001.jpg ...   the rainy-night traverse (16,960 frames; unzipping may nest
                                   it as FRAMESA/FRAMESA/, which is accepted)
      FRAMESB/Image00001.jpg ...   the sunny-day traverse (14,607 frames)
      framematches.csv             the manual ground truth: lines "<night frame>,<day frame>",
                                   1-based frame numbers, no header (one is tolerated)

``alderley`` follows ForkGAN's split, which AU-GAN and N2D3 reuse: night frames 1-13800 and day
frames 1-11686 train, the rest test (papers.md). The day test frames are the FID/KID reference set.
Each night test frame's matched frame for the SIFT localisation metric is the day frame the ground
truth assigns to it; the night traverse has more frames than the day one, so a night frame that no
line names takes the day frame of the nearest night frame that one does, within MATCH_TOLERANCE
frames; farther ones are skipped and counted. The matched frames show the same place but are not
pixel-aligned: no PSNR/SSIM/LPIPS.

Because one project calls FRAMESA the day, which folder is night is checked on the data: FRAMESA
must be the darker traverse, or the suite stops.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench.data.io import ImageReadError, read_rgb
from bench.suites import prepared
from bench.suites.folder import SuiteDataError

ENV_VAR = "AUGAN_BENCH_ALDERLEY"
EXPECTED_TREE = """alderley/                                      (--data-root or $AUGAN_BENCH_ALDERLEY)
  FRAMESA/Image00001.jpg ...                   rainy night (FRAMESA/FRAMESA/ also works)
  FRAMESB/Image00001.jpg ...                   sunny day
  framematches.csv                             lines "<night frame>,<day frame>"
Download FRAMESA.zip, FRAMESB.zip and framematches.csv of the Alderley Day/Night dataset
(QUT; listed at https://qcr.github.io under legacy datasets)."""
FRAME_NAME = re.compile(r"Image(\d+)\.jpg", re.IGNORECASE)
LAST_TRAIN_NIGHT, LAST_TRAIN_DAY = 13800, 11686  # ForkGAN's README: the first four fifths of each traverse
MATCH_TOLERANCE = 5  # frames: neighbouring video frames show nearly the same place
N_BRIGHTNESS_SAMPLES = 8


def read_matches(path: Path) -> dict[int, list[int]]:
    """framematches.csv as night frame -> the day frames matched to it (ascending)."""
    if not path.is_file():
        raise SuiteDataError(f"alderley: {path} is missing (the ground-truth frame correspondences). "
                             f"Expected layout:\n{EXPECTED_TREE}")
    night_to_day: dict[int, list[int]] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8-sig", errors="replace").splitlines(), start=1):
        if not line.strip():
            continue
        cells = [c.strip() for c in line.split(",")]
        try:
            night, day = (float(c) for c in cells[:2]) if len(cells) >= 2 else (None, None)
        except ValueError:
            night = day = None
        if night is None or not (night.is_integer() and day.is_integer()):
            if number == 1:
                continue  # a header line
            raise SuiteDataError(f"alderley: {path}, line {number}: expected two frame numbers "
                                 f"'<night frame>,<day frame>', found {line.strip()!r}. Re-download framematches.csv.")
        night_to_day.setdefault(int(night), []).append(int(day))
    if not night_to_day:
        raise SuiteDataError(f"alderley: {path} holds no frame correspondences. Re-download framematches.csv.")
    return {n: sorted(days) for n, days in night_to_day.items()}


@dataclass(frozen=True)
class AlderleySuite(prepared.ListedSuite):
    def frames(self, folder: Path, skips: prepared.Skips) -> dict[int, Path]:
        """Frame number -> file, from FRAMESX/ or the FRAMESX/FRAMESX/ an unzip leaves."""
        nested = folder / folder.name
        if nested.is_dir() and not any(FRAME_NAME.fullmatch(p.name) for p in folder.iterdir()):
            folder = nested
        found = {}
        for p in sorted(folder.iterdir()):
            m = FRAME_NAME.fullmatch(p.name)
            if m and p.is_file():
                found[int(m.group(1))] = p
            elif p.is_file():
                skips.add(f"file in {folder.name}/ not named ImageNNNNN.jpg", p.name)
        return found

    def sources(self, data_root: Path | None) -> tuple[dict[str, list[prepared.SourceImage]], prepared.Skips]:
        root = prepared.dataset_root(self.name, data_root, ENV_VAR, "Alderley Day/Night", EXPECTED_TREE)
        for sub in ("FRAMESA", "FRAMESB"):
            if not (root / sub).is_dir():
                hint = ("\nThis looks like ForkGAN's rearranged copy (trainA/testA/...): run it as --suite folder:PATH "
                        "(no matched frames, so no SIFT)." if (root / "trainA").is_dir() else "")
                raise SuiteDataError(f"{self.name}: {root / sub} is missing. Expected layout:\n{EXPECTED_TREE}{hint}")
        skips = prepared.Skips()
        night, day = self.frames(root / "FRAMESA", skips), self.frames(root / "FRAMESB", skips)
        _check_night_is_darker(night, day)
        matches = read_matches(root / "framematches.csv")
        named = {n: [d for d in days if d in day] for n, days in matches.items()}
        dangling = sum(len(days) for days in matches.values()) - sum(len(v) for v in named.values())
        if dangling:
            skips.add("line of framematches.csv naming a day frame missing from FRAMESB/", "framematches.csv",
                      count=dangling)
        named = {n: days for n, days in named.items() if days}

        def item(k: int, path: Path, twin: Path | None = None) -> prepared.SourceImage:
            return prepared.SourceImage(path, f"Image{k:05d}.png", twin=twin)

        test_a = []
        for k, path in night.items():
            if k <= LAST_TRAIN_NIGHT:
                continue
            nearest = min((n for n in range(k - MATCH_TOLERANCE, k + MATCH_TOLERANCE + 1) if n in named),
                          key=lambda n: (abs(n - k), n), default=None)
            if nearest is None:
                skips.add(f"night test frame with no ground-truth day frame within {MATCH_TOLERANCE} frames",
                          path.name)
                continue
            test_a.append(item(k, path, day[named[nearest][0]]))
        return {
            "trainA": [item(k, p) for k, p in night.items() if k <= LAST_TRAIN_NIGHT],
            "trainB": [item(k, p) for k, p in day.items() if k <= LAST_TRAIN_DAY],
            "testA": test_a,
            "testB": [item(k, p) for k, p in day.items() if k > LAST_TRAIN_DAY],
        }, skips


def _check_night_is_darker(night: dict[int, Path], day: dict[int, Path]) -> None:
    """Stop if FRAMESA is not the darker traverse: the folders would be swapped and every number inverted."""
    def mean_luma(frames: dict[int, Path]) -> tuple[float, int]:
        keys = sorted(frames)
        picks = [keys[i] for i in np.linspace(0, len(keys) - 1, min(N_BRIGHTNESS_SAMPLES, len(keys))).astype(int)]
        values = []
        for k in picks:
            try:
                values.append(float(read_rgb(frames[k]).mean()))
            except ImageReadError:
                continue  # counted later, when the suite is prepared
        return (float(np.mean(values)) if values else float("nan")), len(values)

    if not night or not day:
        empty = "FRAMESA" if not night else "FRAMESB"
        raise SuiteDataError(f"alderley: {empty}/ holds no ImageNNNNN.jpg frames. Expected layout:\n{EXPECTED_TREE}")
    (a, na), (b, nb) = mean_luma(night), mean_luma(day)
    if a >= b:
        raise SuiteDataError(f"alderley: FRAMESA/ (expected: the rainy night) is not darker than FRAMESB/ (expected: "
                             f"the sunny day): mean brightness {a:.1f} over {na} frames vs {b:.1f} over {nb}. The "
                             "folders look swapped; rename them so FRAMESA holds the night frames.")


SUITES = (
    AlderleySuite(name="alderley", description="Alderley rainy night -> day (ForkGAN split, ground-truth matches)",
                  condition="night", metrics=("fid", "kid", "fd-dinov2", "fid-clean", "kid-clean", "sift"),
                  default_methods=("identity", "gamma", "clahe", "histmatch"), needs_data_root=True,
                  presets=prepared.PRESETS),
)
