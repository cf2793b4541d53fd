"""The files of a results repository: names, schema, strict JSON in and out."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

import numpy as np

from bench.atomic import atomic_write_text, strict_json
from bench.errors import BenchError

SCHEMA = "augan-bench/submission"
SCHEMA_VERSION = 1
PROTOCOLS, SUBMISSIONS = "protocols", "submissions"
NAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]*$")  # a method's name, as `bench score --method` accepts it
PROVENANCES = ("bench run", "bench score")  # trained (or loaded) and translated here / translated by outside code
REPLICATE_DIGITS = 7  # significant digits kept of each replicate: a CI is checked to this precision, and a 4,000-image
# cell's 2,000 resamples of 40 metrics stay under 2 MB


class LeaderboardError(BenchError, ValueError):
    """A pack or a board that cannot be made; the message names the file and what to do."""


def protocol_path(root: Path, pid: str) -> Path:
    return Path(root) / PROTOCOLS / f"{pid}.json"


def submission_path(root: Path, pid: str, method: str) -> Path:
    return Path(root) / SUBMISSIONS / pid / f"{method}.json"


def dump(data: Any) -> str:
    """Strict JSON (NaN and infinities as null), one top-level key per line and each value compact: long number
    arrays would otherwise take a line per number."""
    def compact(v: Any) -> str:
        return json.dumps(strict_json(v), allow_nan=False, ensure_ascii=False, separators=(",", ":"))

    if not isinstance(data, dict) or not data:
        return compact(data) + "\n"
    return "{\n" + ",\n".join(f"{compact(k)}: {compact(v)}" for k, v in data.items()) + "\n}\n"


def write(path: Path, data: Any) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, dump(data))


def _refuse_constant(name: str) -> None:
    raise ValueError(f"{name} is not strict JSON (write null for an undefined number)")


def load(path: Path) -> Any:
    """A strict-JSON file; ValueError saying what is wrong (NaN, Infinity and cut-short files included)."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"), parse_constant=_refuse_constant)
    except UnicodeDecodeError as exc:
        raise ValueError(f"not UTF-8 text ({exc})") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"not valid JSON ({exc})") from None


def number(v: Any) -> float | None:
    """A float for JSON: None for NaN (strict JSON has no NaN)."""
    if v is None:
        return None
    v = float(v)
    return v if math.isfinite(v) else None


def as_float(v: Any) -> float:
    return math.nan if v is None else float(v)


def floats(values: list[Any]) -> np.ndarray:
    """A JSON list of numbers as float64, null as NaN."""
    return np.array(values, dtype=np.float64) if values else np.zeros(0)


def rounded(v: float) -> float | None:
    """A replicate with REPLICATE_DIGITS significant digits (None for NaN)."""
    return None if not math.isfinite(v) else float(f"{v:.{REPLICATE_DIGITS}g}")


def per_image_value(v: Any) -> int | float | None:
    """Per-image values as written: integers as integers (counts), floats with every digit, NaN as null."""
    v = float(v)
    if not math.isfinite(v):
        return None
    return int(v) if v.is_integer() and abs(v) < 2**53 else v
