"""What a training writes for people to watch: ``train_log.jsonl`` always, TensorBoard when it imports, W&B on request.

The StyleGAN2-ADA pattern: a plain JSON-lines file is the record every tool (the report, the selection rule, a
user's own script) reads, and the same values go to the dashboards people already open:

- ``train_log.jsonl``: one line per logged step (losses, learning rate, img/s, peak memory);
- ``validation.jsonl``: one line per validation (``val/<metric>`` values, the images it used, its wall time);
- ``samples/step<N>.png``: the fixed grid of validation translations (the same images every time);
- ``tensorboard/``: the same scalars, the grid as an image, the resolved config once as hyperparameters;
- W&B (``logger = ["wandb"]``): offline unless ``WANDB_MODE`` says otherwise, so nothing is sent unasked.

After a resume from step ``s`` every file drops what the interrupted attempt wrote past ``s`` (TensorBoard through
its ``purge_step``), so each step has one value in each.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

TRAIN_LOG = "train_log.jsonl"
VALIDATION_LOG = "validation.jsonl"
SAMPLES = "samples"
NOT_LOSSES = ("lr", "img_per_s", "peak_mem_mib", "images", "seconds")  # numbers in the logs that are not loss terms or metrics


class LoggerError(ValueError):
    pass


def parse_loggers(text: str) -> tuple[str, ...]:
    """``--logger tensorboard,wandb`` / ``none`` -> the dashboards asked for (JSONL is always written); the names
    are checked with the rest of the watch (``TrainWatch.checked``), as a ``--config`` file's are."""
    names = tuple(n.strip() for n in text.split(",") if n.strip())
    return () if names in ((), ("none",)) else names


def truncate_jsonl(path: Path, last_step: int) -> None:
    """Keep the lines of ``path`` up to ``last_step`` (and none that a killed write left unreadable)."""
    if not path.is_file():
        return
    keep = []
    for line in path.read_text().splitlines():
        try:
            if json.loads(line)["step"] <= last_step:
                keep.append(line)
        except (json.JSONDecodeError, KeyError, TypeError):
            continue
    path.write_text("".join(ln + "\n" for ln in keep))


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """The readable lines of a log (a line cut short by a kill is skipped)."""
    rows = []
    if Path(path).is_file():
        for line in Path(path).read_text().splitlines():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return rows


@dataclass
class TrainingLog:
    """The logs of one training in ``out_dir`` (rank 0 only writes: make it with ``enabled=False`` elsewhere)."""

    out_dir: Path
    loggers: tuple[str, ...] = ("tensorboard",)
    start_step: int = 0  # a resume: everything past it is dropped
    enabled: bool = True
    run_name: str = ""
    _tb: Any = field(default=None, init=False, repr=False)
    _wandb: Any = field(default=None, init=False, repr=False)
    notes: list[str] = field(default_factory=list, init=False)  # dashboards asked for but not available

    def __post_init__(self) -> None:
        if not self.enabled:
            return
        self.out_dir = Path(self.out_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        for name in (TRAIN_LOG, VALIDATION_LOG):
            truncate_jsonl(self.out_dir / name, self.start_step)
        if "tensorboard" in self.loggers:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:  # the package is optional: JSONL is the record
                self.notes.append("TensorBoard is not installed (pip install tensorboard): logging to JSONL only")
            else:
                # purge_step: events at or after it, left by the interrupted attempt, are discarded when read
                # (the resumed training logs from start_step + 1 on)
                self._tb = SummaryWriter(str(self.out_dir / "tensorboard"),
                                         purge_step=self.start_step + 1 if self.start_step else None)
        if "wandb" in self.loggers:
            try:
                import wandb
            except ImportError:
                raise LoggerError("--logger wandb: the wandb package is not installed (pip install wandb)") from None
            os.environ.setdefault("WANDB_MODE", "offline")  # nothing leaves the machine unless the user says so
            self._wandb = wandb.init(project="augan-bench", name=self.run_name or None, dir=str(self.out_dir),
                                     id=_wandb_id(self.out_dir), resume="allow")

    @property
    def fresh(self) -> bool:
        return self.start_step == 0

    def hyperparameters(self, config: dict[str, Any]) -> None:
        """The resolved method config, once per training (not again on a resume)."""
        if not self.enabled or not self.fresh:
            return
        flat = {k: v if isinstance(v, (int, float, str, bool)) else json.dumps(v) for k, v in config.items()}
        if self._tb is not None:
            from torch.utils.tensorboard.summary import hparams

            # Written into this run's own event file (SummaryWriter.add_hparams would open a second run folder).
            for summary in hparams(flat, {}):
                self._tb.file_writer.add_summary(summary)
        if self._wandb is not None:
            self._wandb.config.update(flat, allow_val_change=True)

    def losses(self, rows: list[dict[str, float]]) -> None:
        """Rows of ``{"step": ..., name: value}`` (the steps since the last call) into every log."""
        if not self.enabled or not rows:
            return
        with open(self.out_dir / TRAIN_LOG, "a") as fh:
            fh.write("".join(json.dumps(r) + "\n" for r in rows))
        for r in rows:
            self._scalars(r, prefix="train/")

    def validation(self, step: int, values: dict[str, float], images: int, seconds: float) -> None:
        """One validation's values, with how many images it translated and what it cost (the wall time of
        translating and scoring them: what validation adds to a training)."""
        if not self.enabled:
            return
        scalars = {"step": step, **{f"val/{k}": v for k, v in values.items()}}
        with open(self.out_dir / VALIDATION_LOG, "a") as fh:
            fh.write(json.dumps({**scalars, "images": images, "seconds": round(seconds, 3)}) + "\n")
        self._scalars(scalars, prefix="")

    def samples(self, step: int, grid: np.ndarray) -> Path | None:
        """The fixed grid of validation translations (H x W x 3 uint8) as a PNG and a dashboard image."""
        if not self.enabled:
            return None
        from bench.data.io import write_png

        path = self.out_dir / SAMPLES / f"step{step:07d}.png"
        write_png(path, grid)
        if self._tb is not None:
            self._tb.add_image("samples", grid, step, dataformats="HWC")
        if self._wandb is not None:
            import wandb

            self._wandb.log({"samples": wandb.Image(grid)}, step=step)
        return path

    def flush(self) -> None:
        if self._tb is not None:
            self._tb.flush()

    def __enter__(self) -> "TrainingLog":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        if self._tb is not None:
            self._tb.close()
            self._tb = None
        if self._wandb is not None:
            self._wandb.finish()
            self._wandb = None

    def _scalars(self, row: dict[str, float], prefix: str) -> None:
        step = int(row["step"])
        values = {f"{prefix}{k}": float(v) for k, v in row.items() if k != "step"}
        if self._tb is not None:
            for k, v in values.items():
                self._tb.add_scalar(k, v, step)
        if self._wandb is not None:
            self._wandb.log(values, step=step)


def choose_step(curve: list[tuple[int, float]], higher_is_better: bool) -> int | None:
    """The step of the best finite value of a validation curve; a tie goes to the earlier step (fewer steps for the
    same score). None when no value is finite."""
    finite = [(s, v) for s, v in curve if math.isfinite(v)]
    if not finite:
        return None
    sign = -1.0 if higher_is_better else 1.0
    return min(finite, key=lambda sv: (sign * sv[1], sv[0]))[0]


def sample_grid(inputs, translated) -> np.ndarray:
    """Rows of (input | translation) as one H x W x 3 uint8 image, from N x 3 x H x W tensors in [0, 1]."""
    from bench.data.io import to_uint8

    return np.concatenate([np.concatenate([to_uint8(x), to_uint8(y)], axis=1) for x, y in zip(inputs, translated)])


def peak_memory_mib(device) -> float:
    """The training process's peak memory so far: the device's allocator on CUDA, the resident set on the CPU."""
    import torch

    if getattr(device, "type", str(device)) == "cuda":
        return round(torch.cuda.max_memory_allocated(device) / 2**20, 1)
    import resource

    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)  # Linux reports KiB


def _wandb_id(out_dir: Path) -> str:
    """One W&B run per training folder, so a resume continues it."""
    import hashlib

    return hashlib.sha256(str(Path(out_dir).resolve()).encode()).hexdigest()[:16]
