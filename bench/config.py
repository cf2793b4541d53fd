"""One configuration precedence, written once: built-in defaults < preset < ``--config FILE.toml`` < flags.

A run's configuration is a frozen dataclass (``bench.runner.RunConfig``) whose defaults are the built-in layer;
the preset picks each method's and suite's own schedule and sizes; a TOML file (``--config``) and then the
flags actually typed on the command line override fields in that order (a flag left at its default does not
override the file). Method hyperparameters are a table per method, ``[method.cyclegan]`` in the file or
``--set cyclegan.lambda_cycle=5`` on the command line, applied on top of the method's preset config and
checked against its config dataclass: an unknown key or a value of the wrong type is an error naming the
valid keys. ``to_toml`` writes a resolved config back; feeding that file to ``--config`` reproduces the run.

This module is core: it imports nothing of the project but the errors, so every layer may use it.
"""

from __future__ import annotations

import dataclasses
import tomllib
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from bench.errors import BenchError

METHOD_TABLE = "method"  # [method.<name>] tables in a config file: that method's hyperparameters


class ConfigError(BenchError, ValueError):
    """A config file, a --set item or a value that does not fit the configuration it is meant for."""


# ------------------------------------------------------------------ values and types
def parse_value(text: str) -> Any:
    """A --set value as TOML reads it (5, 0.5, true, "x", [1, 2]); anything else is a string."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def coerce(value: Any, tp: Any, where: str) -> Any:
    """``value`` as type ``tp`` (ints become floats, lists tuples, strings paths), or a ConfigError."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        for arg in args:
            if arg is type(None):
                continue
            try:
                return coerce(value, arg, where)
            except ConfigError:
                continue
        raise ConfigError(f"{where}: {value!r} is not {_type_name(tp)}")
    if tp is Any:
        return value
    if tp is bool:
        if isinstance(value, bool):
            return value
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    elif tp is str:
        if isinstance(value, str):
            return value
    elif tp is Path:
        if isinstance(value, (str, Path)):
            return Path(value).expanduser()
    elif origin is tuple:
        args = typing.get_args(tp)
        if isinstance(value, (list, tuple)):
            if len(args) == 2 and args[1] is Ellipsis:
                return tuple(coerce(v, args[0], where) for v in value)
            if len(args) == len(value):
                return tuple(coerce(v, a, where) for v, a in zip(value, args))
    elif origin in (dict, Mapping) or tp is dict:
        if isinstance(value, Mapping):
            return dict(value)
    elif dataclasses.is_dataclass(tp):
        if isinstance(value, tp):
            return value
    else:
        return value
    raise ConfigError(f"{where}: {value!r} is not {_type_name(tp)}")


def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


# ------------------------------------------------------------------ layering
def apply(obj: Any, changes: Mapping[str, Any], owner: str) -> Any:
    """``obj`` (a dataclass instance) with ``changes`` applied, each checked; nested dataclasses take tables."""
    if not changes:
        return obj
    hints = _hints(type(obj))
    names = [f.name for f in dataclasses.fields(obj)]
    unknown = [k for k in changes if k not in names]
    if unknown:
        raise ConfigError(f"{owner} has no setting {unknown[0]!r}; valid keys: {', '.join(sorted(names))}")
    new: dict[str, Any] = {}
    for key, value in changes.items():
        current = getattr(obj, key)
        if dataclasses.is_dataclass(current) and isinstance(value, Mapping):
            new[key] = apply(current, value, f"{owner}.{key}")
        else:
            new[key] = coerce(value, hints[key], f"{owner}.{key}")
    try:
        return dataclasses.replace(obj, **new)
    except ValueError as exc:  # the config's own check of the combination (e.g. a value outside its range)
        raise ConfigError(f"{owner}: {exc}") from None


def merge(*layers: Mapping[str, Any]) -> dict[str, Any]:
    """Later layers win, key by key; tables (nested mappings) merge instead of replacing each other."""
    out: dict[str, Any] = {}
    for layer in layers:
        for key, value in layer.items():
            if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
                out[key] = merge(out[key], value)
            else:
                out[key] = value
    return out


def read_config_file(path: Path) -> dict[str, Any]:
    path = Path(path)
    try:
        return tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}") from None


def parse_set(items: tuple[str, ...] | list[str]) -> dict[str, dict[str, Any]]:
    """``("cyclegan.lambda_cycle=5", ...)`` -> ``{"cyclegan": {"lambda_cycle": 5}}``."""
    out: dict[str, dict[str, Any]] = {}
    for item in items:
        key, eq, value = item.partition("=")
        method, dot, field = key.strip().partition(".")
        if not eq or not dot or not method or not field:
            raise ConfigError(f"--set {item!r}: use METHOD.KEY=VALUE, e.g. --set cyclegan.lambda_cycle=5")
        out.setdefault(method, {})[field] = parse_value(value.strip())
    return out


def method_config(config: Any, overrides: Mapping[str, Any], method: str) -> Any:
    """A method's preset config with its overrides applied and checked."""
    if not overrides:
        return config
    if config is None or not dataclasses.is_dataclass(config):
        raise ConfigError(f"method {method!r} has no settable hyperparameters (no config dataclass); "
                          f"drop the [{METHOD_TABLE}.{method}] settings")
    return apply(config, overrides, f"method {method!r}")


# ------------------------------------------------------------------ writing back
def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, (str, Path)):
        s = str(value).replace("\\", "\\\\").replace('"', '\\"')
        return f'"{s}"'
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {type(value).__name__} to TOML")


def to_toml(obj: Any, method_options: Mapping[str, Mapping[str, Any]] | None = None) -> str:
    """A dataclass as TOML: scalars first, nested dataclasses as tables, then [method.<name>] tables.
    ``None`` is left out (it means "the default", and every None-able field defaults to None)."""
    lines: list[str] = []
    tables: list[tuple[str, Any]] = []
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        if dataclasses.is_dataclass(value):
            tables.append((f.name, value))
        elif isinstance(value, Mapping):
            continue  # the method tables, written below
        elif value is not None:
            lines.append(f"{f.name} = {_toml_value(value)}")
    for name, sub in tables:
        lines += ["", f"[{name}]"] + [f"{f.name} = {_toml_value(getattr(sub, f.name))}"
                                      for f in dataclasses.fields(sub) if getattr(sub, f.name) is not None]
    for method, opts in (method_options or {}).items():
        lines += ["", f'[{METHOD_TABLE}."{method}"]'] + [f"{k} = {_toml_value(v)}" for k, v in opts.items()]
    return "\n".join(lines) + "\n"
