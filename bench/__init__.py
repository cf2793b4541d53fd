"""augan-bench: adverse-condition image translation, scored the standard way.

The Python API (the same as the command line; see the README):

    bench.score(translations, method, suite=..., preset=..., ...)  score a folder of outside translations
    bench.export(suite, out, preset=...)                             the suite's test protocol as files
    bench.load_run(path)                                             a run's results: .to_dataframe(), .summary()

Each imports what it needs when called: ``import bench`` and reading results never import torch.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bench.report.runs import RunResults

__all__ = ["export", "load_run", "score"]


def score(translations: str | Path, method: str, **settings: Any) -> "RunResults":
    """Score ``translations`` (a folder, one image per test input, named like it) as method ``method`` into a run;
    ``settings`` are ``bench.external.ScoreConfig``'s fields (suite, preset, out, name, allow_missing, ...)."""
    from bench.external import config_from
    from bench.external import score as score_folder

    return load_run(score_folder(config_from(translations, method, **settings)))


def export(suite: str, out: str | Path, preset: str | None = None, data_root: str | Path | None = None,
           size: tuple[int, int] | None = None) -> dict[str, Any]:
    """Write the suite's test inputs, reference set, twins, labels and boxes with ``protocol.json`` into ``out``."""
    from bench.external import export_suite

    return export_suite(suite, Path(out), preset, None if data_root is None else Path(data_root), size)


def load_run(path: str | Path) -> "RunResults":
    """The run folder ``path`` (``results/<suite>/<name>``), read from its metrics.csv and manifest.json."""
    from bench.report.runs import load_run as read_run

    return read_run(Path(path))
