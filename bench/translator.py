"""The Translator protocol and the translator registry: the one seam every method plugs into.

A method is a class (or factory) registered under a name in ``METHODS`` (a ``bench.registry.Registry``).
Built-in methods live in the sub-packages of ``baselines`` and ``augan``, which are discovered by
importing them, so adding a method is one sub-package and nothing else; third-party packages add methods
through the ``augan_bench.translators`` entry-point group (``name = "package.module:Factory"``).

Domain naming follows AU-GAN's code: A = adverse (source), B = normal/day (target).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from collections.abc import Mapping
from typing import Any, Callable, Protocol, runtime_checkable

import torch
from torch import Tensor
from bench.errors import BenchError
from bench.registry import Registry, RegistryError, unknown_name_message  # noqa: F401 - re-exported

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


class EngineError(BenchError, ValueError):
    """An engine setting this device cannot run (the message says why and what to use instead)."""


CPU_BF16_FLAGS = ("avx512_bf16", "amx_bf16")  # /proc/cpuinfo flags of native bf16 arithmetic


def cpu_bf16(cpuinfo: str | None = None) -> tuple[bool, str]:
    """Whether this CPU computes bf16 natively (AVX-512 BF16 or AMX), and what was found: Linux's CPU flags, or
    where there are none, PyTorch's own capability string."""
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text()
        except OSError:
            cpuinfo = ""
    flags = {f for line in cpuinfo.splitlines() if line.startswith("flags") for f in line.split(":", 1)[1].split()}
    if flags:
        have = [f for f in CPU_BF16_FLAGS if f in flags]
        if have:
            return True, f"the CPU has {', '.join(have)}"
        model = next((ln.split(":", 1)[1].strip() for ln in cpuinfo.splitlines() if ln.startswith("model name")), "")
        return False, f"the CPU{f' ({model})' if model else ''} has neither {' nor '.join(CPU_BF16_FLAGS)}"
    capability = torch.backends.cpu.get_cpu_capability()
    if "AMX" in capability or "BF16" in capability:
        return True, f"PyTorch reports {capability}"
    return False, f"PyTorch reports {capability} (no AVX-512 BF16 or AMX)"


@dataclass(frozen=True)
class TrainEngine:
    """How training runs on the hardware; none of it changes what is learned beyond float rounding.

    Recorded in the run manifest. ``None`` means automatic: on for CUDA where it pays, off on the CPU.
    """

    precision: str = "fp32"  # "bf16": autocast the training step to bfloat16 (CUDA; CPUs with native bf16 units)
    channels_last: bool | None = None  # None: the method's config decides
    compile: bool = False  # torch.compile each network in place (first steps pay the compilation)
    fused_adam: bool | None = None  # fused Adam kernels; None: on for CUDA, foreach on the CPU
    workers: int | None = None  # DataLoader processes decoding and cropping batches; None: 4 on CUDA, 0 on CPU
    pin_memory: bool | None = None  # page-locked batches, copied with non_blocking; None: on for CUDA
    # cuDNN times its convolution algorithms once per input shape (training crops have one); None: on for CUDA
    cudnn_benchmark: bool | None = None

    def resolved(self, device: str) -> "TrainEngine":
        """The settings as they run on ``device``; bf16 on a CPU without native bf16 units is refused (it would be
        emulated, slower than fp32), naming what the CPU lacks."""
        cuda = device.startswith("cuda")
        if self.precision not in ("fp32", "bf16"):
            raise EngineError(f"unknown precision {self.precision!r}; use fp32 or bf16")
        if self.precision == "bf16" and not cuda:
            native, why = cpu_bf16()
            if not native:
                raise EngineError(f"--precision bf16 on this CPU: {why}, so bf16 would be emulated and slower than "
                                  "fp32; train with --precision fp32 (the default), or on a CPU with AVX-512 BF16 or "
                                  "AMX (Intel Cooper Lake, Sapphire Rapids and later; AMD Zen 4 and later)")
        return TrainEngine(
            precision=self.precision,
            channels_last=self.channels_last,
            compile=self.compile,
            fused_adam=cuda if self.fused_adam is None else self.fused_adam and cuda,
            workers=(4 if cuda else 0) if self.workers is None else self.workers,
            pin_memory=cuda if self.pin_memory is None else self.pin_memory and cuda,
            cudnn_benchmark=cuda if self.cudnn_benchmark is None else self.cudnn_benchmark and cuda,
        )


SELECT_FINAL = "final"
LOGGERS = ("tensorboard", "wandb")  # dashboards a training can write to besides its JSONL logs


@dataclass(frozen=True)
class TrainWatch:
    """What a training shows while it runs, and which of its checkpoints is scored. None of it changes what is
    learned: validation runs on a copy of the random state, so the weights at each step are those of a training
    without it."""

    logger: tuple[str, ...] = ("tensorboard",)  # dashboards besides train_log.jsonl: tensorboard, wandb; () none
    validate: bool = True  # curves on the suite's validation split (where it has one)
    val_every: int | None = None  # steps between validations; None: checkpoint_every (or a multiple: <= 20 of them)
    val_images: int = 16  # validation images translated each time (the first ones of the split: the same each time)
    # "final": the last step's weights are scored; "val:METRIC": every validated step's weights are kept and the
    # best by METRIC on the validation split is scored (never a score on the test split)
    select: str = SELECT_FINAL

    @property
    def select_metric(self) -> str | None:
        return None if self.select == SELECT_FINAL else self.select.split(":", 1)[1]

    def checked(self) -> "TrainWatch":
        unknown = [n for n in self.logger if n not in LOGGERS]
        if unknown:
            raise EngineError(f"unknown logger {unknown[0]!r}; use {', '.join(LOGGERS)} or none (JSONL only)")
        if self.select != SELECT_FINAL and not (self.select.startswith("val:") and self.select[4:]):
            raise EngineError(f"unknown selection rule {self.select!r}; use final or val:METRIC (e.g. val:kid) -- "
                              "checkpoints are chosen on the validation split, never on the test split")
        if self.select != SELECT_FINAL and not self.validate:
            raise EngineError(f"--select {self.select} needs validation; drop --no-validate")
        if self.val_images < 1 or (self.val_every is not None and self.val_every < 1):
            raise EngineError("--val-images and --val-every must be positive")
        return self


class Validator(Protocol):
    """The validation a run hands to training (``bench.validation``): fixed inputs, and scores of a translation."""

    metrics: dict[str, bool]  # metric -> higher is better
    inputs: Tensor  # N x 3 x H x W in [0, 1]: the validation images translated each time, the same every time

    def __call__(self, translated: Tensor) -> dict[str, float]:
        """Each metric of ``translated`` (the translations of ``inputs``, same layout)."""
        ...


@dataclass(frozen=True)
class TrainBudget:
    """What a run asks of one training: its seed, an optional step count, the engine, what to log and validate. The
    preset (which picks the method's schedule) and the device were chosen when the method was built, so they are
    not repeated here."""

    seed: int = 0
    max_steps: int | None = None  # overrides the preset's step count when set
    engine: TrainEngine = field(default_factory=TrainEngine)
    watch: TrainWatch = field(default_factory=TrainWatch)
    validator: Validator | None = None  # None: no validation split, or validation switched off


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


class TranslatorError(BenchError):
    """A user-facing problem a method reports (bad checkpoint, diverged training): shown as one line."""


class MethodUnavailable(TranslatorError):
    """A pretrained method whose files (or packages) are not on this machine. ``bench run`` lists its cells as
    skipped with this message (the fix) and goes on; a later run with the files present scores them."""


def _method_from_entry_point(name: str, factory: Any, source: str) -> MethodInfo:
    doc = (getattr(factory, "__doc__", None) or "").strip()
    description = doc.splitlines()[0] if doc else f"plug-in from {source}"
    return MethodInfo(name, factory, description, bool(getattr(factory, "learned", True)), source)


# Built-in methods register when their sub-package is imported: adding a method is one sub-package.
METHODS: Registry[MethodInfo] = Registry("method", builtins=tuple(f"{p}.*" for p in BUILTIN_PACKAGES),
                                         group=ENTRY_POINT_GROUP, from_entry_point=_method_from_entry_point)


def register_translator(
    name: str, *, description: str, learned: bool = True
) -> Callable[[Callable[..., Translator]], Callable[..., Translator]]:
    """Class decorator: register a Translator factory under ``name``.

    The factory is called as ``factory(preset=..., device=..., **overrides)`` and must return an object
    with the protocol's methods.
    """

    def deco(factory: Callable[..., Translator]) -> Callable[..., Translator]:
        source = getattr(factory, "__module__", "?")
        METHODS.add(name, MethodInfo(name, factory, description, learned, source), source)
        return factory

    return deco


def available_methods() -> dict[str, MethodInfo]:
    return {name: METHODS[name] for name in sorted(METHODS.names())}


def broken_methods() -> dict[str, str]:
    return METHODS.broken()


def method_info(name: str) -> MethodInfo:
    return METHODS.get_entry(name)


def build_translator(name: str, preset: str = "quick", device: str = "cpu",
                     overrides: Mapping[str, Any] | None = None, **options: Any) -> Translator:
    """The method ``name`` at ``preset``; ``overrides`` (hyperparameters, e.g. ``{"lambda_cycle": 5}``) are applied
    to its preset config and checked against its config dataclass (``bench.config.method_config``)."""
    info = method_info(name)
    if preset not in PRESETS:
        raise RegistryError(f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
    if overrides:
        from bench.config import method_config

        with torch.random.fork_rng(devices=[]):  # the probe must not move the RNG the initial weights come from
            probe = info.factory(preset=preset, device=device, **options)
        options = {**options, "config": method_config(getattr(probe, "config", None), overrides, name)}
    translator = info.factory(preset=preset, device=device, **options)
    missing = [m for m in ("fit", "translate", "state_dict", "load_state_dict") if not callable(getattr(translator, m, None))]
    if missing:
        raise RegistryError(f"method {name!r} ({info.source}) does not implement the Translator protocol: missing {missing}")
    return translator


def load_checkpoint(translator: Translator, checkpoint: Path, adopt_architecture: bool = True) -> Translator:
    """Load ``checkpoint`` (.safetensors, or a published .pth the method knows) into ``translator``.

    With ``adopt_architecture`` a method that offers ``configure_from_state`` first takes the checkpoint's own
    configuration (``bench translate``, the report: no preset is implied); without it the translator keeps its
    preset's architecture and a checkpoint of another one is refused with the method's mismatch message (a run
    reloading its own cell).
    """
    from safetensors import SafetensorError

    from bench.checkpoints import CheckpointError, load_tensor_dict

    if hasattr(translator, "load_file") and Path(checkpoint).suffix != ".safetensors":
        translator.load_file(checkpoint)  # a method whose published files are not state dicts (CycleGAN-Turbo)
        return translator
    try:
        state = load_tensor_dict(checkpoint)
    except (SafetensorError, OSError, CheckpointError) as exc:
        raise CheckpointError(f"{checkpoint}: not a readable checkpoint ({exc})") from None
    if adopt_architecture and hasattr(translator, "configure_from_state"):
        translator.configure_from_state(state)  # type: ignore[attr-defined]
    translator.load_state_dict(state)
    return translator


def load_translator(method: str, checkpoint: Path, device: str = "cpu", preset: str = "quick",
                    overrides: Mapping[str, Any] | None = None) -> Translator:
    """The one way a checkpoint becomes a translator: build ``method``, adopt the checkpoint's architecture, load."""
    return load_checkpoint(build_translator(method, preset=preset, device=device, overrides=overrides), checkpoint)
