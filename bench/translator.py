"""The Translator protocol and the translator registry: the one seam every method plugs into.

A method is a class (or factory) registered under a name. Built-in methods live in the
sub-packages of ``baselines`` and ``augan``, which are discovered by importing them, so adding
a method is one sub-package and nothing else; third-party packages add methods through the
``augan_bench.translators`` entry-point group (``name = "package.module:Factory"``).

Domain naming follows AU-GAN's code: A = adverse (source), B = normal/day (target).
"""

from __future__ import annotations

import difflib
import importlib
import pkgutil
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any, Callable, Protocol, runtime_checkable

from torch import Tensor

ENTRY_POINT_GROUP = "augan_bench.translators"
BUILTIN_PACKAGES = ("baselines", "augan")
PRESETS = ("smoke", "quick", "paper")


@dataclass(frozen=True)
class UnpairedData:
    """Training data of one suite: unpaired image files of the two domains."""

    train_a: tuple[Path, ...]  # adverse
    train_b: tuple[Path, ...]  # normal / day
    height: int
    width: int


@dataclass(frozen=True)
class TrainEngine:
    """How training runs on the hardware; none of it changes what is learned beyond float rounding.

    Recorded in the run manifest. ``None`` means automatic: on for CUDA where it pays, off on the CPU.
    """

    precision: str = "fp32"  # "bf16": autocast the training step to bfloat16 on CUDA (no loss scaling needed)
    channels_last: bool | None = None  # None: the method's config decides
    compile: bool = False  # torch.compile each network in place (first steps pay the compilation)
    fused_adam: bool | None = None  # fused Adam kernels; None: on for CUDA, foreach on the CPU
    workers: int | None = None  # DataLoader processes decoding and cropping batches; None: 4 on CUDA, 0 on CPU
    pin_memory: bool | None = None  # page-locked batches, copied with non_blocking; None: on for CUDA
    # cuDNN times its convolution algorithms once per input shape (training crops have one); None: on for CUDA
    cudnn_benchmark: bool | None = None

    def resolved(self, device: str) -> "TrainEngine":
        cuda = device.startswith("cuda")
        if self.precision not in ("fp32", "bf16"):
            raise ValueError(f"unknown precision {self.precision!r}; use fp32 or bf16")
        return TrainEngine(
            precision=self.precision if cuda else "fp32",  # bf16 is a CUDA setting; the CPU trains (and records) fp32
            channels_last=self.channels_last,
            compile=self.compile,
            fused_adam=cuda if self.fused_adam is None else self.fused_adam and cuda,
            workers=(4 if cuda else 0) if self.workers is None else self.workers,
            pin_memory=cuda if self.pin_memory is None else self.pin_memory and cuda,
            cudnn_benchmark=cuda if self.cudnn_benchmark is None else self.cudnn_benchmark and cuda,
        )


@dataclass(frozen=True)
class TrainBudget:
    """How much a method may train, and where: the preset picks the method's own schedule."""

    preset: str = "quick"
    seed: int = 0
    device: str = "cpu"
    max_steps: int | None = None  # overrides the preset's step count when set
    engine: TrainEngine = field(default_factory=TrainEngine)


@runtime_checkable
class Translator(Protocol):
    name: str

    def fit(self, data: UnpairedData, budget: TrainBudget, out_dir: Path) -> None: ...

    def translate(self, images: Tensor) -> Tensor:
        """Adverse -> normal; ``images`` and the result are N x 3 x H x W float in [0, 1], same size."""
        ...

    def state_dict(self) -> dict[str, Tensor]: ...

    def load_state_dict(self, state: dict[str, Tensor]) -> None: ...


@dataclass(frozen=True)
class MethodInfo:
    name: str
    factory: Callable[..., Translator]
    description: str
    learned: bool
    source: str  # module or entry point it came from


class RegistryError(LookupError):
    pass


class TranslatorError(Exception):
    """A user-facing problem a method reports (bad checkpoint, diverged training): shown as one line."""


@dataclass
class _Registry:
    methods: dict[str, MethodInfo] = field(default_factory=dict)
    broken: dict[str, str] = field(default_factory=dict)  # name/module -> why it failed to load
    discovered: bool = False


_REGISTRY = _Registry()


def register_translator(
    name: str, *, description: str, learned: bool = True
) -> Callable[[Callable[..., Translator]], Callable[..., Translator]]:
    """Class decorator: register a Translator factory under ``name``.

    The factory is called as ``factory(preset=..., device=...)`` and must return an object
    with the protocol's methods.
    """

    def deco(factory: Callable[..., Translator]) -> Callable[..., Translator]:
        _add(MethodInfo(name, factory, description, learned, getattr(factory, "__module__", "?")))
        return factory

    return deco


def _add(info: MethodInfo) -> None:
    if not info.name or info.name != info.name.strip().lower() or " " in info.name:
        raise RegistryError(f"method name {info.name!r} must be lower-case without spaces")
    existing = _REGISTRY.methods.get(info.name)
    if existing is not None and existing.factory is not info.factory:
        raise RegistryError(
            f"method {info.name!r} is registered twice: by {existing.source} and by {info.source}; rename one"
        )
    _REGISTRY.methods[info.name] = info


def _discover() -> None:
    if _REGISTRY.discovered:
        return
    _REGISTRY.discovered = True
    for pkg_name in BUILTIN_PACKAGES:
        pkg = importlib.import_module(pkg_name)
        for mod in pkgutil.iter_modules(pkg.__path__, prefix=f"{pkg_name}."):
            try:
                importlib.import_module(mod.name)
            except Exception as exc:  # noqa: BLE001 - recorded and re-raised when the method is asked for
                _REGISTRY.broken[mod.name] = f"{type(exc).__name__}: {exc}"
    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
        if ep.name in _REGISTRY.methods:
            # The built-in keeps the name; the clash is shown by `bench list` instead of being ignored.
            taken_by = _REGISTRY.methods[ep.name].source
            _REGISTRY.broken[f"{ep.name} ({ep.value})"] = (
                f"entry point {ep.value!r} uses the name {ep.name!r}, already registered by {taken_by}; rename it")
            continue
        try:
            factory = ep.load()
        except Exception as exc:  # noqa: BLE001
            _REGISTRY.broken[ep.name] = f"entry point {ep.value!r} failed to load: {type(exc).__name__}: {exc}"
            continue
        doc = (getattr(factory, "__doc__", None) or "").strip()
        description = doc.splitlines()[0] if doc else f"plug-in from {ep.value}"
        _add(MethodInfo(ep.name, factory, description, bool(getattr(factory, "learned", True)), f"entry point {ep.value}"))


def available_methods() -> dict[str, MethodInfo]:
    _discover()
    return dict(sorted(_REGISTRY.methods.items()))


def broken_methods() -> dict[str, str]:
    _discover()
    return dict(_REGISTRY.broken)


def method_info(name: str) -> MethodInfo:
    methods = available_methods()
    if name in methods:
        return methods[name]
    if name in _REGISTRY.broken:
        raise RegistryError(f"method {name!r} failed to load: {_REGISTRY.broken[name]}")
    raise RegistryError(unknown_name_message("method", name, methods))


def build_translator(name: str, preset: str = "quick", device: str = "cpu", **options: Any) -> Translator:
    info = method_info(name)
    if preset not in PRESETS:
        raise RegistryError(f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
    translator = info.factory(preset=preset, device=device, **options)
    missing = [m for m in ("fit", "translate", "state_dict", "load_state_dict") if not callable(getattr(translator, m, None))]
    if missing:
        raise RegistryError(f"method {name!r} ({info.source}) does not implement the Translator protocol: missing {missing}")
    return translator


def unknown_name_message(kind: str, name: str, valid: Any) -> str:
    names = sorted(valid)
    close = difflib.get_close_matches(name, names, n=3, cutoff=0.5)
    hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    return f"unknown {kind} {name!r}.{hint} Valid {kind}s: {', '.join(names)}"
