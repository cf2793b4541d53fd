"""The cache folder for expensive, reusable work (rendered suites, features), keyed by content."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Sequence


def cache_root() -> Path:
    return Path(os.environ.get("AUGAN_BENCH_CACHE", Path.home() / ".cache" / "augan-bench")).expanduser()


def cache_dir(*parts: str) -> Path:
    path = cache_root().joinpath(*parts)
    path.mkdir(parents=True, exist_ok=True)
    return path


def files_digest(files: Sequence[Path]) -> str:
    """Content hash of an ordered file list (names do not matter, bytes and order do)."""
    h = hashlib.sha256()
    for f in files:
        h.update(hashlib.sha256(Path(f).read_bytes()).digest())
    return h.hexdigest()
