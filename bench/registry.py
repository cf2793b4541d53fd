"""One checked registry for every kind of plug-in: methods, suites, metrics, downstream models, weight files.

A ``Registry[T]`` maps names to entries of one kind. Entries arrive three ways:
- ``registry.add(name, value, source)`` (and what is built on it: the ``register_translator`` decorator,
  ``register_metric``);
- ``registry.add_lazy(name, "module:attr")``: the module is imported only when the entry is asked for,
  so heavy backends (transformers, mmseg) cost nothing until used;
- an entry-point group of installed packages (``augan_bench.translators``, ``augan_bench.suites``,
  ``augan_bench.metrics``), so a third-party package adds a method, a suite or a metric without touching
  this repository.

Built-in entries register when their modules are imported; ``builtins`` names those modules (``pkg.*``:
every sub-module of ``pkg``, so that a new method is one sub-package and nothing else). Discovery runs on
first use. A module or entry point that fails to load is recorded, listed by ``bench list``, and its error
raised when it is asked for by name; the other entries keep working. Names are lower-case without spaces; a
name registered twice is an error naming both sources; an unknown name gets a "did you mean".

A registry is a read-only ``Mapping``, so ``name in METRICS``, ``METRICS[name]`` and ``METRICS.values()`` work.
This module imports nothing of the project but ``bench.errors``: every layer may hold a registry.
"""

from __future__ import annotations

import difflib
import importlib
import pkgutil
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from importlib import metadata
from typing import Any, Callable, Generic, TypeVar

from bench.errors import BenchError

T = TypeVar("T")

NAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]*$")


class RegistryError(BenchError, KeyError):
    """An unknown, duplicate, invalid or broken registry name."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


def unknown_name_message(kind: str, name: str, valid: Any) -> str:
    names = sorted(valid)
    close = difflib.get_close_matches(name, names, n=3, cutoff=0.5)
    hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    return f"unknown {kind} {name!r}.{hint} Valid {kind}s: {', '.join(names)}"


def load_target(target: str) -> Any:
    """The object a ``"module:attr"`` reference names (the module imported now)."""
    module, _, attr = target.partition(":")
    obj: Any = importlib.import_module(module)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj


@dataclass(frozen=True)
class _Lazy:
    target: str  # "module:attr"

    def load(self) -> Any:
        return load_target(self.target)


class Registry(Mapping[str, T], Generic[T]):
    """Names -> entries of one kind (``kind`` names it in messages)."""

    def __init__(self, kind: str, *, builtins: tuple[str, ...] = (), group: str | None = None,
                 from_entry_point: Callable[[str, Any, str], T] | None = None,
                 check: Callable[[str, Any], None] | None = None) -> None:
        self.kind = kind
        self.builtins = builtins
        self.group = group  # entry-point group of third-party plug-ins
        # Turns what an entry point loads into an entry (e.g. a factory into a MethodInfo); default: as loaded.
        self._from_entry_point = from_entry_point or (lambda name, obj, source: obj)
        self._check = check  # raises TypeError/ValueError when a loaded value is not of this kind
        self._entries: dict[str, T | _Lazy] = {}
        self._sources: dict[str, str] = {}
        self._broken: dict[str, str] = {}
        self._discovered = False

    # ---------------------------------------------------------------- registration
    def add(self, name: str, value: T | _Lazy, source: str) -> None:
        if not isinstance(name, str) or not NAME_RE.match(name):
            raise RegistryError(f"{self.kind} name {name!r} must be lower-case without spaces (letters, digits, "
                                "'-', '_', '.')")
        if name in self._entries and self._entries[name] is not value and self._entries[name] != value:
            raise RegistryError(f"{self.kind} {name!r} is registered twice: by {self._sources[name]} and by "
                                f"{source}; rename one")
        if self._check is not None and not isinstance(value, _Lazy):
            self._check(name, value)
        self._entries[name] = value
        self._sources[name] = source

    def add_lazy(self, name: str, target: str, source: str | None = None) -> None:
        """Register ``module:attr``, imported the first time ``name`` is asked for."""
        self.add(name, _Lazy(target), source or target)

    # ---------------------------------------------------------------- discovery
    def _discover(self) -> None:
        if self._discovered:
            return
        self._discovered = True
        for spec in self.builtins:
            modules = [spec]
            if spec.endswith(".*"):
                pkg = importlib.import_module(spec[:-2])
                modules = [m.name for m in pkgutil.iter_modules(pkg.__path__, prefix=f"{spec[:-2]}.")]
            for module in modules:
                try:
                    importlib.import_module(module)
                except Exception as exc:  # noqa: BLE001 - recorded; raised when one of its entries is asked for
                    self._broken[module] = f"{type(exc).__name__}: {exc}"
        if self.group:
            for ep in metadata.entry_points(group=self.group):
                source = f"entry point {ep.value}"
                if ep.name in self._entries:
                    # The built-in keeps the name; the clash is shown by `bench list` instead of being ignored.
                    self._broken[f"{ep.name} ({ep.value})"] = (
                        f"entry point {ep.value!r} uses the name {ep.name!r}, already registered by "
                        f"{self._sources[ep.name]}; rename it")
                    continue
                try:
                    self.add(ep.name, self._from_entry_point(ep.name, ep.load(), source), source)
                except Exception as exc:  # noqa: BLE001
                    self._broken[ep.name] = f"entry point {ep.value!r} failed to load: {type(exc).__name__}: {exc}"

    def _resolve(self, name: str) -> T:
        value = self._entries[name]
        if isinstance(value, _Lazy):
            try:
                loaded = value.load()
                if self._check is not None:
                    self._check(name, loaded)
            except Exception as exc:  # noqa: BLE001 - a broken lazy entry is reported like a broken module
                raise RegistryError(f"{self.kind} {name!r} ({value.target}) failed to load: "
                                    f"{type(exc).__name__}: {exc}") from None
            self._entries[name] = loaded
            value = loaded
        return value  # type: ignore[return-value]

    # ---------------------------------------------------------------- lookup
    def get_entry(self, name: str) -> T:
        """The entry, or a RegistryError with "did you mean" (or why the entry failed to load)."""
        self._discover()
        if name in self._entries:
            return self._resolve(name)
        if name in self._broken:
            raise RegistryError(f"{self.kind} {name!r} failed to load: {self._broken[name]}")
        raise RegistryError(self.unknown_message(name))

    def unknown_message(self, name: str, extra: list[str] | tuple[str, ...] = ()) -> str:
        self._discover()
        return unknown_name_message(self.kind, name, [*self._entries, *extra])

    def source(self, name: str) -> str:
        self._discover()
        return self._sources[name]

    def broken(self) -> dict[str, str]:
        """Modules and entry points that failed to load -> why."""
        self._discover()
        return dict(self._broken)

    def names(self) -> list[str]:
        self._discover()
        return list(self._entries)

    def __getitem__(self, name: str) -> T:
        return self.get_entry(name)

    def __contains__(self, name: object) -> bool:
        self._discover()
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self.names())
