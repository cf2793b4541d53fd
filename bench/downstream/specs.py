"""Downstream models named on the command line (``--segmenter KIND:ARGS``, ``--detector KIND:ARGS``).

Each kind is an entry of a registry (``SEGMENTERS``, ``DETECTORS``): its usage line (``torchvision:ARCH:CKPT``)
says how many ``:``-separated arguments it takes, and its builder turns them into a model. Adding a kind is
one ``add`` call; an unknown kind gets the registry's "did you mean" and the usage of every kind.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from bench.registry import Registry, RegistryError

if TYPE_CHECKING:
    from bench.weights import WeightsFile


@dataclass(frozen=True)
class ModelSpec:
    usage: str  # "torchvision:ARCH:CHECKPOINT": the kind, then one word per argument
    build: Callable[..., Any]  # build(*arguments, **model options): arguments that name files arrive as Paths
    path_args: tuple[int, ...] = ()  # which arguments are files or folders (``~`` expanded)

    @property
    def n_args(self) -> int:
        return self.usage.count(":")


def build_from_spec(registry: Registry[ModelSpec], spec: str, error: type[Exception], **options: Any) -> Any:
    """The model ``spec`` names; ``error`` (the adapter's own error class) when the spec cannot be read."""
    kind, _, rest = spec.partition(":")
    try:
        entry = registry.get_entry(kind)
    except RegistryError as exc:
        usage = " or ".join(registry[k].usage for k in registry)
        raise error(f"cannot read {registry.kind} spec {spec!r} ({exc}); use {usage}") from None
    args: list[Any] = rest.split(":") if rest else []
    if len(args) != entry.n_args:
        raise error(f"cannot read {registry.kind} spec {spec!r}; use {entry.usage}")
    args = [Path(a).expanduser() if i in entry.path_args else a for i, a in enumerate(args)]
    return entry.build(*args, **options)


def pinned_weights(wf: "WeightsFile", option: str, own_spec: str, error: type[Exception]) -> Path:
    """The published file of a ``default`` downstream model (downloaded unless offline), and only that file: a
    missing or substitute one is ``error`` saying where to get it, or how to name another file (``own_spec``)."""
    from bench.weights import WeightsMissing, resolve

    try:
        weights = resolve(wf)
    except WeightsMissing as exc:
        raise error(f"{option} default: {exc.one_line}") from None
    if not weights.verified:
        raise error(f"{option} default: {weights.path} is not the published file (sha256 {weights.sha256[:12]}, "
                    f"expected {wf.expected}); replace it with {wf.url}, or name your own file with {own_spec}")
    return weights.path
