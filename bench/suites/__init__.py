"""The suite registry: the embedded synthetic suites, BDD100K, ACDC, Dark Zurich, Alderley, ``folder:PATH``,
and suites of installed packages (entry-point group ``augan_bench.suites``: a ``Suite`` or a callable
returning one)."""

from __future__ import annotations

from typing import Any

from bench.registry import Registry, RegistryError
from bench.suites import acdc, alderley, bdd100k, dark_zurich, synthetic
from bench.suites.base import Suite, SuiteFiles
from bench.suites.folder import SuiteDataError, folder_suite

ENTRY_POINT_GROUP = "augan_bench.suites"


def _suite_from_entry_point(name: str, obj: Any, source: str) -> Suite:
    suite = obj if isinstance(obj, Suite) else obj()
    if not isinstance(suite, Suite):
        raise TypeError(f"{source} gave {type(suite).__name__}, not a bench.suites.Suite")
    if suite.name != name:
        raise ValueError(f"{source} names its suite {suite.name!r}, but the entry point calls it {name!r}")
    return suite


SUITES: Registry[Suite] = Registry("suite", group=ENTRY_POINT_GROUP, from_entry_point=_suite_from_entry_point)
for _module in (synthetic, bdd100k, acdc, dark_zurich, alderley):
    for _suite in _module.SUITES:
        SUITES.add(_suite.name, _suite, _module.__name__)

__all__ = ["SUITES", "Suite", "SuiteFiles", "SuiteDataError", "default_preset", "get_suite"]


def get_suite(name: str) -> Suite:
    if name.startswith("folder:"):
        return folder_suite(name[len("folder:"):])
    if name not in SUITES:
        raise RegistryError(SUITES.unknown_message(name, extra=["folder:PATH"]))
    return SUITES[name]


def default_preset(name: str) -> str:
    """A published dataset runs at the paper's protocol unless asked otherwise; synthetic and folder suites quick."""
    suite = SUITES.get(name)  # None for folder:PATH and unknown names
    return "paper" if suite is not None and suite.needs_data_root else "quick"
