"""Atomic file writes: a temporary file in the target folder, fsync, then rename.

A reader (or a resumed run) sees either the old file or the whole new one, never a prefix:
an interrupted write (Ctrl-C, a full disk, a killed process) leaves at most a temporary file
named ``.<name>.tmp-*``, which is removed on the way out where Python still runs.
"""

from __future__ import annotations

import io
import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any, Callable


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _current_umask()


def atomic_write(path: Path, write: Callable[[io.BufferedWriter], None]) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.tmp-", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~_UMASK)  # mkstemp makes 0600 files; results are meant to be shared
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        # BaseException: KeyboardInterrupt must not leave the temporary file behind either.
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def staging_dir(final: Path) -> Path:
    """A new hidden folder beside ``final`` (same file system, so it can be renamed into place), with the
    permissions of an ordinary folder (mkdtemp makes 0700 ones)."""
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.tmp-", dir=final.parent))
    os.chmod(tmp, 0o777 & ~_UMASK)
    return tmp


def atomic_write_bytes(path: Path, data: bytes) -> None:
    atomic_write(path, lambda fh: fh.write(data))


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def strict_json(obj: Any) -> Any:
    """``obj`` with every non-finite float (NaN, ±inf) as ``None``: JSON has no NaN, and strict readers
    (JavaScript, jq, Go) reject Python's ``NaN`` token."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: strict_json(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [strict_json(v) for v in obj]
    return obj


def json_text(obj: Any, indent: int | None = 2) -> str:
    """Strict JSON (``null`` for NaN); paths and other objects as their ``str``."""
    return json.dumps(strict_json(obj), indent=indent, allow_nan=False, default=str)


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_text(path, json_text(obj) + "\n")
