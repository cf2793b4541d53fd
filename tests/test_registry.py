"""bench.registry.Registry on its own: lazy entries, name checks, duplicates, did-you-mean, broken entries."""

from __future__ import annotations

import sys

import pytest

from bench.registry import Registry, RegistryError


def test_lazy_entry_is_imported_only_when_asked_for(tmp_path, monkeypatch):
    (tmp_path / "heavy_backend_probe.py").write_text("VALUE = {'loaded': True}\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    reg: Registry[dict] = Registry("thing")
    reg.add_lazy("heavy", "heavy_backend_probe:VALUE")
    assert "heavy" in reg and "heavy_backend_probe" not in sys.modules
    assert reg["heavy"] == {"loaded": True} and "heavy_backend_probe" in sys.modules
    assert reg.source("heavy") == "heavy_backend_probe:VALUE"


def test_broken_lazy_entry_names_its_target_and_the_error():
    reg: Registry[object] = Registry("thing")
    reg.add_lazy("gone", "no_such_module_anywhere:X")
    with pytest.raises(RegistryError, match=r"thing 'gone' \(no_such_module_anywhere:X\) failed to load: "
                                            r"ModuleNotFoundError"):
        reg["gone"]


def test_names_duplicates_and_suggestions():
    reg: Registry[int] = Registry("thing")
    reg.add("alpha-1", 1, "module a")
    reg.add("alpha-1", 1, "module a")  # the same entry again (a module imported twice) is no clash
    with pytest.raises(RegistryError, match="registered twice: by module a and by module b"):
        reg.add("alpha-1", 2, "module b")
    for bad in ("Alpha", "has space", "a/b", ""):
        with pytest.raises(RegistryError, match="must be lower-case"):
            reg.add(bad, 3, "module c")
    with pytest.raises(RegistryError, match="Did you mean 'alpha-1'"):
        reg["alpha1"]
    assert reg.get("missing") is None and list(reg) == ["alpha-1"]
