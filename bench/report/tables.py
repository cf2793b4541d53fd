"""Summary tables (methods x metrics) from metric records: Markdown with arrows and bold best."""

from __future__ import annotations

import math

from bench.metrics import METRICS
from bench.report.frames import aggregate_frame, records_frame
from bench.results import REFERENCE_ROW, MetricRecord

DECIMALS = {"fid": 2, "kid": 4, "fd-dinov2": 2, "fid-clean": 2, "kid-clean": 4, "lpips": 4, "psnr": 2, "ssim": 4, "sift": 2, "miou": 2, "map": 2, "ap50": 2, "hallucinated": 1, "hallucination-share": 1, "removed": 1, "fd-synthseg": 3}
LOWER_BOUND = "identity"  # the raw adverse input
GAP_METRICS = {"miou": "mIoU", "map": "mAP"}  # one downstream headline metric per task


def gap_recovered(agg: dict[tuple[str, str], dict], method: str, metric: str, reference: str) -> float:
    """(method - raw adverse) / (upper bound - raw adverse): 0 = no better than the input, 1 = as good as day."""
    try:
        m, lo, up = (agg[(k, metric)]["mean"] for k in (method, LOWER_BOUND, reference))
    except KeyError:
        return math.nan
    return (m - lo) / (up - lo) if up != lo else math.nan


def aggregate(records: list[MetricRecord]) -> dict[tuple[str, str], dict]:
    """Per (method, metric): mean over seeds, std over seeds, the CI (single seed), notes (``aggregate_frame``)."""
    frame = aggregate_frame(records_frame(records))
    return {key: {"mean": row.mean, "std": row.std, "n_seeds": int(row.n_seeds), "ci": (row.ci_low, row.ci_high),
                  "note": row.note}
            for key, row in zip(frame.index, frame.itertuples(index=False))}


SUMMARY_COLUMNS = ["suite", "method", "metric", "mean", "std_over_seeds", "n_seeds", "ci_low", "ci_high"]


def summary_csv(records: list[MetricRecord], suite: str) -> str:
    """One row per (method, metric): mean and std over seeds, and the bootstrap CI when one seed ran."""
    frame = aggregate_frame(records_frame(records)).sort_index().reset_index()
    frame.insert(0, "suite", suite)
    frame = frame.rename(columns={"std": "std_over_seeds"})[SUMMARY_COLUMNS]
    # repr keeps every digit (17 significant), as metrics.csv does; a missing number is an empty field.
    return frame.to_csv(index=False, lineterminator="\n", float_format=lambda v: repr(float(v)))


def _measured(agg: dict[tuple[str, str], dict], method: str, metric: str) -> bool:
    """A number exists (a skipped metric, e.g. no detector at smoke, has none: no gap is computed from it)."""
    return (method, metric) in agg and not math.isnan(agg[(method, metric)]["mean"])


# A downstream task ranks methods only if its model tells day from night: the upper bound (day twins) must beat
# the lower bound (raw adverse input) by MIN_TASK_GAP points with non-overlapping 95% CIs. A day-trained model
# that scores day and night alike (smoke's detector: mAP 0.00 on both) would rank methods by noise.
MIN_TASK_GAP = 1.0
TASKS = {"miou": ("segmentation", ("miou", "iou/")),
         "map": ("detection", ("map", "ap50", "ap/", "hallucinated", "hallucination-share", "removed"))}


def task_of(metric: str) -> str | None:
    """The headline metric (miou, map) of the downstream task ``metric`` belongs to, if any."""
    return next((h for h, (_, members) in TASKS.items() if metric == h or metric.startswith(members)), None)


def weak_task(agg: dict[tuple[str, str], dict], headline: str) -> str | None:
    """Why the task of ``headline`` cannot rank methods in this run, or None when it can (or cannot be judged:
    a bound is missing)."""
    if not (_measured(agg, REFERENCE_ROW, headline) and _measured(agg, LOWER_BOUND, headline)):
        return None
    up, low = agg[(REFERENCE_ROW, headline)], agg[(LOWER_BOUND, headline)]
    overlap = not math.isnan(up["ci"][0]) and not math.isnan(low["ci"][1]) and up["ci"][0] <= low["ci"][1]
    if up["mean"] - low["mean"] >= MIN_TASK_GAP and not overlap:
        return None
    name = TASKS[headline][0]
    return (f"{name} too weak to rank methods: its model scores {headline} {format_value(headline, up)} on the day "
            f"twins and {format_value(headline, low)} on the raw adverse input (a task ranks methods only when "
            f"the day twins beat the input by {MIN_TASK_GAP:g} point with non-overlapping 95% CIs); nothing is "
            f"bolded and no gap recovered is computed for {name}. A longer preset (or --segmenter/--detector) "
            "gives a model that can")


def weak_tasks(agg: dict[tuple[str, str], dict]) -> dict[str, str]:
    """headline metric -> why its task cannot rank methods, for every such task of the run."""
    return {h: why for h in TASKS if (why := weak_task(agg, h)) is not None}


def higher_is_better(metric: str) -> bool:
    """The direction of ``metric``; a per-class entry (``iou/car``, ``ap/person``) has its headline's."""
    info = METRICS.get(metric)
    if info is None and (headline := task_of(metric)) is not None:
        info = METRICS.get(headline)
    return True if info is None else info.higher_is_better


# hallucination-share is a precision: a translation that shows the detector fewer objects than the raw input has
# little to invent objects with, and its low share says nothing. It ranks only methods that remove fewer objects.
SHARE_NEEDS_FEWER_REMOVED = ("hallucination-share", "removed")


def rank_exclusions(agg: dict[tuple[str, str], dict], metric: str, methods: list[str]) -> dict[str, str]:
    """method -> why it is not ranked on ``metric`` although it has a number (none for most metrics)."""
    share, removed = SHARE_NEEDS_FEWER_REMOVED
    if metric != share or not _measured(agg, LOWER_BOUND, removed):
        return {}
    floor = agg[(LOWER_BOUND, removed)]["mean"]
    return {m: f"removes {agg[(m, removed)]['mean']:.1f} objects per 100 images, not fewer than the raw input's "
               f"{floor:.1f}" for m in methods
            if m == LOWER_BOUND or not _measured(agg, m, removed) or agg[(m, removed)]["mean"] >= floor}


FID_DIM = 2048  # Inception's pool features


def fid_size_note(records: list[MetricRecord]) -> str | None:
    """A note when FID was computed on fewer images than its feature dimension (the covariance is then singular)."""
    sizes = sorted({r.n for r in records if r.metric in ("fid", "fid-clean") and not math.isnan(r.value)
                    and r.n < FID_DIM})
    if not sizes:
        return None
    return (f"FID on {', '.join(map(str, sizes))} images, fewer than its {FID_DIM} feature dimensions: the covariance "
            "is rank-deficient and FID is biased upward by an amount that depends on N and the model (Chong & "
            "Forsyth, CVPR 2020), so compare FIDs only at equal N, and prefer KID (unbiased) at this size.")


def format_value(metric: str, cell: dict) -> str:
    d = DECIMALS.get(metric, 4)
    if math.isnan(cell["mean"]):
        return "skipped"
    s = f"{cell['mean']:.{d}f}"
    if cell["n_seeds"] > 1 and not math.isnan(cell["std"]):
        s += f" ± {cell['std']:.{d}f}"
    elif not any(math.isnan(c) for c in cell["ci"]):
        s += f" [{cell['ci'][0]:.{d}f}, {cell['ci'][1]:.{d}f}]"
    return s


def external_notes(external: dict[str, dict]) -> list[str]:
    """One table note per method scored from an outside folder (``Manifest.external``)."""
    lines = []
    for method, e in sorted(external.items()):
        text = (f"{method}: translations made outside augan-bench, scored with `bench score` from {e.get('folder', '?')} "
                f"(content sha256 {str(e.get('sha256', '?'))[:12]})")
        n, total = e.get("n_scored"), e.get("n_test")
        if e.get("missing"):
            text += (f"; scored on {n} of {total} test images, {len(e['missing'])} missing (--allow-missing): "
                     + ", ".join(e["missing"][:3]) + (", ..." if len(e["missing"]) > 3 else ""))
        if e.get("resized"):
            text += f"; {e['resized']} translation(s) resized to their input's size ({e.get('resize_filter')})"
        if e.get("aspect_changed"):
            text += (f", {e['aspect_changed']} of them from another aspect ratio (--allow-aspect-change: stretched "
                     "back as the user asked)")
        if e.get("protocol_id"):
            text += f"; protocol {e['protocol_id']} checked"
        lines.append(text + ".")
    return lines
