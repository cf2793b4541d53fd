"""A finished (or partly finished) run folder, read back for tables, figures and reports.

Everything downstream of the runner reads runs through here, so a report never recomputes a
metric: numbers come from ``metrics.csv``, context from ``manifest.json``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from bench.report.tables import aggregate
from bench.results import (
    PER_IMAGE_FILE,
    REFERENCE_ROW,
    REPLICATES_FILE,
    Manifest,
    MetricRecord,
    read_cell_draws,
    read_manifest,
    read_metrics_csv,
)
from bench.errors import BenchError

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd


SUBSTITUTE_MARK = "†"
SUBSTITUTE_NOTE = (f"{SUBSTITUTE_MARK} computed with SUBSTITUTE weights (not the published files, see the manifest): "
                   "not the real metric.")


class RunFolderError(BenchError, ValueError):
    """A folder given as a run is not one (or is damaged); the message says which file and what to do."""


@dataclass
class RunResults:
    path: Path
    manifest: Manifest
    records: list[MetricRecord]
    agg: dict[tuple[str, str], dict] = field(init=False)
    _replicates: dict = field(init=False, default_factory=dict, repr=False)  # (method, seed) -> frame, read once
    _draws: dict = field(init=False, default_factory=dict, repr=False)  # (method, seed) -> draws, read once

    def __post_init__(self) -> None:
        self.agg = aggregate(self.records)

    @property
    def suite(self) -> str:
        return self.manifest.suite or (self.records[0].suite if self.records else "?")

    @property
    def label(self) -> str:
        """``suite/run-name``: how tables name a run."""
        return f"{self.suite}/{self.path.name}"

    @property
    def methods(self) -> list[str]:
        """Identity first, the compared methods in the order they were run, the upper bound last."""
        asked = [m for m in self.manifest.config.get("methods", []) if m != "all"] or self._default_methods()
        order = asked + sorted(r.method for r in self.records)
        seen = [m for m in dict.fromkeys(order) if any(r.method == m for r in self.records)]
        head = [m for m in seen if m == "identity"]
        tail = [m for m in seen if m == REFERENCE_ROW]
        return head + [m for m in seen if m not in ("identity", REFERENCE_ROW)] + tail

    def _default_methods(self) -> list[str]:
        """The suite's default methods, in their order (what a run that named none ran)."""
        from bench.suites import SUITES

        suite = SUITES.get(self.suite)
        return list(suite.default_methods) if suite is not None else []

    def metrics(self, headline_only: bool = True) -> list[str]:
        """Metric names present, in the registry's order; per-class entries (``iou/car``) unless headline_only."""
        from bench.metrics import METRICS

        present = list(dict.fromkeys(r.metric for r in self.records))
        headline = [m for m in METRICS if m in present]
        return headline if headline_only else headline + [m for m in present if m not in METRICS]

    def value(self, method: str, metric: str) -> float:
        cell = self.agg.get((method, metric))
        return math.nan if cell is None else cell["mean"]

    def extractor(self, metric: str) -> str:
        return next((r.extractor for r in self.records if r.metric == metric and r.extractor), "")

    def skip_note(self, method: str, metric: str) -> str:
        cell = self.agg.get((method, metric))
        return cell["note"] if cell is not None and math.isnan(cell["mean"]) else ""

    def is_substitute(self, method: str, metric: str) -> bool:
        """Whether the number came from weights that are not the published ones (tests, offline timing)."""
        return any(r.method == method and r.metric == metric and "SUBSTITUTE" in r.extractor for r in self.records)

    def cell_dirs(self, method: str) -> list[Path]:
        return sorted((self.path / "cells" / method).glob("seed*"))

    def seeds(self, method: str) -> list[int]:
        """The seeds scored for ``method`` (those with records)."""
        return sorted({r.seed for r in self.records if r.method == method})

    def draws(self, method: str, seed: int) -> dict:
        """The draws a cell's replicates were made on (``{}`` for a cell scored before replicates were kept)."""
        if (method, seed) not in self._draws:  # every ranked metric asks
            self._draws[(method, seed)] = read_cell_draws(self.path / "cells" / method / f"seed{seed}" / "metrics.json")
        return self._draws[(method, seed)]

    def cell_replicates(self, method: str, seed: int) -> "pd.DataFrame | None":
        """A cell's replicates: one row per resample, one column per metric (None where the cell has none)."""
        key = (method, seed)
        if key not in self._replicates:
            path = self.path / "cells" / method / f"seed{seed}" / REPLICATES_FILE
            self._replicates[key] = _read_csv_gz(path, index="resample") if path.is_file() else None
        return self._replicates[key]

    def per_image(self, method: str, seed: int | None = None) -> "pd.DataFrame":
        """One row per test image (indexed by its name) with every per-image value of a cell (the first seed by
        default): the paired metrics, the detection counts, and the statistics mIoU and mAP are pooled from."""
        seed = self.seeds(method)[0] if seed is None and self.seeds(method) else seed
        path = self.path / "cells" / method / f"seed{seed}" / PER_IMAGE_FILE
        if not path.is_file():
            raise RunFolderError(f"{path}: no per-image values for {method} seed {seed} (cells scored before they "
                                 "were kept have none: `bench run --force --methods METHOD` scores again)")
        return _read_csv_gz(path, index="image")

    def replicates(self, method: str, metric: str) -> "np.ndarray | None":
        """``method``'s replicates of ``metric`` over its seeds (``bench.stats.paired.over_seeds``): None when a cell
        lacks them."""
        from bench.stats.paired import over_seeds

        per_seed = []
        for seed in self.seeds(method):
            frame = self.cell_replicates(method, seed)
            if frame is None or metric not in frame:
                return None
            per_seed.append(frame[metric].to_numpy(dtype="float64"))
        if not per_seed:
            return None
        return over_seeds(per_seed, f"{self.protocol_key(method)}|{method}")

    def protocol_key(self, method: str | None = None) -> str:
        """The draws' key of the run's cells (of ``method``'s first seed, or of the first cell that has one)."""
        cells = [(method, s) for s in self.seeds(method)] if method else [
            (m, s) for m in self.methods for s in self.seeds(m)]
        return next((k for m, s in cells if (k := self.draws(m, s).get("key"))), "")

    def to_dataframe(self) -> "pd.DataFrame":
        """The run's records in long format: one row per (method, seed, metric), the ``metrics.csv`` columns."""
        from bench.report.frames import records_frame

        return records_frame(self.records)

    def summary(self, per_class: bool = False) -> "pd.DataFrame":
        """Methods x metrics, as ``tables/summary.md`` shows them: columns (metric, statistic) with statistics
        mean (over seeds), ci_low and ci_high (95% bootstrap CI over test images, single seed), std (over
        seeds) and n_seeds; rows in the tables' order (identity first, the day-twin upper bound last)."""
        from bench.report.frames import aggregate_frame, summary_frame

        return summary_frame(aggregate_frame(self.to_dataframe()), self.methods, self.metrics(not per_class))


def _read_csv_gz(path: Path, index: str) -> "pd.DataFrame":
    import pandas as pd

    try:
        return pd.read_csv(path, compression="gzip", index_col=index, keep_default_na=False, na_values=[""],
                           dtype={index: str} if index == "image" else None)
    except (OSError, ValueError, EOFError) as exc:
        raise RunFolderError(f"{path}: damaged ({type(exc).__name__}: {exc}); score the cell again with `bench run "
                             "--force --methods METHOD` (or `bench score --force`)") from None


def load_run(path: Path) -> RunResults:
    """Read ``metrics.csv`` and ``manifest.json`` of a run folder (``results/<suite>/<name>``)."""
    path = Path(path)
    if not path.is_dir():
        raise RunFolderError(f"{path}: no such run folder. Give a folder that `bench run` wrote, "
                             "e.g. results/synthetic-night/quick")
    metrics = path / "metrics.csv"
    if not metrics.is_file():
        hint = ""
        if any(path.glob("*/metrics.csv")):
            hint = f" (it holds run folders: {', '.join(sorted(p.parent.name for p in path.glob('*/metrics.csv')))})"
        raise RunFolderError(f"{path} is not a run folder: {metrics.name} is missing{hint}. "
                             "Give results/<suite>/<run-name>, or finish the run with `bench run` first")
    try:
        records = read_metrics_csv(metrics)
    except (KeyError, ValueError) as exc:
        raise RunFolderError(f"{metrics}: damaged, or not a metrics file of this version ({exc}); re-create it "
                             "with `bench run` on this folder (it rebuilds metrics.csv from the finished cells)") from None
    manifest_path = path / "manifest.json"
    try:
        manifest = read_manifest(manifest_path)
    except ValueError as exc:
        raise RunFolderError(f"{manifest_path}: not a valid manifest ({exc}); re-run `bench run` on this folder "
                             "to rewrite it (finished cells are kept)") from None
    return RunResults(path, manifest, records)
