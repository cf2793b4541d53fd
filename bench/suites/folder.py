"""``folder:PATH``: the CycleGAN/ForkGAN/AU-GAN layout ``trainA/ trainB/ testA/ testB/``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from bench.data.io import links_leaving, list_images, refuse_output_name_clashes
from bench.suites.base import Suite, SuiteFiles
from bench.errors import BenchError

EXPECTED_TREE = """PATH/
  trainA/   adverse training images (night, rain, fog)
  trainB/   normal (day) training images
  testA/    adverse test images, translated and scored
  testB/    normal test images: the FID/KID reference set
  testA_labels/  (optional) Cityscapes train-id label PNG per testA image, same stem: enables mIoU
                 with --segmenter
  valA/ valB/    (optional, both or neither) validation images, none of them in train or test: curves during
                 training and --select val:METRIC"""


class SuiteDataError(BenchError, ValueError):
    pass


@dataclass(frozen=True)
class FolderSuite(Suite):
    path: Path = Path(".")

    def prepare(self, preset: str, data_root: Path | None = None, size: tuple[int, int] | None = None) -> SuiteFiles:
        root = self.path
        if not root.is_dir():
            raise SuiteDataError(f"folder suite: {root} is not a folder. Expected layout:\n{EXPECTED_TREE}")
        split = {}
        for sub in ("trainA", "trainB", "testA", "testB"):
            d = root / sub
            if not d.is_dir():
                raise SuiteDataError(f"folder suite: {d} is missing. Expected layout:\n{EXPECTED_TREE}")
            split[sub] = tuple(list_images(d))
            if not split[sub]:
                raise SuiteDataError(f"folder suite: {d} holds no images ({', '.join(('.png', '.jpg'))} ...)")
        refuse_output_name_clashes(split["testA"])
        val = _validation(root)
        h, w = size if size is not None else (0, 0)  # 0: native size; methods crop/pad as they need
        return SuiteFiles(root, split["trainA"], split["trainB"], split["testA"], split["testB"],
                          labels=_labels(root, split["testA"]), height=h, width=w, notes=_link_notes(root, split),
                          val_a=val.get("valA", ()), val_b=val.get("valB", ()))


def _validation(root: Path) -> dict[str, tuple[Path, ...]]:
    """The optional valA/ and valB/ folders: both with images, or neither."""
    present = {sub: tuple(list_images(root / sub)) for sub in ("valA", "valB") if (root / sub).is_dir()}
    if not present:
        return {}
    empty = [sub for sub in ("valA", "valB") if not present.get(sub)]
    if empty:
        raise SuiteDataError(f"folder suite: {root / empty[0]} is missing or holds no images; a validation split "
                             "needs both valA/ (adverse) and valB/ (normal), or neither")
    return present


def _link_notes(root: Path, split: dict[str, tuple[Path, ...]]) -> tuple[str, ...]:
    """Symbolic links that lead out of the suite folder are followed; the run says so (a copy of the data elsewhere
    may change under it). Dangling links are not images: `bench data check` lists them."""
    notes = []
    for sub, paths in split.items():
        outside = links_leaving(root, paths)
        if outside:
            notes.append(f"{len(outside)} {sub} file(s) are symbolic links to outside {root}, followed (e.g. "
                         f"{outside[0].name} -> {outside[0].resolve()})")
    return tuple(notes)


def _labels(root: Path, test_a: tuple[Path, ...]) -> tuple[Path, ...] | None:
    """The label map of every testA image, or None without a testA_labels/ folder; a partial folder is an error."""
    folder = root / "testA_labels"
    if not folder.is_dir():
        return None
    labels = tuple(folder / (p.stem + ".png") for p in test_a)
    missing = [p.name for p in labels if not p.is_file()]
    if missing:
        raise SuiteDataError(f"folder suite: {folder} lacks the label of {len(missing)} testA image(s), e.g. "
                             f"{', '.join(missing[:3])}; each testA/NAME.* needs testA_labels/NAME.png")
    return labels


def folder_suite(path: str) -> FolderSuite:
    return FolderSuite(
        name=f"folder:{path}",
        description="user data in the trainA/trainB/testA/testB layout",
        condition="adverse",
        metrics=("fid", "kid", "fd-dinov2", "fid-clean", "kid-clean", "miou"),
        default_methods=("identity", "gamma", "clahe", "histmatch"),
        path=Path(path).expanduser(),
    )
