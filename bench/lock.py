"""One `bench run` at a time per run folder.

Two processes on one folder would both redo every unfinished cell and interleave their training logs.
The lock is a file created with O_EXCL holding the owner's host, pid and start time. A lock whose
process has ended on this host is stale (a killed run leaves one): it is taken over, with a message. A
lock held by a live process, or by another host (a shared file system, where we cannot look), is
refused with the owner and the way out. A lock still empty (its owner created it an instant ago and has not
written it yet) is read again for a few seconds before it counts as stale.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from bench.errors import BenchError

LOCK_NAME = ".bench-run.lock"
# Between its O_EXCL creation and its first write a lock is empty; only an empty lock older than this is stale.
BEING_WRITTEN_S = 5.0


class RunFolderLocked(BenchError, RuntimeError):
    pass


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def _owner(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}  # half-written or damaged: nothing tells us the owner is alive


def _age(path: Path) -> float:
    try:
        return time.time() - path.stat().st_mtime
    except FileNotFoundError:
        return 0.0


def _create(path: Path) -> bool:
    me = {"host": socket.gethostname(), "pid": os.getpid(), "started": time.strftime("%Y-%m-%dT%H:%M:%S")}
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w") as fh:
        json.dump(me, fh)
    return True


@contextmanager
def run_folder_lock(run_dir: Path) -> Iterator[None]:
    """Hold ``run_dir``'s lock for the duration of the block (see the module docstring)."""
    path = Path(run_dir) / LOCK_NAME
    while not _create(path):
        owner = _owner(path)
        if not owner and _age(path) < BEING_WRITTEN_S:  # created by another process this instant: read it again
            time.sleep(0.05)
            continue
        here = owner.get("host") == socket.gethostname()
        pid = owner.get("pid")
        if owner and (not here or (isinstance(pid, int) and _alive(pid))):
            where = f"pid {pid} on {owner.get('host')}"
            raise RunFolderLocked(f"{run_dir} is in use by another bench run ({where}, started {owner.get('started')}). "
                                  f"Wait for it to finish, or give another --name; if that process is gone (another "
                                  f"machine), delete {path}")
        said = f"pid {pid}, started {owner.get('started')}" if owner else "unreadable"
        print(f"warning: {run_dir}: taking over a stale lock ({said}): its process is no longer running",
              file=sys.stderr)
        path.unlink(missing_ok=True)
    try:
        yield
    finally:
        path.unlink(missing_ok=True)
