"""``bench pack``: a run's methods as submission files, one strict-JSON file per (protocol, method).

A submission holds what a board needs to show a method and what a checker needs to recompute it: the protocol it
was scored on (id, settings, the shared draws' key), every metric's value, CI, n and extractor per seed, the
replicates on the protocol's draws, the per-image values, seeds, versions and date. No image and no pickle.
"""

from __future__ import annotations

import math
import re
import time
from pathlib import Path
from typing import Any

from tqdm import tqdm

from bench.leaderboard.files import (
    PROVENANCES,
    SCHEMA,
    SCHEMA_VERSION,
    LeaderboardError,
    load,
    number,
    per_image_value,
    protocol_path,
    rounded,
    submission_path,
    write,
)
from bench.report.runs import RunFolderError, RunResults, load_run
from bench.results import REFERENCE_ROW

SHA_RE = re.compile(r"sha256=([0-9a-f]{8,64})")


def pack(run_dir: Path, out: Path, methods: list[str] | None = None, description: str = "",
         url: str = "", replace: bool = False) -> list[Path]:
    """Write ``out/protocols/<id>.json`` and ``out/submissions/<id>/<method>.json`` for the run's methods (every
    one, the day-twin bound included, when ``methods`` is None); return the submission files written. A
    submission already there is replaced only with ``replace``: one (protocol, method) has one file."""
    run = load_run(run_dir)
    chosen = _methods(run, methods)
    protocol = run_protocol(run)
    pid = protocol["protocol_id"]
    taken = [p for m in chosen if (p := submission_path(out, pid, m)).exists()]
    if taken and not replace:
        raise LeaderboardError(f"{taken[0]} exists ({len(taken)} of the {len(chosen)} submissions): protocol {pid} "
                               "has that method already. Pack under --method with other methods, or --replace")
    _write_protocol(Path(out), protocol)
    written = []
    for method in chosen:
        path = submission_path(out, pid, method)
        write(path, submission(run, method, protocol, description, url))
        written.append(path)
    return written


def _methods(run: RunResults, methods: list[str] | None) -> list[str]:
    have = run.methods  # the day-twin bound included: a board judges a downstream task's strength by it
    if not methods:
        return have
    unknown = [m for m in methods if m not in have]
    if unknown:
        raise LeaderboardError(f"{run.path}: no method {', '.join(map(repr, unknown))} to pack; it has "
                               f"{', '.join(have)}")
    return list(dict.fromkeys(methods))


def run_protocol(run: RunResults) -> dict[str, Any]:
    """The protocol the run's cells were scored on, as ``bench data export`` would describe it: the suite prepared
    again from the run's settings and its files hashed (nothing written). Refused when the local data is no longer
    what the cells saw, or when a `bench score` cell was checked against another protocol."""
    from bench.protocol import describe_protocol
    from bench.runner import resolve_suite
    from bench.scoring import Scorer, protocol_components

    m = run.manifest
    cfg = m.config
    preset = m.preset or "quick"
    data_root = Path(cfg["data_root"]) if cfg.get("data_root") else None
    size = tuple(cfg["size"]) if cfg.get("size") else None
    suite = resolve_suite(run.suite, preset, data_root)
    files = suite.prepare(preset, data_root, size)
    components = protocol_components(suite.name, preset, files)
    for method in run.methods:
        for seed in run.seeds(method):
            drawn = run.draws(method, seed)
            if not drawn:
                raise LeaderboardError(f"{run.path}/cells/{method}/seed{seed}: scored before replicates were kept, so "
                                       "it cannot be checked on a board; score it again: bench run --force --methods "
                                       f"{method}")
            if drawn.get("protocol") != components:
                raise LeaderboardError(f"{run.path}/cells/{method}/seed{seed} was scored on other data than the suite "
                                       f"{suite.name} gives here now ({drawn.get('protocol')} vs {components}); pack on "
                                       "the machine and data it was run with, or run it again")
    metrics = Scorer(suite.name, files, suite.metrics, preset=preset, segmenter=cfg.get("segmenter"),
                     detector=cfg.get("detector")).metrics
    protocol = describe_protocol(suite.name, preset, files, metrics,
                                 progress=lambda it: tqdm(it, desc="protocol hashes", unit="file", leave=False))
    for method, entry in m.external.items():
        checked = entry.get("protocol_id")
        if checked and checked != protocol["protocol_id"]:
            raise LeaderboardError(f"{run.path}: {method} was scored against protocol {checked}, the run's data is "
                                   f"protocol {protocol['protocol_id']}; score it again against this data")
    return protocol


def _write_protocol(out: Path, protocol: dict[str, Any]) -> None:
    path = protocol_path(out, protocol["protocol_id"])
    if path.is_file():
        try:
            if load(path).get("protocol_id") == protocol["protocol_id"]:
                return  # the id is the hash of what decides a number: the file on disk says the same
        except (ValueError, AttributeError):
            pass
        raise LeaderboardError(f"{path}: exists but is not protocol {protocol['protocol_id']}; remove it or pack "
                               "into another folder")
    write(path, protocol)


def submission(run: RunResults, method: str, protocol: dict[str, Any], description: str = "",
               url: str = "") -> dict[str, Any]:
    """One method of a run as a submission (see the module docstring)."""
    from bench.metrics.bootstrap import percentile_ci
    from bench.protocol import exported_names
    from bench.stats.paired import over_seeds
    from bench.weights import file_sha256

    m = run.manifest
    seeds = run.seeds(method)
    external = m.external.get(method)
    cells = [_cell(run, method, seed) for seed in seeds]
    if method == REFERENCE_ROW:  # scored on the twins, image i the twin of test input i: named as the inputs
        names = exported_names(protocol, "testA")
        for c in cells:
            if len(c["per_image"]["images"]) == len(names):
                c["per_image"]["images"] = names
    draws = run.draws(method, seeds[0])
    metrics: dict[str, Any] = {}
    for name in dict.fromkeys(k for c in cells for k in c["metrics"]):
        per_seed = [c["metrics"].get(name) for c in cells]
        if any(r is None or r["value"] is None for r in per_seed):
            first = next((r for r in per_seed if r is not None), {})
            metrics[name] = {"value": None, "ci": [None, None], "n": first.get("n", 0), "note": first.get("note", ""),
                             "extractor": first.get("extractor", "")}
            continue
        values = [r["value"] for r in per_seed]
        reps = [c["replicates"].get(name) for c in cells]
        ci: list[float | None] = [None, None]
        if all(r is not None for r in reps):
            joined = over_seeds([[math.nan if v is None else v for v in r] for r in reps], f"{draws['key']}|{method}")
            ci = [number(v) for v in percentile_ci(joined)]
        metrics[name] = {"value": sum(values) / len(values), "ci": ci, "n": per_seed[0]["n"],
                         "extractor": per_seed[0]["extractor"], "weights_sha256": _weights_hash(per_seed[0]["extractor"]),
                         "note": per_seed[0]["note"]}
    checkpoints = {str(s): file_sha256(p) for s in seeds if (p := run.path / "cells" / method / f"seed{s}" /
                                                         "checkpoint.safetensors").is_file()}
    return {
        "schema": SCHEMA,
        "schema_version": SCHEMA_VERSION,
        "protocol": {"id": protocol["protocol_id"], "suite": protocol["suite"], "preset": protocol["preset"],
                     "image_size": protocol["image_size"], "n_test": protocol["n_test"],
                     "n_reference": protocol["n_reference"], "settings": protocol["settings"], "draws": draws},
        "method": {
            "name": method,
            "description": description,
            "url": url,
            "provenance": PROVENANCES[1] if external else PROVENANCES[0],
            "checkpoint_sha256": checkpoints or None,
            "translations_sha256": external.get("sha256") if external else None,
            "config": m.method_configs.get(method, {}),
        },
        "seeds": seeds,
        "metrics": metrics,
        "cells": cells,
        "versions": m.versions,
        "git_commit": m.git_commit,
        "run": run.label,
        "scored": m.finished or m.started,
        "packed": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }


def _cell(run: RunResults, method: str, seed: int) -> dict[str, Any]:
    records = {r.metric: {"value": number(r.value), "ci": [number(r.ci_low), number(r.ci_high)], "n": r.n,
                          "extractor": r.extractor, "note": r.note}
               for r in run.records if r.method == method and r.seed == seed}
    frame = run.cell_replicates(method, seed)
    replicates = {} if frame is None else {
        c: [rounded(v) for v in frame[c].to_numpy(dtype="float64")] for c in frame.columns}
    try:
        per_image = run.per_image(method, seed)
        images = {"images": [str(i) for i in per_image.index],
                  "columns": {c: [per_image_value(v) for v in per_image[c].to_numpy(dtype="float64")]
                              for c in per_image.columns}}
    except RunFolderError:  # a cell whose metrics have no per-image values (FID and KID only)
        images = {"images": [], "columns": {}}
    return {"seed": seed, "metrics": records, "replicates": replicates, "per_image": images}


def _weights_hash(extractor: str) -> str | None:
    found = SHA_RE.search(extractor or "")
    return found.group(1) if found else None
