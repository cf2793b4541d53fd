"""What a suite is: a frozen description, and the file lists it resolves to."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from bench.translator import UnpairedData


@dataclass(frozen=True)
class SuiteFiles:
    """A suite made concrete: image files per split, ready for training and scoring."""

    root: Path
    train_a: tuple[Path, ...]
    train_b: tuple[Path, ...]
    test_a: tuple[Path, ...]
    test_b: tuple[Path, ...]  # target-domain test images: the FID/KID reference set
    twins: tuple[Path, ...] | None = None  # pixel-aligned day twin of each test_a image
    labels: tuple[Path, ...] | None = None  # semantic label map (Cityscapes train ids) per test_a image
    boxes: Path | None = None  # COCO-style JSON of car/person boxes of test_a
    train_b_labels: tuple[Path, ...] | None = None  # label maps of the day training images (downstream training)
    train_b_boxes: Path | None = None  # COCO-style JSON of the day training images' boxes (detector training)
    height: int = 0
    width: int = 0
    notes: tuple[str, ...] = ()  # what the suite skipped in the data, and why (reported in the manifest)
    # How the day training split (train_b, its labels and boxes) is made, where it is a pure function of that (the
    # synthetic suites); the downstream evaluators trained on it are found by it (bench.downstream.training_key).
    train_b_recipe: str = ""
    # The validation split: held out of training and disjoint from the test split, for curves and checkpoint
    # selection during training (``bench.validation``). Empty where the suite has none.
    val_a: tuple[Path, ...] = ()
    val_b: tuple[Path, ...] = ()  # the validation reference set (KID)
    val_labels: tuple[Path, ...] | None = None  # label map per val_a image (the synthetic suites: mIoU curves)

    def unpaired(self) -> UnpairedData:
        return UnpairedData(self.train_a, self.train_b, self.height, self.width)


@dataclass(frozen=True)
class Suite:
    name: str
    description: str
    condition: str  # night | rain | fog (the adverse domain A)
    metrics: tuple[str, ...]
    default_methods: tuple[str, ...]
    needs_data_root: bool = False
    presets: dict[str, dict] = field(default_factory=dict)

    def prepare(self, preset: str, data_root: Path | None, size: tuple[int, int] | None = None) -> SuiteFiles:
        raise NotImplementedError  # each suite family overrides this
