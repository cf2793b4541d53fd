"""Results as pandas data frames: the long format of ``metrics.csv``, and its aggregate over seeds.

Every table, figure and the report aggregate through ``aggregate_frame``, so a number in a notebook
(``bench.load_run(path).summary()``) is the number in ``tables/summary.md``. Nothing here imports torch.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Sequence

import pandas as pd

from bench.results import COLUMNS, MetricRecord

KEY = ["method", "metric"]
# Per (method, metric): mean and std over the scored seeds, how many seeds were scored, the 95% bootstrap CI
# over test images (only when one record exists: several seeds report their spread as std instead), a note.
AGGREGATE_COLUMNS = ["mean", "std", "n_seeds", "ci_low", "ci_high", "note"]


def records_frame(records: Sequence[MetricRecord]) -> pd.DataFrame:
    """One row per record, the ``metrics.csv`` columns; a skipped metric has NaN as its value."""
    frame = pd.DataFrame([asdict(r) for r in records], columns=COLUMNS)
    return frame.astype({"suite": str, "method": str, "seed": "int64", "metric": str, "value": "float64",
                         "ci_low": "float64", "ci_high": "float64", "n": "int64", "extractor": str, "note": str})


def aggregate_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """Indexed by (method, metric) in first-seen order, with ``AGGREGATE_COLUMNS``."""
    groups = frame.groupby(KEY, sort=False)
    first = frame.drop_duplicates(KEY).set_index(KEY)
    single = groups.size() == 1
    notes = frame[frame["note"] != ""].drop_duplicates(KEY).set_index(KEY)["note"]
    out = pd.DataFrame({
        "mean": groups["value"].mean(),  # skipped (NaN) values are left out
        "std": groups["value"].std(ddof=1),  # NaN below two scored seeds
        "n_seeds": groups["value"].count(),
        "ci_low": first["ci_low"].where(single),
        "ci_high": first["ci_high"].where(single),
    })
    out["note"] = notes.reindex(out.index).fillna("")
    return out[AGGREGATE_COLUMNS]


def summary_frame(aggregate: pd.DataFrame, methods: Sequence[str], metrics: Sequence[str]) -> pd.DataFrame:
    """Methods x metrics: columns (metric, statistic) for mean, ci_low, ci_high, std, n_seeds."""
    stats = ["mean", "ci_low", "ci_high", "std", "n_seeds"]
    wide = aggregate[stats].unstack("metric").swaplevel(axis=1)
    columns = pd.MultiIndex.from_product([list(metrics), stats], names=["metric", "statistic"])
    return wide.reindex(index=pd.Index(list(methods), name="method"), columns=columns)
