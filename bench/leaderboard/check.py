"""``bench leaderboard check DIR``: every submission file recomputed from what it holds, before a board shows it.

What is refused, each problem naming the file and the field: a file that is not strict JSON or not of a known
schema; a protocol the repository does not hold, or one whose id is not the hash of its content; a submission
whose protocol fields, settings or draws differ from its protocol's; a number made with substitute weights; n other
than the protocol's count; per-image values not over the protocol's test images in order; a value its own per-image
values do not reproduce (every metric that decomposes over images: PSNR, SSIM, LPIPS, SIFT, the detection rates,
mIoU and per-class IoU from the per-image confusion statistics); replicates the per-image values do not reproduce
on the protocol's draws (the draws are a function of the protocol's key, so they are made again here); a CI that is
not its replicates' 95% interval; a summary that is not its seeds' mean; two files claiming one (protocol, method).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from bench.leaderboard.files import (
    NAME_RE,
    PROTOCOLS,
    PROVENANCES,
    SCHEMA,
    SCHEMA_VERSION,
    SUBMISSIONS,
    as_float,
    floats,
    load,
)

VALUE_RTOL = 1e-9  # values and per-image values keep every digit
REPLICATE_RTOL = 2e-6  # replicates keep 7 significant digits (files.REPLICATE_DIGITS)
MEAN_METRICS = {"psnr": 1.0, "ssim": 1.0, "lpips": 1.0, "sift": 1.0, "hallucinated": 100.0, "removed": 100.0}


@dataclass
class Checked:
    """A checked repository: the submissions that passed (path -> content, or what ``keep`` made of it), the
    protocols, and the problems."""

    root: Path
    protocols: dict[str, dict[str, Any]] = field(default_factory=dict)
    submissions: dict[Path, Any] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def check(root: Path, allow_substitute: bool = False, keep: Callable[[dict[str, Any]], Any] | None = None,
          workers: int | None = None) -> Checked:
    """Check every protocol and submission file under ``root`` (the layout of ``bench leaderboard init``); the
    submissions that pass are kept whole, or as ``keep`` reduces them (a board keeps arrays, not JSON lists).
    ``workers``: processes that check files (default: one per core from PARALLEL_FROM files on)."""
    from bench.protocol import exported_names, verify_protocol_id

    root = Path(root)
    out = Checked(root)
    if not (root / PROTOCOLS).is_dir() or not (root / SUBMISSIONS).is_dir():
        out.problems.append(f"{root}: not a results repository (it needs {PROTOCOLS}/ and {SUBMISSIONS}/); make one "
                            "with `bench leaderboard init DIR`, or pack into it with `bench pack RUN --out DIR`")
        return out
    names: dict[str, dict[str, list[str]]] = {}  # protocol id -> its test and reference names, listed once
    for path in sorted((root / PROTOCOLS).glob("*.json")):
        try:
            protocol = load(path)
        except ValueError as exc:
            out.problems.append(f"{_rel(path, root)}: {exc}")
            continue
        why = verify_protocol_id(protocol) if isinstance(protocol, dict) else "not a protocol object"
        if why is None and path.stem != protocol["protocol_id"]:
            why = f"the file is named {path.stem} but holds protocol {protocol['protocol_id']}"
        if why is not None:
            out.problems.append(f"{_rel(path, root)}: protocol_id: {why}")
            continue
        counted = [(k, protocol.get(k), len(exported_names(protocol, folder))) for k, folder in
                   (("n_test", "testA"), ("n_reference", "testB"))]
        wrong = [f"{k}: {v}, but it lists {n} {'test' if k == 'n_test' else 'reference'} images"
                 for k, v, n in counted if v != n]
        if wrong:
            out.problems += [f"{_rel(path, root)}: {w}" for w in wrong]
            continue
        out.protocols[protocol["protocol_id"]] = protocol
        names[protocol["protocol_id"]] = {f: exported_names(protocol, f) for f in ("testA", "testB")}
    paths = sorted((root / SUBMISSIONS).rglob("*.json"))
    claimed: dict[tuple[str, str], Path] = {}
    for path, problems, key, kept in _check_files(paths, root, out.protocols, names, allow_substitute, keep, workers):
        if not problems and key in claimed:
            problems = [f"{_rel(path, root)}: method.name: {key[1]!r} on protocol {key[0]} is claimed by "
                        f"{_rel(claimed[key], root)} too; keep one file per (protocol, method)"]
        if problems:
            out.problems += problems
        else:
            claimed[key] = path
            out.submissions[path] = kept
    return out


PARALLEL_FROM = 40  # files: below this a worker process costs more than it saves
_JOB: dict[str, Any] = {}  # what the worker processes inherit (fork): root, protocols and names, the flag, keep


def _check_files(paths: list[Path], root: Path, protocols: dict[str, dict[str, Any]],
                 names: dict[str, dict[str, list[str]]], allow_substitute: bool,
                 keep: Callable[[dict[str, Any]], Any] | None, workers: int | None):
    """(path, problems, (protocol id, method), what ``keep`` made of it) for each file; parsing JSON dominates a large
    board, so the files are spread over one process per core where the platform forks."""
    import multiprocessing
    import os

    _JOB.update(root=root, protocols=protocols, names=names, allow_substitute=allow_substitute, keep=keep)
    if workers is None:
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1
        workers = min(cores, len(paths) // 20) if len(paths) >= PARALLEL_FROM else 1
    if workers < 2 or "fork" not in multiprocessing.get_all_start_methods():
        yield from map(_check_one, paths)
        return
    with multiprocessing.get_context("fork").Pool(workers, initializer=_one_blas_thread) as pool:
        yield from pool.imap(_check_one, paths, chunksize=8)


def _one_blas_thread() -> None:
    """A worker per core already uses every core: BLAS threads on top of it slow the replicates' products 2x."""
    from threadpoolctl import threadpool_limits

    _JOB["blas"] = threadpool_limits(1)  # kept referenced: the limit holds while the worker lives


def _check_one(path: Path) -> tuple[Path, list[str], tuple[str, str] | None, Any]:
    root = _JOB["root"]
    problems: list[str] = []
    where = _rel(path, root)

    def problem(field_: str, text: str) -> None:
        problems.append(f"{where}: {field_}: {text}")

    try:
        sub = load(path)
    except ValueError as exc:
        return path, [f"{where}: {exc}"], None, None
    try:
        _check_submission(sub, path, root, _JOB["protocols"], _JOB["names"], _JOB["allow_substitute"], problem)
    except (KeyError, TypeError, ValueError, IndexError, AttributeError) as exc:
        problem("(structure)", f"malformed ({type(exc).__name__}: {exc}); make it with `bench pack`")
    if problems:
        return path, problems, None, None
    keep = _JOB["keep"]
    return path, [], (sub["protocol"]["id"], sub["method"]["name"]), sub if keep is None else keep(sub)


def _rel(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)


def _check_submission(sub: dict[str, Any], path: Path, root: Path, protocols: dict[str, dict[str, Any]],
                      names: dict[str, dict[str, list[str]]], allow_substitute: bool,
                      problem: Callable[[str, str], None]) -> None:
    if not isinstance(sub, dict) or sub.get("schema") != SCHEMA:
        problem("schema", f"{sub.get('schema') if isinstance(sub, dict) else type(sub).__name__!r} is not "
                          f"{SCHEMA!r}; make the file with `bench pack`")
        return
    if sub.get("schema_version") != SCHEMA_VERSION:
        problem("schema_version", f"{sub.get('schema_version')!r} is unknown to this version (it reads "
                                  f"{SCHEMA_VERSION}); update augan-bench or pack again")
        return
    proto, method = sub["protocol"], sub["method"]
    pid, name = proto["id"], method["name"]
    if not isinstance(name, str) or not NAME_RE.match(name):
        problem("method.name", f"{name!r} is not a method name (lower-case letters, digits, '.', '_', '-')")
        return
    expected = root / SUBMISSIONS / str(pid) / f"{name}.json"
    if path != expected:
        problem("method.name", f"the file of {name!r} on protocol {pid} belongs at {_rel(expected, root)}")
    protocol = protocols.get(pid)
    if protocol is None:
        problem("protocol.id", f"unknown protocol {pid!r}: {PROTOCOLS}/{pid}.json is not in this repository (or "
                               "failed its check); add the protocol file `bench pack` wrote beside the submission")
        return
    for key in ("suite", "preset", "image_size", "n_test", "n_reference", "settings"):
        if proto.get(key) != protocol.get(key):
            problem(f"protocol.{key}", f"{_short(proto.get(key))} differs from protocol {pid}'s {_short(protocol.get(key))}")
    if method.get("provenance") not in PROVENANCES:
        problem("method.provenance", f"{method.get('provenance')!r} is not one of {', '.join(PROVENANCES)}")
    draws = proto["draws"]
    why = _draws_problem(draws, protocol, names[pid])
    if why:
        problem("protocol.draws", why)
        return
    n_test = protocol["n_test"]
    test_names = names[pid]["testA"]
    known = set(protocol["settings"]["metrics"])
    cells = sub["cells"]
    seeds = sub["seeds"]
    if [c["seed"] for c in cells] != seeds or not seeds:
        problem("cells", f"seeds {[c['seed'] for c in cells]} differ from the listed seeds {seeds}")
        return
    from bench.metrics.bootstrap import Draws

    drawn = Draws(draws["key"], draws["n"], draws["n_reference"], draws["resamples"])
    for k, cell in enumerate(cells):
        _check_cell(cell, f"cells[{k}]", n_test, test_names, known, drawn, allow_substitute, problem)
    _check_summary(sub, draws["key"], problem)


def _short(v: Any) -> str:
    text = repr(v)
    return text if len(text) < 80 else text[:77] + "..."


def _draws_problem(draws: dict[str, Any], protocol: dict[str, Any], names: dict[str, list[str]]) -> str | None:
    from bench.metrics.bootstrap import draws_components, draws_key

    comp = draws.get("protocol") or {}
    if draws_key(comp) != draws.get("key"):
        return "the key is not the hash of its components"
    want = draws_components(protocol["suite"], protocol["preset"], protocol["image_size"], names["testA"],
                            names["testB"])
    differ = [k for k in want if comp.get(k) != want[k]]
    if differ:
        return f"drawn for other data than the protocol ({', '.join(differ)} differ)"
    if draws.get("n") != protocol["n_test"]:
        return f"drawn over {draws.get('n')} images, the protocol has {protocol['n_test']}"
    if draws.get("resamples") != protocol["settings"]["ci"]["resamples"]:
        return f"{draws.get('resamples')} resamples, the protocol's settings say {protocol['settings']['ci']['resamples']}"
    return None


def _close(a: float, b: float, rtol: float, scale: float = 0.0) -> bool:
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return abs(a - b) <= rtol * max(abs(a), abs(b), scale, 1e-12)


def _headline(metric: str) -> str:
    return {"iou": "miou", "ap": "map"}.get(metric.split("/", 1)[0], metric) if "/" in metric else metric


def _check_cell(cell: dict[str, Any], at: str, n_test: int, test_names: list[str], known: set[str], drawn,
                allow_substitute: bool, problem: Callable[[str, str], None]) -> None:
    images = cell["per_image"]["images"]
    columns = {c: floats(vals) for c, vals in cell["per_image"]["columns"].items()}
    if images and images != test_names:
        problem(f"{at}.per_image.images", f"{len(images)} names, not the protocol's {n_test} test images in order")
        return
    for c, vals in columns.items():
        if len(vals) != len(images):
            problem(f"{at}.per_image.columns.{c}", f"{len(vals)} values for {len(images)} images")
            return
    replicates = {m: floats(vals) for m, vals in cell["replicates"].items()}
    recomputed = _recompute(columns, drawn) if images else {}
    with_ci: list[tuple[str, list[Any]]] = []
    for metric, rec in cell["metrics"].items():
        f = f"{at}.metrics.{metric}"
        if _headline(metric) not in known:
            problem(f, f"not a metric of this protocol ({', '.join(sorted(known))})")
            continue
        value = as_float(rec["value"])
        if math.isnan(value):
            continue  # a skipped metric: no number to check, none shown
        if "SUBSTITUTE" in (rec.get("extractor") or "") and not allow_substitute:
            problem(f"{f}.extractor", f"computed with SUBSTITUTE weights ({rec['extractor']}), not the published "
                                      "files: not the real metric; score again with the real weights")
        if rec["n"] != n_test:
            problem(f"{f}.n", f"{rec['n']} images scored, the protocol has {n_test}")
        if metric not in replicates:
            problem(f"{at}.replicates", f"none of {metric}: every number needs its replicates to be ranked")
        if metric not in recomputed and _decomposes(metric):
            problem(f"{at}.per_image", f"no per-image values to recompute {metric} from")
        if metric in recomputed:
            mine, reps = recomputed[metric]
            if not _close(value, mine, VALUE_RTOL):
                problem(f"{f}.value", f"{value!r} is not what its per-image values give ({mine!r})")
            stored = replicates.get(metric)
            if stored is not None and reps is not None:
                bad = _differing(stored, reps)
                if bad is not None:
                    problem(f"{at}.replicates.{metric}", f"not the per-image values on the protocol's draws (resample "
                                                         f"{bad} differs)")
        if metric in replicates:
            with_ci.append((metric, rec["ci"]))
    for (metric, ci), (lo, hi) in zip(with_ci, _intervals([replicates[m] for m, _ in with_ci])):
        _check_interval(ci, lo, hi, f"{at}.metrics.{metric}.ci", problem)


def _intervals(replicates: list[np.ndarray]) -> list[tuple[float, float]]:
    """``percentile_ci`` of each array, the arrays of one length in one ``column_cis`` call (a board checks tens of
    thousands)."""
    from bench.metrics.bootstrap import column_cis

    out: list[tuple[float, float]] = [(math.nan, math.nan)] * len(replicates)
    groups: dict[int, list[int]] = {}
    for i, r in enumerate(replicates):
        groups.setdefault(len(r), []).append(i)
    for idx in groups.values():
        for i, (lo, hi) in zip(idx, column_cis(np.stack([replicates[i] for i in idx], axis=1))):
            out[i] = (float(lo), float(hi))
    return out


def _decomposes(metric: str) -> bool:
    """Whether ``metric`` is computed from per-image values (so a file must carry them)."""
    return metric in MEAN_METRICS or metric in ("hallucination-share", "miou") or metric.startswith("iou/")


def _differing(stored: np.ndarray, recomputed: np.ndarray) -> int | None:
    """The first resample where stored replicates (7 digits) differ from recomputed ones, or None."""
    if len(stored) != len(recomputed):
        return min(len(stored), len(recomputed))
    both_nan = np.isnan(stored) & np.isnan(recomputed)
    finite = np.isfinite(recomputed)
    scale = max(float(np.abs(recomputed[finite]).max()) if finite.any() else 0.0, 1e-12)
    ok = both_nan | (np.abs(stored - recomputed) <= REPLICATE_RTOL * np.maximum(np.abs(recomputed), scale))
    bad = np.flatnonzero(~ok)
    return int(bad[0]) if bad.size else None


def _check_interval(ci: list[Any], lo: float, hi: float, f: str, problem: Callable[[str, str], None]) -> None:
    spread = abs(hi - lo) if math.isfinite(hi - lo) else 0.0
    scale = max(abs(lo) if math.isfinite(lo) else 0.0, abs(hi) if math.isfinite(hi) else 0.0, spread)
    if not (_close(as_float(ci[0]), lo, REPLICATE_RTOL, scale) and _close(as_float(ci[1]), hi, REPLICATE_RTOL, scale)):
        problem(f, f"{ci} is not the 95% interval of its replicates ({[lo, hi]})")


def _recompute(columns: dict[str, np.ndarray], drawn) -> dict[str, tuple[float, np.ndarray | None]]:
    """metric -> (value, replicates) from the per-image columns, as the scorer computes them."""
    from bench.metrics.bootstrap import mean_replicates, ratio_replicates
    from bench.metrics.segmentation import CITYSCAPES_CLASSES, iou_from_stats, iou_replicates, nanmean_rows

    out: dict[str, tuple[float, np.ndarray | None]] = {}
    for metric, scale in MEAN_METRICS.items():
        if metric in columns:
            v = columns[metric]
            out[metric] = (scale * float(v.mean()), scale * mean_replicates(v, drawn))
    if "hallucinated" in columns and "found" in columns:
        extra, confident = columns["hallucinated"], columns["found"] + columns["hallucinated"]
        if confident.sum() > 0:
            out["hallucination-share"] = (100 * float(extra.sum() / confident.sum()),
                                          100 * ratio_replicates(extra, confident, drawn))
    seg = [[f"seg/{w}/{c}" for w in ("tp", "gt", "pred")] for c in CITYSCAPES_CLASSES]
    if all(col in columns for row in seg for col in row):
        stats = np.stack([np.stack([columns[col] for col in row], axis=-1) for row in seg], axis=1)  # n x classes x 3
        pooled = stats.sum(0)
        iou = iou_from_stats(pooled)
        per_class = iou_replicates(stats, drawn)
        out["miou"] = (100 * float(np.nanmean(iou)) if np.isfinite(iou).any() else math.nan,
                       100 * nanmean_rows(per_class))
        for k, cls in enumerate(CITYSCAPES_CLASSES):
            if pooled[k, 1] > 0:
                out[f"iou/{cls}"] = (100 * float(iou[k]), 100 * per_class[:, k])
    return out


def _check_summary(sub: dict[str, Any], key: str, problem: Callable[[str, str], None]) -> None:
    """The submission's own numbers: each metric's mean over its seeds, its CI over seeds and images."""
    from bench.stats.paired import over_seeds

    cells, name = sub["cells"], sub["method"]["name"]
    for metric, rec in sub["metrics"].items():
        f = f"metrics.{metric}"
        per_seed = [c["metrics"].get(metric) for c in cells]
        if any(r is None for r in per_seed):
            problem(f, "not in every seed's cell")
            continue
        values = [as_float(r["value"]) for r in per_seed]
        value = as_float(rec["value"])
        if any(math.isnan(v) for v in values) or math.isnan(value):
            if not math.isnan(value):
                problem(f"{f}.value", f"{value!r}, but a seed has no number")
            continue
        if not _close(value, sum(values) / len(values), VALUE_RTOL):
            problem(f"{f}.value", f"{value!r} is not the mean of its seeds' values {values}")
        if rec.get("n") != per_seed[0]["n"]:
            problem(f"{f}.n", f"{rec.get('n')} differs from its cells' {per_seed[0]['n']}")
        if rec.get("extractor") != per_seed[0].get("extractor"):
            problem(f"{f}.extractor", f"{rec.get('extractor')!r} differs from its cells' {per_seed[0].get('extractor')!r}")
        reps = [c["replicates"].get(metric) for c in cells]
        if len(cells) == 1:  # one seed: its cell's interval, checked against the replicates above
            lo, hi = (as_float(v) for v in per_seed[0]["ci"])
            _check_interval(rec["ci"], lo, hi, f"{f}.ci", problem)
        elif all(r is not None for r in reps):
            (lo, hi), = _intervals([over_seeds([floats(r) for r in reps], f"{key}|{name}")])
            _check_interval(rec["ci"], lo, hi, f"{f}.ci", problem)
