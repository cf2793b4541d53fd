"""Which differences between methods the data supports: rank groups for the tables, paired comparisons for
``bench compare`` and ``bench tables --vs``, rankings over suites for ``bench tables --aggregate``.

Numbers come from the runs' files only: each cell's replicates on its protocol's shared draws
(``replicates.csv.gz``) and the values in ``metrics.csv``. Two cells are compared only when their draws' keys are
equal, that is when they were scored on the same protocol (suite, preset, size, test and reference sets).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from bench.errors import BenchError
from bench.metrics import METRICS
from bench.report.runs import RunResults
from bench.report.tables import higher_is_better, rank_exclusions, task_of, weak_task
from bench.results import REFERENCE_ROW
from bench.stats.paired import PairedDifference, Rank, holm, paired_difference, rank_groups


class ComparisonError(BenchError, ValueError):
    """Two cells that cannot be compared (another protocol, no replicates, an unknown method or metric)."""


def ranked(metric: str) -> bool:
    """Whether tables rank ``metric`` (per-class entries such as ``iou/car`` are ranked like their headline)."""
    info = METRICS.get(metric)
    return info.ranked if info is not None else True


@dataclass
class MetricRanks:
    """One metric of one run: each method's rank and bold flag, or why nothing is ranked (``why``)."""

    ranks: dict[str, Rank]
    why: str = ""
    unranked: dict[str, str] | None = None  # method -> why it is not ranked on this metric


def metric_ranks(run: RunResults, metric: str, methods: list[str]) -> MetricRanks:
    """Rank groups of ``methods`` on ``metric`` in ``run`` (the upper-bound row never takes part)."""
    if not any(math.isfinite(run.value(m, metric)) for m in methods):
        return MetricRanks({})
    if not ranked(metric):
        return MetricRanks({}, "information only")
    headline = task_of(metric)
    if headline is not None and (why := weak_task(run.agg, headline)) is not None:
        return MetricRanks({}, why)
    candidates = [m for m in methods if m != REFERENCE_ROW and math.isfinite(run.value(m, metric))]
    excluded = rank_exclusions(run.agg, metric, candidates)
    candidates = [m for m in candidates if m not in excluded]
    values = {m: run.value(m, metric) for m in candidates}
    reps = {m: r for m in candidates if (r := run.replicates(m, metric)) is not None}
    keys = {run.protocol_key(m) for m in reps}
    if len(keys) > 1:
        return MetricRanks({}, "cells of different protocols", excluded)
    if len(reps) < len(candidates):
        # Cells scored before replicates were kept: the best mean alone, as tables did before.
        if not values:
            return MetricRanks({}, "", excluded)
        sign = 1 if higher_is_better(metric) else -1
        best = max(values.values(), key=lambda v: sign * v)
        return MetricRanks({m: Rank(0, v == best, math.nan) for m, v in values.items()},
                           "no replicates", excluded)
    return MetricRanks(rank_groups(values, reps, higher_is_better(metric)), "", excluded)


def compare_cells(run_a: RunResults, a: str, run_b: RunResults, b: str, metric: str) -> PairedDifference:
    """The paired difference value(a) - value(b) on ``metric`` (one comparison: no correction)."""
    for run, m in ((run_a, a), (run_b, b)):
        if m not in run.methods:
            raise ComparisonError(f"{run.path}: no method {m!r}; it has {', '.join(run.methods)}")
        if (m, metric) not in run.agg:
            raise ComparisonError(f"{run.path}: {m} has no {metric!r}; its metrics: "
                                  f"{', '.join(x for (y, x) in run.agg if y == m)}")
        if not math.isfinite(run.value(m, metric)):
            raise ComparisonError(f"{run.path}: {m}'s {metric} was not computed ({run.skip_note(m, metric)})")
    refuse_other_protocol(run_a, a, run_b, b)
    reps = [run.replicates(m, metric) for run, m in ((run_a, a), (run_b, b))]
    for (run, m), r in zip(((run_a, a), (run_b, b)), reps):
        if r is None:
            raise ComparisonError(f"{run.path}: {m} has no replicates of {metric} (scored before they were kept); "
                                  f"score it again: bench run --force --methods {m}")
    return paired_difference(run_a.value(a, metric), run_b.value(b, metric), reps[0], reps[1], a, b)


def refuse_other_protocol(run_a: RunResults, a: str, run_b: RunResults, b: str) -> None:
    """Cells are compared only on the same draws; otherwise the error names what differs."""
    da = run_a.draws(a, run_a.seeds(a)[0]) if run_a.seeds(a) else {}
    db = run_b.draws(b, run_b.seeds(b)[0]) if run_b.seeds(b) else {}
    if da.get("key") and da.get("key") == db.get("key"):
        return
    if not da.get("key") or not db.get("key"):
        raise ComparisonError("a cell was scored before replicates were kept; score it again with --force")
    pa, pb = da.get("protocol", {}), db.get("protocol", {})
    def shown(key: str, v: object) -> str:
        if key == "size" and isinstance(v, list) and len(v) == 2:
            return "images at their own sizes" if not any(v) else f"{v[0]}x{v[1]}"
        return repr(v)

    what = [f"{k}: {shown(k, pa.get(k))} vs {shown(k, pb.get(k))}" for k in sorted(set(pa) | set(pb))
            if pa.get(k) != pb.get(k)]
    raise ComparisonError(f"{run_a.path} ({a}) and {run_b.path} ({b}) were scored on different protocols, so their "
                          f"numbers cannot be paired: {'; '.join(what) or 'the draws differ'}")


def versus(run: RunResults, baseline: str, methods: list[str], metric: str) -> dict[str, PairedDifference]:
    """Each method's paired difference to ``baseline`` on ``metric``, Holm-corrected over the methods."""
    out = {m: compare_cells(run, m, run, baseline, metric) for m in methods if m != baseline}
    adjusted = holm([d.p for d in out.values()])
    return {m: PairedDifference(d.a, d.b, d.difference, d.ci, d.p, d.resamples, q)
            for (m, d), q in zip(out.items(), adjusted)}
