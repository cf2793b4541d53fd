"""The result schema: one metric value per row (long format), and the run manifest.

``metrics.csv`` columns: suite, method, seed, metric, value, ci_low, ci_high, n, extractor, note.
``value`` is empty (NaN) when the metric was skipped; ``note`` then says why and how to fix it.
``extractor`` names the weights that produced the number (with a SUBSTITUTE marker when their
hash is not the published one). Tables and figures are built only from these files.
"""

from __future__ import annotations

import csv
import io
import json
import math
import platform
import subprocess
import sys
from dataclasses import asdict, dataclass, field, fields
from typing import Any
from importlib import metadata
from pathlib import Path

from bench.atomic import atomic_write_bytes, atomic_write_json, atomic_write_text

SCHEMA_VERSION = 2  # of the cells' metrics.json; 2: the protocol's draws beside the records
REPLICATES_FILE = "replicates.csv.gz"  # per cell: resample index x metric, the B resampled values of each metric
PER_IMAGE_FILE = "per_image.csv.gz"  # per cell: one row per test image, every per-image value
MANIFEST_SCHEMA = 3  # 3: external (bench score); 2: method_configs, suite_config; 1: the first round's untyped one
REFERENCE_ROW = "day-twin"  # pseudo-method: downstream scores of the day twins (the upper bound)


@dataclass
class MetricRecord:
    suite: str
    method: str
    seed: int
    metric: str
    value: float
    ci_low: float = math.nan
    ci_high: float = math.nan
    n: int = 0
    extractor: str = ""
    note: str = ""

    @property
    def skipped(self) -> bool:
        return math.isnan(self.value)


COLUMNS = [f.name for f in fields(MetricRecord)]


@dataclass
class CellScores:
    """Everything one cell's scoring produced: the records (metrics.json), each metric's B replicates on the
    protocol's shared draws, and the per-image values (one row per test image, named by ``images``)."""

    records: list[MetricRecord]
    draws: dict[str, Any] = field(default_factory=dict)  # key, n, n_reference, resamples, and the key's components
    replicates: dict[str, Any] = field(default_factory=dict)  # metric -> B values (numpy)
    images: list[str] = field(default_factory=list)
    per_image: dict[str, Any] = field(default_factory=dict)  # column -> one value per image (numpy)


def write_cell_metrics(path: Path, records: list[MetricRecord], draws: dict[str, Any] | None = None) -> None:
    data: dict[str, Any] = {"schema": SCHEMA_VERSION, "records": [asdict(r) for r in records]}
    if draws:
        data["draws"] = draws
    atomic_write_json(path, data)


def write_cell(cell: Path, scores: CellScores) -> None:
    """A cell's replicates and per-image files, then its metrics.json (last: it marks the cell finished)."""
    if scores.replicates:
        length = max(len(v) for v in scores.replicates.values())
        columns = {m: list(v) + [math.nan] * (length - len(v)) for m, v in scores.replicates.items()}
        atomic_write_bytes(cell / REPLICATES_FILE, _csv_gz({"resample": list(range(length)), **columns}))
    if scores.images:
        atomic_write_bytes(cell / PER_IMAGE_FILE, _csv_gz({"image": scores.images, **scores.per_image}))
    write_cell_metrics(cell / "metrics.json", scores.records, scores.draws)


def _csv_gz(columns: dict[str, Any]) -> bytes:
    """Columns as gzipped CSV (pandas reads it; no pickle): every float with the digits that round-trip it,
    NaN as an empty field, and no time stamp in the gzip header, so equal numbers give equal bytes."""
    import gzip

    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(list(columns))
    for row in zip(*columns.values()):
        w.writerow([_fmt(v.item() if hasattr(v, "item") else v) for v in row])  # numpy scalars as Python's
    return gzip.compress(buf.getvalue().encode(), compresslevel=9, mtime=0)


def read_cell_draws(path: Path) -> dict[str, Any]:
    """The draws a cell's replicates were made on (``{}`` for a cell scored before they were kept)."""
    try:
        return dict(json.loads(Path(path).read_text()).get("draws") or {})
    except (OSError, ValueError, AttributeError):
        return {}


def read_cell_metrics(path: Path) -> list[MetricRecord]:
    """A cell's records; ValueError when the file is cut short or damaged in any way."""
    try:
        data = json.loads(Path(path).read_text())
        return [MetricRecord(**{k: (math.nan if v is None else v) for k, v in r.items()}) for r in data["records"]]
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"{type(exc).__name__}: {exc}") from None


def _fmt(v: object) -> str:
    if isinstance(v, float):
        return "" if math.isnan(v) else repr(v)
    return str(v)


def write_metrics_csv(path: Path, records: list[MetricRecord]) -> None:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(COLUMNS)
    for r in records:
        w.writerow([_fmt(getattr(r, c)) for c in COLUMNS])
    atomic_write_text(path, buf.getvalue())


def read_metrics_csv(path: Path) -> list[MetricRecord]:
    """The records of a metrics.csv; ValueError naming the line when the file is cut short or a row is damaged
    (the writer ends every row with a newline, so a file that does not end in one lost its tail)."""
    text = Path(path).read_text()
    if text and not text.endswith("\n"):
        raise ValueError(f"the file is cut short (its last line, {len(text.splitlines())}, has no end)")
    out = []
    with io.StringIO(text, newline="") as fh:
        for line, row in enumerate(csv.DictReader(fh), start=2):
            if None in row or None in row.values():
                raise ValueError(f"line {line} has {'more' if None in row else 'fewer'} fields than the header")
            out.append(
                MetricRecord(
                    suite=row["suite"],
                    method=row["method"],
                    seed=int(row["seed"]),
                    metric=row["metric"],
                    value=float(row["value"]) if row["value"] else math.nan,
                    ci_low=float(row["ci_low"]) if row["ci_low"] else math.nan,
                    ci_high=float(row["ci_high"]) if row["ci_high"] else math.nan,
                    n=int(row["n"]),
                    extractor=row["extractor"],
                    note=row["note"],
                )
            )
    return out


def git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent, capture_output=True, text=True, timeout=5
        )
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def versions() -> dict[str, str]:
    out = {"python": sys.version.split()[0], "platform": platform.platform()}
    # pillow decodes and resizes, scipy takes FID's matrix square root: both can move a number.
    for pkg in ("augan-bench", "torch", "torchvision", "torch-fidelity", "clean-fid", "lpips", "numpy", "scipy", "pillow",
                "opencv-python-headless", "pandas"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = "not installed"
    return out


@dataclass
class Manifest:
    """``manifest.json``: what a run was (every resolved config), where and with what it ran, what it skipped.

    The runner writes it; tables, paper tables and the report read it back with ``read_manifest``. Older
    manifests load too: a field they lack takes its default, a key this version does not know is kept in
    ``extra`` and written back unchanged.
    """

    suite: str = ""
    config: dict[str, Any] = field(default_factory=dict)  # the resolved RunConfig (bench run --print-config)
    method_configs: dict[str, dict[str, Any]] = field(default_factory=dict)  # method -> its resolved config
    suite_config: dict[str, Any] = field(default_factory=dict)  # the suite's preset as resolved (sizes, counts)
    seeds: list[int] = field(default_factory=list)
    device: str = ""
    device_name: str = ""
    versions: dict[str, str] = field(default_factory=dict)
    git_commit: str | None = None
    suite_root: str = ""
    n_test: int | None = None
    image_size: list[int] = field(default_factory=list)
    data_notes: list[str] = field(default_factory=list)  # counted skips in the data
    image_pixel_limit: int | None = None  # the most pixels an input may declare (bench.data.io.pixel_limit)
    weights: dict[str, str] = field(default_factory=dict)  # label -> sha256 of every weights file used
    train_engine: dict[str, Any] = field(default_factory=dict)
    skipped_metrics: dict[str, str] = field(default_factory=dict)  # metric -> why, with the fix
    cells: list[str] = field(default_factory=list)
    qualitative: dict[str, list[str]] = field(default_factory=dict)  # the grid's inputs and twins
    # method -> where its translations came from, for cells scored by `bench score` (made by outside code)
    external: dict[str, dict[str, Any]] = field(default_factory=dict)
    # learned method -> which checkpoint its numbers come from: the final one, or one chosen on the validation split
    scored_checkpoint: dict[str, str] = field(default_factory=dict)
    # learned method -> seed -> its selection on the validation split (rule, chosen step, curve), where a rule chose
    selections: dict[str, dict[str, Any]] = field(default_factory=dict)
    started: str = ""
    finished: str = ""
    schema: int = MANIFEST_SCHEMA
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def preset(self) -> str:
        return str(self.config.get("preset", ""))

    def to_dict(self) -> dict[str, Any]:
        data = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "extra"}
        return {**self.extra, **data}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Manifest":
        known = {f.name for f in fields(cls)} - {"extra"}
        return cls(**{k: v for k, v in data.items() if k in known},
                   extra={k: v for k, v in data.items() if k not in known})


def write_manifest(path: Path, manifest: Manifest) -> None:
    atomic_write_json(path, manifest.to_dict())


def read_manifest(path: Path) -> Manifest:
    """The manifest at ``path`` (an empty one when there is none yet); invalid JSON raises ``ValueError``."""
    path = Path(path)
    if not path.is_file():
        return Manifest()
    data = json.loads(path.read_text())
    if not isinstance(data, dict):
        raise ValueError(f"{path} holds {type(data).__name__}, not a manifest object")
    return Manifest.from_dict(data)
