"""Published tables as data, and reported vs. reproduced side by side.

A paper is one TOML file in ``bench/report/papers/`` (schema below; shipped as package data and read with
``importlib.resources``, so an installed wheel has them too); adding a paper is adding a file.

    id, title, source            strings; ``source`` names the paper and table the numbers come from
    notes                        list of strings printed under the table
    [suites.<key>]               label, suite (an augan-bench suite name), protocol (the source's own)
    [[columns]]                  suite (a key of [suites]), metric (an augan-bench metric name)
    [[rows]]                     method (as the source names it), ours (optional: our method name),
                                 <suite key> = { <metric> = value, ... } for the numbers printed
"""

from __future__ import annotations

import math
import tomllib
from importlib import resources
from importlib.resources.abc import Traversable
from dataclasses import dataclass
from pathlib import Path

from bench.metrics import METRICS, metric_label
from bench.report.render import Cell, Table
from bench.report.runs import SUBSTITUTE_MARK, SUBSTITUTE_NOTE, RunResults
from bench.report.tables import DECIMALS, external_notes
from bench.errors import BenchError

# The published tables, as package data (a Traversable: a folder in a checkout or an installed wheel alike).
PAPERS: Traversable = resources.files("bench.report").joinpath("papers")


class PaperError(BenchError, ValueError):
    """A paper data file is missing or malformed; the message names the file and the field."""


@dataclass(frozen=True)
class PaperColumn:
    suite_key: str
    metric: str


@dataclass(frozen=True)
class PaperRow:
    method: str
    ours: str | None
    values: dict[tuple[str, str], float]  # (suite key, metric) -> reported number


@dataclass(frozen=True)
class PaperSuite:
    key: str
    label: str
    suite: str
    protocol: str


@dataclass(frozen=True)
class Paper:
    id: str
    title: str
    source: str
    notes: tuple[str, ...]
    suites: dict[str, PaperSuite]
    columns: tuple[PaperColumn, ...]
    rows: tuple[PaperRow, ...]
    path: Path


def available_papers(directory: Path | Traversable = PAPERS) -> list[str]:
    return sorted(p.name[: -len(".toml")] for p in directory.iterdir() if p.name.endswith(".toml"))


def load_paper(name: str, directory: Path | Traversable = PAPERS) -> Paper:
    """``name`` is a paper id (a file ``<id>.toml`` in ``directory``) or the path of a TOML file."""
    path: Path | Traversable = Path(name)
    if path.suffix != ".toml" or not path.is_file():
        path = directory.joinpath(f"{name}.toml")
    if not path.is_file():
        known = ", ".join(available_papers(directory)) or "none"
        raise PaperError(f"unknown paper {name!r}. Known papers: {known}; "
                         "or give the path of a .toml file in the format of bench/report/papers/")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise PaperError(f"{path}: not valid TOML ({exc})") from None
    return _parse(data, Path(str(path)))


def _parse(data: dict, path: Path) -> Paper:
    def need(mapping: dict, key: str, where: str, kind: type = str):
        if key not in mapping:
            raise PaperError(f"{path}: {where} has no {key!r}")
        if not isinstance(mapping[key], kind):
            raise PaperError(f"{path}: {where}.{key} should be a {kind.__name__}, got {mapping[key]!r}")
        return mapping[key]

    suites = {}
    for key, s in need(data, "suites", "the file", dict).items():
        where = f"[suites.{key}]"
        suites[key] = PaperSuite(key, need(s, "label", where), need(s, "suite", where), need(s, "protocol", where))
    columns = []
    for i, c in enumerate(need(data, "columns", "the file", list)):
        where = f"[[columns]] #{i + 1}"
        key, metric = need(c, "suite", where), need(c, "metric", where)
        if key not in suites:
            raise PaperError(f"{path}: {where} names suite {key!r}, which is not under [suites] "
                             f"({', '.join(suites)})")
        if metric not in METRICS:
            raise PaperError(f"{path}: {where} names metric {metric!r}; augan-bench metrics: {', '.join(METRICS)}")
        columns.append(PaperColumn(key, metric))
    rows = []
    for i, r in enumerate(need(data, "rows", "the file", list)):
        where = f"[[rows]] #{i + 1}"
        values = {}
        for key in r.keys() - {"method", "ours"}:
            if key not in suites:
                raise PaperError(f"{path}: {where} has numbers for {key!r}, which is not under [suites]")
            for metric, v in need(r, key, where, dict).items():
                if PaperColumn(key, metric) not in columns:
                    raise PaperError(f"{path}: {where} gives {key}.{metric}, which no [[columns]] entry shows")
                if isinstance(v, bool) or not isinstance(v, (int, float)):
                    raise PaperError(f"{path}: {where} {key}.{metric} should be a number, got {v!r}")
                values[(key, metric)] = float(v)
        ours = r.get("ours")
        if ours is not None and not isinstance(ours, str):
            raise PaperError(f"{path}: {where}.ours should be a method name, got {ours!r}")
        rows.append(PaperRow(need(r, "method", where), ours, values))
    notes = data.get("notes", [])
    return Paper(need(data, "id", "the file"), need(data, "title", "the file"), need(data, "source", "the file"),
                 tuple(notes), suites, tuple(columns), tuple(rows), path)


# --- reported vs. reproduced ---------------------------------------------------------------------------------

def _fmt(metric: str, v: float, signed: bool = False) -> str:
    d = DECIMALS.get(metric, 2)
    return f"{v:+.{d}f}" if signed else f"{v:.{d}f}"


def _runs_by_suite(paper: Paper, runs: list[RunResults]) -> tuple[dict[str, RunResults], list[str]]:
    wanted = {s.suite for s in paper.suites.values()}
    by_suite: dict[str, RunResults] = {}
    unused = []
    for run in runs:
        if run.suite not in wanted:
            unused.append(f"Run {run.label} (suite {run.suite}) matches no column of this table; its suites: "
                          f"{', '.join(sorted(wanted))}.")
            continue
        if run.suite in by_suite:
            raise PaperError(f"two runs of suite {run.suite}: {by_suite[run.suite].path} and {run.path}. Give one run "
                             "per suite (seeds belong in one run: bench run --seeds 0-2); compare runs with "
                             "`bench tables --run A --run B`")
        by_suite[run.suite] = run
    return by_suite, unused


def _reproduced(row: PaperRow, col: PaperColumn, run: RunResults | None) -> tuple[float, str]:
    """(value, reason): the reproduced mean over seeds, or NaN and why there is none."""
    if row.ours is None:
        return math.nan, "not implemented"
    if run is None:
        return math.nan, "suite not run"
    if not any(r.method == row.ours for r in run.records):
        return math.nan, "method not run"
    if (row.ours, col.metric) not in run.agg:
        return math.nan, "not computed"
    v = run.value(row.ours, col.metric)
    if math.isnan(v):
        note = run.skip_note(row.ours, col.metric).lower()
        return math.nan, "weights missing" if "weight" in note else "data missing"
    if run.is_substitute(row.ours, col.metric):
        return v, SUBSTITUTE_MARK
    return v, ""


def paper_table(paper: Paper, runs: list[RunResults]) -> Table:
    """The source's layout; under each of its columns: reported, reproduced (ours) and ours − reported."""
    by_suite, unused = _runs_by_suite(paper, runs)
    reported: dict[tuple[int, PaperColumn], float] = {}
    ours: dict[tuple[int, PaperColumn], tuple[float, str]] = {}
    for i, row in enumerate(paper.rows):
        for col in paper.columns:
            reported[(i, col)] = row.values.get((col.suite_key, col.metric), math.nan)
            suite = paper.suites[col.suite_key]
            ours[(i, col)] = _reproduced(row, col, by_suite.get(suite.suite))

    def best(values: dict[int, float], metric: str) -> set[int]:
        finite = {i: v for i, v in values.items() if not math.isnan(v)}
        if not finite:
            return set()
        pick = max if METRICS[metric].higher_is_better else min
        b = pick(finite.values())
        return {i for i, v in finite.items() if v == b}

    table = Table(title=f"{paper.title}: reported vs. reproduced", columns=["method"])
    for col in paper.columns:
        info = METRICS[col.metric]
        label = f"{paper.suites[col.suite_key].label} {metric_label(col.metric)} {info.arrow}"
        table.groups.append((label, 3))
        table.columns += ["reported", "ours", "Δ"]
    best_rep = {col: best({i: reported[(i, col)] for i in range(len(paper.rows))}, col.metric) for col in paper.columns}
    real = {k: (math.nan if why == SUBSTITUTE_MARK else v) for k, (v, why) in ours.items()}
    best_ours = {col: best({i: real[(i, col)] for i in range(len(paper.rows))}, col.metric) for col in paper.columns}
    substitutes = False
    for i, row in enumerate(paper.rows):
        name = row.method if row.ours is None or row.ours == row.method.lower() else f"{row.method} ({row.ours})"
        cells = [Cell(name)]
        for col in paper.columns:
            rep = reported[(i, col)]
            val, why = ours[(i, col)]
            # Reported numbers keep the source's digits (up to 6 significant), not our table's decimals.
            cells.append(Cell("–") if math.isnan(rep) else Cell(f"{rep:.6g}", i in best_rep[col], rep))
            if math.isnan(val):
                cells.append(Cell(why))
            else:
                flagged = why == SUBSTITUTE_MARK
                substitutes |= flagged
                cells.append(Cell(_fmt(col.metric, val) + why, i in best_ours[col], val))
            diff = val - rep
            cells.append(Cell("–") if math.isnan(diff) else Cell(_fmt(col.metric, diff, signed=True), value=diff))
        table.rows.append(cells)
    table.notes = [f"Source: {paper.source}.", *paper.notes, *protocol_lines(paper, by_suite), *unused,
                   *([SUBSTITUTE_NOTE + " Not comparable with the reported number."] if substitutes else []),
                   "Best reported and best reproduced value per column in bold; Δ = ours − reported. "
                   "Reproduced = mean over the run's seeds."]
    return table


def protocol_lines(paper: Paper, by_suite: dict[str, RunResults]) -> list[str]:
    """Per suite: the source's protocol, then the protocol of the reproducing run (or that none ran)."""
    lines = []
    for s in paper.suites.values():
        lines.append(f"{s.label}, source protocol: {s.protocol}.")
        run = by_suite.get(s.suite)
        if run is None:
            from bench.suites import SUITES

            how = (f"bench run --suite {s.suite} --data-root PATH" if s.suite in SUITES
                   else f"augan-bench has no {s.suite} suite yet")
            lines.append(f"{s.label}, reproduced: suite {s.suite} not run ({how}).")
            continue
        lines.append(f"{s.label}, reproduced: {run_protocol(run)}.")
        lines += [f"{s.label}, {n}" for n in external_notes(run.manifest.external)]
    return lines


def run_protocol(run: RunResults) -> str:
    m = run.manifest
    parts = [f"run {run.label}"]
    if m.image_size:
        h, w = m.image_size
        parts.append(f"{h}x{w} images")
    if m.n_test is not None:
        parts.append(f"{m.n_test} test images")
    if m.preset:
        parts.append(f"preset {m.preset}")
    if m.seeds:
        parts.append("seeds " + ",".join(str(s) for s in m.seeds))
    for metric, what in (("fid", "FID"), ("lpips", "LPIPS"), ("miou", "segmenter"), ("map", "detector")):
        ext = run.extractor(metric)
        if ext:
            parts.append(f"{what}: {ext}")
    if "fid" in run.metrics():
        parts.append("FID implementation: torch-fidelity's Inception-v3 (pool3, 2048-d)")
    return ", ".join(parts)
