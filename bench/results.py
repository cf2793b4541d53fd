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
from dataclasses import asdict, dataclass, fields
from importlib import metadata
from pathlib import Path

from bench.atomic import atomic_write_json, atomic_write_text

SCHEMA_VERSION = 1
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


def write_cell_metrics(path: Path, records: list[MetricRecord]) -> None:
    atomic_write_json(path, {"schema": SCHEMA_VERSION, "records": [asdict(r) for r in records]})


def read_cell_metrics(path: Path) -> list[MetricRecord]:
    data = json.loads(Path(path).read_text())
    return [MetricRecord(**{k: (math.nan if v is None else v) for k, v in r.items()}) for r in data["records"]]


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
    out = []
    with open(path, newline="") as fh:
        for row in csv.DictReader(fh):
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
    for pkg in ("augan-bench", "torch", "torchvision", "torch-fidelity", "lpips", "numpy", "opencv-python-headless"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = "not installed"
    return out


def write_manifest(path: Path, manifest: dict) -> None:
    atomic_write_json(path, manifest)
