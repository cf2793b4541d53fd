"""The one base of every user-facing error.

A ``BenchError`` is a problem the user can fix (a wrong name, a bad file, missing weights): the CLI
prints its message as one line and exits 2, never a traceback. Each error class also keeps the
built-in base that describes it (``ValueError``, ``LookupError``, ...), so library callers can catch
either. This module imports nothing of the project: every layer may raise these.
"""

from __future__ import annotations


class BenchError(Exception):
    """A problem with the user's input or environment, reported as one line (CLI exit status 2)."""

    exit_code: int = 2  # a subclass may say otherwise (training stopped by a signal: 128 + its number)
