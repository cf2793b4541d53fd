"""Summary tables (methods x metrics) from metric records: Markdown with arrows and bold best."""

from __future__ import annotations

import math
from collections import defaultdict

import numpy as np

from bench.metrics import METRICS
from bench.results import MetricRecord

DECIMALS = {"fid": 2, "kid": 4, "fd-dinov2": 2, "lpips": 4, "psnr": 2, "ssim": 4, "sift": 2, "miou": 2, "map": 2, "ap50": 2, "fd-synthseg": 3}
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
    """Per (method, metric): mean over seeds, std over seeds, the CI (single seed), notes."""
    groups: dict[tuple[str, str], list[MetricRecord]] = defaultdict(list)
    for r in records:
        groups[(r.method, r.metric)].append(r)
    out = {}
    for key, rs in groups.items():
        vals = np.array([r.value for r in rs if not r.skipped], dtype=np.float64)
        cell = {"n_seeds": len(vals), "note": next((r.note for r in rs if r.note), "")}
        cell["mean"] = float(vals.mean()) if len(vals) else math.nan
        cell["std"] = float(vals.std(ddof=1)) if len(vals) > 1 else math.nan
        cell["ci"] = (rs[0].ci_low, rs[0].ci_high) if len(rs) == 1 else (math.nan, math.nan)
        out[key] = cell
    return out


SUMMARY_COLUMNS = ["suite", "method", "metric", "mean", "std_over_seeds", "n_seeds", "ci_low", "ci_high"]


def summary_csv(records: list[MetricRecord], suite: str) -> str:
    """One row per (method, metric): mean and std over seeds, and the bootstrap CI when one seed ran."""
    import csv
    import io

    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(SUMMARY_COLUMNS)
    for (method, metric), cell in sorted(aggregate(records).items()):
        vals = [cell["mean"], cell["std"], cell["n_seeds"], *cell["ci"]]
        w.writerow([suite, method, metric, *("" if isinstance(v, float) and math.isnan(v) else repr(v) for v in vals)])
    return buf.getvalue()


def best_methods(agg: dict[tuple[str, str], dict], methods: list[str], metric: str) -> set[str]:
    vals = {m: agg[(m, metric)]["mean"] for m in methods if (m, metric) in agg and not math.isnan(agg[(m, metric)]["mean"])}
    if not vals:
        return set()
    pick = max if METRICS[metric].higher_is_better else min
    best = pick(vals.values())
    return {m for m, v in vals.items() if v == best}


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


def summary_markdown(records: list[MetricRecord], suite: str, method_order: list[str] | None = None,
                     reference: str | None = None) -> str:
    """Methods x metrics. ``reference`` names the upper-bound row (downstream scores of the day images):
    it is shown last, never bolded, and with the lower bound (identity) it gives the gap-recovered column."""
    agg = aggregate(records)
    methods = method_order or sorted({r.method for r in records})
    compared = [m for m in methods if m != reference]
    metrics = [m for m in METRICS if any(r.metric == m for r in records)]
    gaps = [m for m in GAP_METRICS if reference is not None and m in metrics
            and (LOWER_BOUND, m) in agg and (reference, m) in agg]
    head = ["method"] + [f"{m.upper() if m in ('fid', 'kid') else m} {METRICS[m].arrow}" for m in metrics]
    head += [f"{GAP_METRICS[m]} gap recovered ↑" for m in gaps]
    lines = [f"# {suite}: summary", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    notes: dict[str, str] = {}
    for method in methods:
        row = [f"{method} (upper bound)" if method == reference else method]
        for metric in metrics:
            cell = agg.get((method, metric))
            if cell is None:
                row.append("–")
                continue
            text = format_value(metric, cell)
            if math.isnan(cell["mean"]) and cell["note"]:
                notes.setdefault(metric, cell["note"])
            if method in best_methods(agg, compared, metric):
                text = f"**{text}**"
            row.append(text)
        for metric in gaps:
            g = gap_recovered(agg, method, metric, reference)
            row.append("–" if math.isnan(g) else f"{g:.2f}")
        lines.append("| " + " | ".join(row) + " |")
    lines += ["", "↑ higher is better, ↓ lower is better; best in bold. Single seed: 95% bootstrap CI over test "
              "images in brackets; several seeds: mean ± std over seeds."]
    if gaps:
        names = " and ".join(GAP_METRICS[m] for m in gaps)
        lines.append(f"Gap recovered = (method − {LOWER_BOUND}) / ({reference} − {LOWER_BOUND}) in {names}: 0 is the "
                     "raw adverse input, 1 the day image.")
    extractors = sorted({r.extractor for r in records if r.extractor})
    if extractors:
        lines.append("Weights: " + "; ".join(extractors) + ".")
    by_note: dict[str, list[str]] = {}
    for metric, note in notes.items():
        by_note.setdefault(note, []).append(metric)
    for note, names in by_note.items():
        lines.append(f"- {', '.join(names)} skipped: {note}")
    return "\n".join(lines) + "\n"
