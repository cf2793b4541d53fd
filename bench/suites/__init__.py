"""The suite registry: the embedded synthetic suites, BDD100K, ACDC, Dark Zurich, Alderley, and ``folder:PATH``."""

from __future__ import annotations

from bench.suites.acdc import SUITES as _ACDC
from bench.suites.alderley import SUITES as _ALDERLEY
from bench.suites.base import Suite, SuiteFiles
from bench.suites.bdd100k import SUITES as _BDD100K
from bench.suites.dark_zurich import SUITES as _DARK_ZURICH
from bench.suites.folder import SuiteDataError, folder_suite
from bench.suites.synthetic import SUITES as _SYNTHETIC
from bench.translator import unknown_name_message

SUITES: dict[str, Suite] = {s.name: s for s in (*_SYNTHETIC, *_BDD100K, *_ACDC, *_DARK_ZURICH, *_ALDERLEY)}

__all__ = ["SUITES", "Suite", "SuiteFiles", "SuiteDataError", "default_preset", "get_suite"]


def get_suite(name: str) -> Suite:
    if name.startswith("folder:"):
        return folder_suite(name[len("folder:"):])
    if name not in SUITES:
        raise KeyError(unknown_name_message("suite", name, list(SUITES) + ["folder:PATH"]))
    return SUITES[name]


def default_preset(name: str) -> str:
    """A published dataset runs at the paper's protocol unless asked otherwise; synthetic and folder suites quick."""
    suite = SUITES.get(name)
    return "paper" if suite is not None and suite.needs_data_root else "quick"
