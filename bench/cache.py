"""The cache folder for expensive, reusable work (rendered suites, features), keyed by content."""

from __future__ import annotations

import os
from pathlib import Path


def cache_root() -> Path:
    return Path(os.environ.get("AUGAN_BENCH_CACHE", Path.home() / ".cache" / "augan-bench")).expanduser()


def cache_dir(*parts: str) -> Path:
    path = cache_root().joinpath(*parts)
    path.mkdir(parents=True, exist_ok=True)
    return path
