"""The board: checked submissions grouped by protocol, each metric with its CI and rank group, the papers' reported
rows beside them (shown, never ranked: their protocols are not ours), as ``leaderboard.json`` and ``.csv``.

Rank groups are the tables' (``bench.stats.paired.rank_groups``): submissions of one protocol share its draws, so
their replicates pair resample by resample although they were scored on different machines, and ``#k`` on a board
is what ``bench compare`` says of the same cells.
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from bench.leaderboard.check import Checked
from bench.leaderboard.files import as_float, floats
from bench.metrics import METRICS
from bench.report.tables import higher_is_better, rank_exclusions, task_of, weak_task
from bench.results import REFERENCE_ROW
from bench.stats.paired import over_seeds, pairwise, rank_groups

PAIRWISE_UP_TO = 30  # submissions of one protocol for which leaderboard.json lists every pair's difference and p
PROVENANCE_MARKS = {"bench run": "trained and translated with bench run", "bench score":
                    "translated by the submitter's own code, scored with bench score", "paper": "reported in a paper"}


@dataclass
class Row:
    method: str
    provenance: str
    description: str = ""
    url: str = ""
    file: str = ""  # the submission, relative to the repository
    seeds: list[int] = field(default_factory=list)
    values: dict[str, tuple[float, float, float]] = field(default_factory=dict)  # metric -> (value, ci low, high)
    substitute: set[str] = field(default_factory=set)  # metrics computed with substitute weights (offline trials)
    ranks: dict[str, tuple[int, bool, float]] = field(default_factory=dict)  # metric -> (rank, bold, p vs best)
    unranked: dict[str, str] = field(default_factory=dict)  # metric -> why not ranked
    worst: dict[str, list[str]] = field(default_factory=dict)  # per-image metric -> ten worst images (first seed)


@dataclass
class Tab:
    """One protocol: its submissions, ranked per metric, and the papers' rows for its suite."""

    id: str
    suite: str
    preset: str
    image_size: list[int]
    n_test: int
    n_reference: int
    metrics: list[str]
    rows: list[Row]
    reported: list[dict[str, Any]]
    notes: dict[str, str] = field(default_factory=dict)  # metric -> why nothing is ranked on it
    pairs: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # metric -> every pair (small boards)

    @property
    def label(self) -> str:
        size = "x".join(map(str, self.image_size)) if any(self.image_size) else "native size"
        return f"{self.suite} · {self.preset} · {size}"


@dataclass
class Entry:
    """What the board keeps of a checked submission: arrays instead of JSON lists (made in the checking process)."""

    protocol: str
    method: dict[str, Any]
    seeds: list[int]
    metrics: dict[str, dict[str, Any]]
    replicates: dict[str, np.ndarray]  # metric -> replicates over the seeds (``over_seeds``), as tables rank them
    worst: dict[str, list[str]]  # per-image metric -> its ten worst images (first seed)


def entry(sub: dict[str, Any]) -> Entry:
    """A checked submission reduced to an ``Entry`` (``check``'s ``keep``)."""
    key = f"{sub['protocol']['draws']['key']}|{sub['method']['name']}"
    replicates = {}
    for metric in sub["metrics"]:
        per_seed = [c["replicates"].get(metric) for c in sub["cells"]]
        if all(r is not None for r in per_seed):
            replicates[metric] = over_seeds([floats(r) for r in per_seed], key)
    first = sub["cells"][0]["per_image"]
    worst = {}
    for metric, info in METRICS.items():
        col = first["columns"].get(metric)
        if col is None:
            continue
        values = floats(col)
        order = np.argsort(values if info.higher_is_better else -values, kind="stable")
        worst[metric] = [first["images"][i] for i in order[:10] if math.isfinite(values[i])]
    return Entry(sub["protocol"]["id"], sub["method"], list(sub["seeds"]), sub["metrics"], replicates, worst)


def build(checked: Checked) -> list[Tab]:
    """The board's tabs from a check made with ``keep=entry``, one per protocol with a submission, in suite/preset
    order."""
    by_protocol: dict[str, list[tuple[Entry, str]]] = {}
    for path, e in checked.submissions.items():
        by_protocol.setdefault(e.protocol, []).append((e, str(path.relative_to(checked.root))))
    tabs = [_tab(checked.protocols[pid], entries) for pid, entries in by_protocol.items()]
    return sorted(tabs, key=lambda t: (t.suite, t.preset, t.id))


def _tab(protocol: dict[str, Any], entries: list[tuple[Entry, str]]) -> Tab:
    order = {"identity": 0, REFERENCE_ROW: 2}
    entries = sorted(entries, key=lambda x: (order.get(x[0].method["name"], 1), x[0].method["name"]))
    declared = list(protocol["settings"]["metrics"])
    present = {m for e, _ in entries for m, r in e.metrics.items() if r["value"] is not None}
    metrics = [m for m in METRICS if m in declared and m in present]
    rows = [_row(e, file) for e, file in entries]
    tab = Tab(protocol["protocol_id"], protocol["suite"], protocol["preset"], list(protocol["image_size"]),
              protocol["n_test"], protocol["n_reference"], metrics, rows, reported_rows(protocol["suite"]))
    agg = {(r.method, m): {"mean": v[0], "ci": (v[1], v[2])} for r in rows for m, v in r.values.items()}
    replicates = {e.method["name"]: e.replicates for e, _ in entries}
    for metric in metrics:
        _rank(tab, metric, agg, replicates)
    return tab


def _row(e: Entry, file: str) -> Row:
    row = Row(e.method["name"], e.method["provenance"], e.method.get("description", ""), e.method.get("url", ""), file,
              e.seeds, worst=e.worst)
    for metric, rec in e.metrics.items():
        if rec["value"] is None:
            continue
        row.values[metric] = (float(rec["value"]), as_float(rec["ci"][0]), as_float(rec["ci"][1]))
        if "SUBSTITUTE" in (rec.get("extractor") or ""):
            row.substitute.add(metric)
    return row


def _rank(tab: Tab, metric: str, agg: dict, replicates: dict[str, dict[str, np.ndarray]]) -> None:
    info = METRICS.get(metric)
    if info is not None and not info.ranked:
        tab.notes[metric] = "information only: never ranked"
        return
    headline = task_of(metric)
    if headline is not None and (why := weak_task(agg, headline)) is not None:
        tab.notes[metric] = why
        return
    candidates = [r for r in tab.rows if r.method != REFERENCE_ROW and metric in r.values]
    excluded = rank_exclusions(agg, metric, [r.method for r in candidates])
    for r in candidates:
        if r.method in excluded:
            r.unranked[metric] = excluded[r.method]
    candidates = [r for r in candidates if r.method not in excluded]
    values = {r.method: r.values[metric][0] for r in candidates}
    reps = {r.method: x for r in candidates if (x := replicates[r.method].get(metric)) is not None}
    by_name = {r.method: r for r in tab.rows}
    for name, rank in rank_groups(values, reps, higher_is_better(metric)).items():
        by_name[name].ranks[metric] = (rank.rank, rank.bold, rank.p_vs_best)
    if len(reps) <= PAIRWISE_UP_TO:
        tab.pairs[metric] = [{"a": d.a, "b": d.b, "difference": d.difference, "ci": list(d.ci), "p": d.p,
                              "p_holm": d.p_holm} for d in pairwise(values, reps).values()]


def reported_rows(suite: str) -> list[dict[str, Any]]:
    """The published tables' numbers for ``suite``: one row per (paper, method), never ranked."""
    from bench.report.paper import available_papers, load_paper

    out = []
    for pid in available_papers():
        paper = load_paper(pid)
        keys = [k for k, s in paper.suites.items() if s.suite == suite]
        for row in paper.rows:
            values = {metric: v for (key, metric), v in row.values.items() if key in keys}
            if values:
                out.append({"method": row.method, "paper": paper.id, "source": paper.source, "values": values,
                            "protocol": "; ".join(paper.suites[k].protocol for k in keys)})
    return out


def to_json(tabs: list[Tab]) -> dict[str, Any]:
    """The board as data (NaN stays NaN here; ``files.dump`` writes it as null)."""
    return {"protocols": [{
        "id": t.id, "suite": t.suite, "preset": t.preset, "image_size": t.image_size, "n_test": t.n_test,
        "n_reference": t.n_reference, "metrics": t.metrics, "notes": t.notes,
        "rows": [{"method": r.method, "provenance": r.provenance, "description": r.description, "url": r.url,
                  "file": r.file, "seeds": r.seeds,
                  "metrics": {m: {"value": v[0], "ci": [v[1], v[2]],
                                  "rank": r.ranks[m][0] if m in r.ranks else None,
                                  "bold": r.ranks[m][1] if m in r.ranks else False,
                                  "p_vs_best": r.ranks[m][2] if m in r.ranks else None,
                                  "substitute": m in r.substitute, "unranked": r.unranked.get(m)}
                              for m, v in r.values.items()},
                  "worst_images": r.worst} for r in t.rows],
        "pairs": t.pairs,
        "reported": t.reported} for t in tabs]}


def to_csv(tabs: list[Tab]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["protocol", "suite", "preset", "method", "provenance", "metric", "value", "ci_low", "ci_high", "rank",
                "bold", "substitute"])
    for t in tabs:
        for r in t.rows:
            for m, (v, lo, hi) in r.values.items():
                rank = r.ranks.get(m)
                w.writerow([t.id, t.suite, t.preset, r.method, r.provenance, m, repr(v), _csv(lo), _csv(hi),
                            rank[0] if rank else "", int(rank[1]) if rank else "", int(m in r.substitute)])
        for rep in t.reported:
            for m, v in rep["values"].items():
                w.writerow([t.id, t.suite, t.preset, rep["method"], f"paper:{rep['paper']}", m, repr(v), "", "", "",
                            "", 0])
    return buf.getvalue()


def _csv(v: float) -> str:
    return repr(v) if math.isfinite(v) else ""


def page_path(tab: Tab, row: Row) -> str:
    return f"s/{tab.id}/{row.method}.html"
