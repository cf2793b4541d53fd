"""The kit every learned translator (GANs and Zero-DCE alike) builds on: ``Schedule``, the schedule fields a method's
config extends, and ``LearnedTranslator``, the training loop, logging, checkpoints and resume they share.

A method supplies its config (a frozen dataclass extending ``Schedule``), its networks and one training step;
this loop does the rest, the same way for all of them, so their schedules and checkpoints are comparable:
- unpaired batches (``bench.data.unpaired.UnpairedBatches``: the official CycleGAN/ForkGAN/AU-GAN loader),
  every random draw a function of (seed, step); ``A_BATCHES = 2`` adds a second, independent stream of A (UNSB);
- learning rate constant for ``epoch_decay`` epochs, then linear to 0 (per epoch);
- losses read back (a host sync) only every ``log_every`` steps, written with the learning rate, img/s and peak
  memory to ``train_log.jsonl`` and, when it imports, TensorBoard (``bench.training_log``); a non-finite loss stops
  training and names the last good checkpoint;
- every ``val_every`` steps the run's ``Validator`` scores translations of its fixed validation images (on rank 0,
  under a forked RNG: the weights are those of a training without it); with a ``val:METRIC`` rule each validated
  step's weights are kept and the best is loaded at the end (``selection.json`` says which, on what curve);
- ``train_state.pt`` (networks, optimizers, step, RNG, method extras such as an image pool) every
  ``checkpoint_every`` steps, written atomically; ``fit`` resumes from it and ends with the weights
  of an uninterrupted run;
- SIGTERM (what Slurm and most schedulers send before a kill) or SIGUSR1 (which Slurm sends ahead of time when asked
  with ``--signal``) ends training at the next step boundary with the state saved at that step
  (``TrainingStopped``; the command exits 128 + the signal's number), so nothing since the last periodic checkpoint
  is lost.
"""

from __future__ import annotations

import errno
import json
import math
import os
import signal
import sys
import threading
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Callable, ClassVar, Iterator

import torch
import torch.nn as nn
from tqdm import tqdm

from bench.atomic import atomic_write_bytes, atomic_write_json
from bench.training_log import VALIDATION_LOG, TrainingLog, choose_step, peak_memory_mib, read_jsonl, sample_grid
from bench.translator import TrainBudget, TrainEngine, TrainWatch, TranslatorError, UnpairedData, Validator

if TYPE_CHECKING:
    from bench.distributed import DistContext

TRAIN_STATE = "train_state.pt"
KEPT = "kept"  # <train>/kept/step<N>.safetensors: the weights of each validated step, when a rule selects one
SELECTION = "selection.json"  # the rule, the chosen step and the validation curve it was chosen on
VAL_BATCH = 8
GRID_ROWS = 4
MAX_VALIDATIONS = 20  # by default: a paper schedule's millions of steps would keep thousands of weight files


def default_val_every(total: int, checkpoint_every: int) -> int:
    """The checkpoint interval, or the smallest multiple of it that validates at most ``MAX_VALIDATIONS`` times."""
    return checkpoint_every * max(1, math.ceil(total / (MAX_VALIDATIONS * checkpoint_every)))
META_CONFIG = "_meta.config"  # checkpoint entries that say which method and configuration made it
META_METHOD = "_meta.method"


class TrainingDiverged(TranslatorError, RuntimeError):
    pass


class CheckpointMismatch(TranslatorError, ValueError):
    pass


class TrainingStopped(TranslatorError, RuntimeError):
    """Training ended on a signal, with its state saved at the step it had reached; ``exit_code`` is the shell's
    convention for that signal (143 for SIGTERM)."""

    def __init__(self, message: str, signum: int) -> None:
        super().__init__(message)
        self.signum = signum
        self.exit_code = 128 + signum


STOP_SIGNALS = (signal.SIGTERM, signal.SIGUSR1)
_ALSO_STOP_ON: list[int] = []  # signals a launcher adds for its job (submitit's preemption signal)


@contextmanager
def also_stop_on(signum: int) -> Iterator[None]:
    """Training also saves and stops on ``signum`` while this is open (a launcher's own preemption signal)."""
    _ALSO_STOP_ON.append(signum)
    try:
        yield
    finally:
        _ALSO_STOP_ON.remove(signum)


@contextmanager
def stop_requests(signals: tuple[int, ...] = STOP_SIGNALS) -> Iterator[Callable[[], int | None]]:
    """While training runs, ``signals`` only record a request to stop (the loop saves and ends at the next step
    boundary: a handler that saved mid-step would write a half-updated state). Yields what was asked: the signal's
    number, or None. Off the main thread (a launcher's worker), where Python allows no handlers, nothing changes."""
    asked: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield lambda: None
        return
    previous = {s: signal.signal(s, lambda signum, frame: asked.append(signum)) for s in signals}
    try:
        yield lambda: asked[0] if asked else None
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


@contextmanager
def eager(modules) -> Iterator[None]:
    """Modules compiled in place (``nn.Module.compile``) run eagerly while this is open: a validation's eval-mode
    forward at another batch and size would otherwise compile new graphs, minutes each on a CPU, for a few images."""
    saved = [(m, m._compiled_call_impl) for m in modules if getattr(m, "_compiled_call_impl", None) is not None]
    for m, _ in saved:
        m._compiled_call_impl = None
    try:
        yield
    finally:
        for m, impl in saved:
            m._compiled_call_impl = impl


def atomic_torch_save(obj, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        torch.save(obj, tmp)
        os.replace(tmp, path)
    except RuntimeError as exc:
        tmp.unlink(missing_ok=True)
        # torch's zip writer reports a full disk as "PytorchStreamWriter failed writing file ...": say it as the
        # OSError it is, so the command line gives its out-of-space message (the previous file is untouched).
        if "failed writing" in str(exc) or "file write failed" in str(exc):
            raise OSError(errno.ENOSPC, f"cannot write {path} ({str(exc).splitlines()[0]}); the disk is probably "
                                        "full", str(path)) from None
        raise
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def encode_text(text: str) -> torch.Tensor:
    """Text as a uint8 tensor, so configs can travel inside safetensors checkpoints."""
    return torch.frombuffer(bytearray(text.encode()), dtype=torch.uint8).clone()


def decode_text(t: torch.Tensor) -> str:
    return bytes(t.to(torch.uint8).tolist()).decode()


_NORM_STATISTICS = ("running_mean", "running_var", "num_batches_tracked")


def without_instance_norm_statistics(module: torch.nn.Module, sub: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """An authors' file from the PyTorch 0.3 era stores running statistics for InstanceNorm layers, which have none
    since 0.4; drop exactly those, as the authors' own test scripts do when they convert old files."""
    norms = {name for name, m in module.named_modules()
             if isinstance(m, torch.nn.modules.instancenorm._InstanceNorm) and not m.track_running_stats}
    return {k: v for k, v in sub.items()
            if not (k.rsplit(".", 1)[-1] in _NORM_STATISTICS and k.rsplit(".", 1)[0] in norms)}


def checkpoint_hint(keys) -> str:
    """The likely cause of a mismatch, read off the keys a file has that the model does not expect."""
    keys = list(keys)
    if any(k.endswith(".filt") for k in keys):
        return (". Its anti-aliased sampling layers ('.filt' buffers) say it comes from the CUT repository, whose "
                "cycle_gan and cut models sample with anti-aliasing by default: load its generator with --method cut "
                "(the same ResNet generator), or retrain there with --no_antialias --no_antialias_up for --method "
                "cyclegan")
    if keys and all(k.rsplit(".", 1)[-1] in _NORM_STATISTICS for k in keys):
        return (". The extra keys are normalisation statistics: the file was trained with another norm layer (e.g. "
                "BatchNorm where this method uses InstanceNorm)")
    return ""


def strip_wrapper_prefixes(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Accept weights saved from DDP ('module.') or torch.compile ('_orig_mod.') wrappers."""
    out = {}
    for k, v in state.items():
        for prefix in ("module.", "_orig_mod."):
            k = k.replace(prefix, "")
        out[k] = v
    return out


def padded_forward(fn, x: torch.Tensor, multiple: int = 4) -> torch.Tensor:
    """``fn`` on ``x`` padded (reflect, or replicate for tiny images) to a multiple of ``multiple`` on both sides,
    cropped back to the input size: translation at any size for networks with stride-2 stages."""
    h, w = x.shape[-2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    if ph or pw:
        x = torch.nn.functional.pad(x, (0, pw, 0, ph), mode="reflect" if min(h, w) > max(ph, pw) else "replicate")
    return fn(x)[..., :h, :w]


class JsonConfig:
    """Mixin for a method's frozen config dataclass: JSON round trip (checkpoints carry their config) and
    the list of architecture differences that stop a checkpoint from loading."""

    ARCHITECTURE_FIELDS: ClassVar[tuple[str, ...]] = ()
    TEST_TIME_FIELDS: ClassVar[tuple[str, ...]] = ()  # chosen when translating: a checkpoint's values do not bind
    LEGACY_FIELDS: ClassVar[tuple[str, ...]] = ()  # fields older checkpoints carry that no longer mean anything

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str):
        data = {k: v for k, v in json.loads(text).items() if k not in cls.LEGACY_FIELDS}
        unknown = set(data) - {f.name for f in fields(cls)}
        if unknown:
            raise ValueError(f"unknown {cls.__name__} fields in checkpoint: {sorted(unknown)}")
        return cls(**data)

    def architecture_mismatch(self, other) -> list[str]:
        return [f"{f}: checkpoint {getattr(other, f)!r}, model {getattr(self, f)!r}"
                for f in self.ARCHITECTURE_FIELDS if getattr(self, f) != getattr(other, f)]


@dataclass(frozen=True)
class Schedule(JsonConfig):
    """The fields the shared loop reads. A method's config extends this and re-declares the defaults its authors
    use (``epochs: int = 20``); everything else in it is the method's own."""

    lr: float = 2e-4
    epochs: int = 200
    epoch_decay: int = 100  # constant learning rate for this many epochs, then linear to 0
    batch_size: int = 1
    load_size: int | None = 286  # resize to load x 2*load, then random crop fine x 2*fine; None: native scale
    stretch_input: bool = False  # the TF loaders' scipy.misc.imresize: each image stretched to 0..255 first
    fine_size: int = 256
    max_steps: int | None = None  # stop after this many steps (None: the epochs decide)
    checkpoint_every: int = 500
    log_every: int = 10
    channels_last: bool = False


class LearnedTranslator:
    """Base for learned translators. Subclasses set the class attributes below (``PRESETS``: configs extending
    ``Schedule``) and implement ``_build``, ``modules``, ``setup_training``, ``train_step`` and ``translate``;
    training (``fit``, with resume, logging and the engine switches) and checkpoints (``state_dict`` /
    ``load_state_dict`` / ``configure_from_state``) come from here, with two hooks for the authors' published
    files. ``bench new-method NAME`` writes a working example."""

    METHOD: ClassVar[str]  # the registry name and the id written into checkpoints
    KIND: ClassVar[str]  # for messages: "a CycleGAN", "an AU-GAN"
    CHECKPOINT_NETS: ClassVar[dict[str, str]]  # key prefix in checkpoints -> attribute holding that network
    PRESETS: ClassVar[dict[str, Schedule]]  # smoke / quick / paper
    A_BATCHES: ClassVar[int] = 1  # independent batches of domain A per step, one after another in real_a

    learned = True
    name: str
    device: torch.device
    config: Schedule

    def __init__(self, preset: str = "quick", device: str = "cpu", config: Schedule | None = None) -> None:
        self.name = self.METHOD
        self.device = torch.device(device)
        self.config = config or self.PRESETS[preset]
        self._build()

    def _build(self) -> None:
        raise NotImplementedError

    def modules(self) -> dict[str, nn.Module]:
        raise NotImplementedError

    def setup_training(self, seed: int) -> list[torch.optim.Optimizer]:
        """Build optimizers (and any training-only state such as an image pool); return the optimizers."""
        raise NotImplementedError

    def train_step(self, real_a: torch.Tensor, real_b: torch.Tensor, optimizers: list) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def extra_train_state(self) -> dict:
        return {}

    def load_extra_train_state(self, state: dict) -> None:
        pass

    # ------------------------------------------------------------------ checkpoints
    def official_state(self, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor] | None:
        """Hook: a file in the authors' layout, re-keyed with our prefixes (networks it lacks are not loaded);
        None when ``state`` is not one."""
        return None

    def config_from_official(self, state: dict[str, torch.Tensor]):
        """Hook: the configuration an authors' file implies (read off its shapes), or None."""
        return None

    def state_dict(self) -> dict[str, torch.Tensor]:
        state = {f"{prefix}.{k}": v for prefix, attr in self.CHECKPOINT_NETS.items()
                 for k, v in getattr(self, attr).state_dict().items()}
        state[META_CONFIG] = encode_text(self.config.to_json())
        state[META_METHOD] = encode_text(self.METHOD)
        return state

    def configure_from_state(self, state: dict[str, torch.Tensor]) -> None:
        """Adopt the checkpoint's architecture (for ``bench translate``, where no preset is implied)."""
        state = strip_wrapper_prefixes(state)
        self._refuse_another_method(state)
        if META_CONFIG in state:
            adopted = type(self.config).from_json(decode_text(state[META_CONFIG]))
            self.config = replace(adopted, **{f: getattr(self.config, f) for f in adopted.TEST_TIME_FIELDS})
        else:
            self.config = self.config_from_official(state) or self.config
        self._build()

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        state = strip_wrapper_prefixes(state)
        official = None if META_METHOD in state else self.official_state(state)
        if official is None:
            self._refuse_another_method(state)
            if META_METHOD not in state:
                raise CheckpointMismatch(f"not {self.KIND} checkpoint (no {self.KIND.split()[-1]} metadata, and not "
                                         f"in the authors' layout; first keys: {', '.join(list(state)[:3])})"
                                         + checkpoint_hint(state))
            mismatch = self.config.architecture_mismatch(type(self.config).from_json(decode_text(state[META_CONFIG])))
            if mismatch:
                raise CheckpointMismatch(f"{self.KIND.split()[-1]} checkpoint does not fit this model: "
                                         f"{'; '.join(mismatch)}")
        source = official if official is not None else state
        for prefix, attr in self.CHECKPOINT_NETS.items():
            sub = {k[len(prefix) + 1:]: v for k, v in source.items() if k.startswith(prefix + ".")}
            if sub or official is None:  # an authors' file may hold one network only (CycleGAN's G_A)
                module = getattr(self, attr)
                if official is not None:
                    sub = without_instance_norm_statistics(module, sub)
                self._load_network(module, sub, prefix)

    def _refuse_another_method(self, state: dict[str, torch.Tensor]) -> None:
        maker = decode_text(state[META_METHOD]) if META_METHOD in state else None
        if maker is not None and maker != self.METHOD:
            raise CheckpointMismatch(f"not {self.KIND} checkpoint: it was written by method {maker!r}; use "
                                     f"--method {maker}")

    def _load_network(self, module: torch.nn.Module, sub: dict[str, torch.Tensor], prefix: str) -> None:
        """Load one network strictly; a mismatch names the first missing, unexpected and misshapen keys."""
        foreign = [k for k in sub if k not in module.state_dict()]
        try:
            missing, unexpected = module.load_state_dict(sub, strict=False)
        except RuntimeError as exc:  # shapes: torch lists every "size mismatch for KEY: ..." on its own line
            sizes = [ln.strip() for ln in str(exc).splitlines() if "size mismatch" in ln]
            raise CheckpointMismatch(f"{self.KIND.split()[-1]} weights do not fit this configuration "
                                     f"({self.config.to_json()[:120]}...): "
                                     + ("; ".join(sizes[:3]) + (f" (and {len(sizes) - 3} more)" if len(sizes) > 3 else "")
                                        if sizes else str(exc).splitlines()[0]) + checkpoint_hint(foreign)) from None
        if missing or unexpected:
            parts = [f"{len(keys)} {what} key(s) in '{prefix}', e.g. {', '.join(keys[:3])}"
                     for what, keys in (("missing", missing), ("unexpected", unexpected)) if keys]
            raise CheckpointMismatch(f"{self.KIND.split()[-1]} weights do not fit this model: {'; '.join(parts)}"
                                     + checkpoint_hint(dict.fromkeys(unexpected)))

    # ------------------------------------------------------------------ the loop
    def use_engine(self, engine: TrainEngine) -> None:
        """Adopt the engine (resolved for this device): Adam's kernels, the memory format of networks and batches,
        cuDNN's autotuning (a process-wide switch: ``fit`` restores it when training ends)."""
        self.engine = engine.resolved(str(self.device))
        if self.device.type == "cuda":
            torch.backends.cudnn.benchmark = self.engine.cudnn_benchmark
        if self.engine.channels_last is not None:
            self.config = replace(self.config, channels_last=self.engine.channels_last)
        if self.config.channels_last:
            for m in self.modules().values():
                m.to(memory_format=torch.channels_last)

    def engine_step(self, real_a: torch.Tensor, real_b: torch.Tensor, optimizers: list) -> dict[str, torch.Tensor]:
        """One ``train_step`` as the engine runs it: non-blocking copy, memory format, bf16 autocast (CUDA, or a CPU
        with native bf16)."""
        real_a = real_a.to(self.device, non_blocking=True)
        real_b = real_b.to(self.device, non_blocking=True)
        if self.config.channels_last:
            real_a = real_a.contiguous(memory_format=torch.channels_last)
            real_b = real_b.contiguous(memory_format=torch.channels_last)
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.engine.precision == "bf16"):
            return self.train_step(real_a, real_b, optimizers)

    def adam(self, params, lr: float, betas: tuple[float, float] = (0.9, 0.999), weight_decay: float = 0.0):
        """Adam as the method asks, with the engine's kernel choice (fused on CUDA unless switched off)."""
        fused = bool(getattr(self, "engine", None) and self.engine.fused_adam)
        return torch.optim.Adam(params, lr=lr, betas=betas, weight_decay=weight_decay, fused=fused or None)

    def clip_grad_norm(self, params, max_norm: float) -> None:
        """Clip the gradient of the global batch: under data parallelism the ranks' gradients are averaged first
        (the optimizer's own averaging is then a no-op), as one process with the whole batch would clip."""
        from bench import distributed

        params = [p for p in params if p.grad is not None]
        ctx = distributed.current()
        if ctx.enabled:
            distributed.average_gradients([p.grad for p in params], ctx.world)
        torch.nn.utils.clip_grad_norm_(params, max_norm)

    def fit(self, data: UnpairedData, budget: TrainBudget, out_dir: Path) -> None:
        from bench import distributed
        from bench.data.unpaired import StepBatches, UnpairedBatches

        if budget.max_steps is not None:
            self.config = replace(self.config, max_steps=budget.max_steps)
        cudnn_before = torch.backends.cudnn.benchmark
        self.use_engine(budget.engine)
        engine, c = self.engine, self.config
        ctx = distributed.current()
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)

        def draws(k: int) -> UnpairedBatches:  # the k-th independent stream of batches (k > 0: domain A only)
            return UnpairedBatches(data.train_a, data.train_b, c.batch_size, c.load_size, c.fine_size,
                                   budget.seed + 1_000_000 * k, ctx.rank, ctx.world, stretch=c.stretch_input)

        batches, extra_a = draws(0), [draws(k) for k in range(1, self.A_BATCHES)]
        total = c.max_steps if c.max_steps is not None else batches.steps_per_epoch * c.epochs
        optimizers = self.setup_training(budget.seed + 1000 * ctx.rank)  # per-rank pools draw independently
        if ctx.enabled:
            distributed.broadcast_modules(self.modules())
            for opt in optimizers:
                distributed.average_gradients_before_step(opt, ctx.world)
        start = self._resume(out_dir, optimizers, ctx)
        watch, validator = budget.watch, budget.validator
        log = TrainingLog(out_dir, watch.logger, start, enabled=ctx.is_main, run_name=f"{self.name}-seed{budget.seed}")
        for note in log.notes:
            tqdm.write(f"warning: {self.name}: {note}", file=sys.stderr)
        log.hyperparameters({"method": self.METHOD, "seed": budget.seed, **asdict(c),
                             **{f"engine.{k}": v for k, v in asdict(engine).items() if v is not None}})
        val_every = watch.val_every or default_val_every(total, c.checkpoint_every)
        if engine.compile:
            for m in self.modules().values():
                m.compile()
        for m in self.modules().values():
            m.train()
        pending: list[tuple[int, float, dict[str, torch.Tensor]]] = []
        window = time.perf_counter()
        loader = torch.utils.data.DataLoader(
            StepBatches(batches, start, total, extra_a), batch_size=None, shuffle=False, num_workers=engine.workers,
            pin_memory=engine.pin_memory, prefetch_factor=4 if engine.workers else None,
            # its own generator: creating the iterator must not draw from the global RNG, which a resume restores
            generator=torch.Generator().manual_seed(budget.seed))
        bar = tqdm(zip(range(start, total), loader), initial=start, total=total, desc=f"train {self.name}",
                   unit="step", leave=False, disable=not ctx.is_main)
        # Under data parallelism every rank would have to stop at the same step; there the periodic checkpoints serve.
        with stop_requests(() if ctx.enabled else (*STOP_SIGNALS, *_ALSO_STOP_ON)) as stop_asked, log:
            for step, (real_a, real_b) in bar:
                factor = self.lr_factor(step, total)
                lr = c.lr * factor
                for opt in optimizers:
                    for group in opt.param_groups:  # a group may have its own base rate (DECENT's flows)
                        group["lr"] = group.get("base_lr", c.lr) * factor
                pending.append((step, lr, self.engine_step(real_a, real_b, optimizers)))
                done = step + 1
                signum = stop_asked()
                if done % c.log_every == 0 or done % c.checkpoint_every == 0 or done == total or signum:
                    images = len(pending) * c.batch_size * ctx.world / max(time.perf_counter() - window, 1e-9)
                    self._flush_log(pending, log, out_dir, ctx, images_per_s=images)
                    bar.set_postfix(g=f"{float(pending[-1][2]['g_total']):.3f}" if pending else "")
                    pending.clear()
                    window = time.perf_counter()
                if validator is not None and (done % val_every == 0 or done == total):
                    self._validate(validator, done, log, out_dir, keep_weights=watch.select_metric is not None,
                                   ctx=ctx)
                    window = time.perf_counter()  # img/s counts training only
                if done % c.checkpoint_every == 0 or done == total or signum:
                    self._save_train_state(out_dir, done, optimizers, ctx)
                if signum and done < total:
                    bar.close()
                    raise TrainingStopped(f"{self.name}: {signal.Signals(signum).name} at step {done} of {total}: the "
                                          f"training state is saved at that step ({out_dir / TRAIN_STATE}); run the "
                                          "same command again to resume from it", signum)
        for m in self.modules().values():
            m.eval()
        torch.backends.cudnn.benchmark = cudnn_before  # test images may come in many sizes: no per-shape tuning
        if watch.select_metric is not None:
            self._select(watch, validator, out_dir, total, ctx)

    @torch.no_grad()
    def _validate(self, validator: Validator, step: int, log: TrainingLog, out_dir: Path, keep_weights: bool,
                  ctx: DistContext) -> None:
        """Score the fixed validation inputs' translations, log them and their grid, and (when a checkpoint is to be
        selected) keep this step's weights. On rank 0; on a copy of the random state, so training after it draws
        what it would have drawn without it (a method may sample noise when it translates)."""
        if ctx.is_main:
            started = time.perf_counter()
            with torch.random.fork_rng(devices=[self.device] if self.device.type == "cuda" else []), \
                    eager(self.modules().values()):
                for m in self.modules().values():
                    m.eval()
                try:
                    translated = torch.cat([self.translate(x.to(self.device)).float().cpu()
                                            for x in validator.inputs.split(VAL_BATCH)])
                finally:
                    for m in self.modules().values():
                        m.train()
            # as the scorer sees translations: written to 8 bits
            translated = torch.round(translated.clamp(0, 1) * 255) / 255
            values = validator(translated)
            log.validation(step, values, len(translated), time.perf_counter() - started)
            log.samples(step, sample_grid(validator.inputs[:GRID_ROWS], translated[:GRID_ROWS]))
            log.flush()
            if keep_weights:
                from safetensors.torch import save

                state = {k: v.detach().cpu().contiguous() for k, v in self.state_dict().items()}
                atomic_write_bytes(out_dir / KEPT / f"step{step:07d}.safetensors", save(state))
        ctx.barrier()

    def _select(self, watch: TrainWatch, validator: Validator | None, out_dir: Path, total: int,
                ctx: DistContext) -> None:
        """Load the kept weights of the best validated step by the rule's metric; record the choice and the curve."""
        from safetensors.torch import load_file

        metric = watch.select_metric
        if validator is None or metric not in validator.metrics:
            have = ", ".join(validator.metrics) if validator is not None else "none (no validation split)"
            raise CheckpointMismatch(f"--select {watch.select}: the validation split has no {metric!r} "
                                     f"(available: {have})")
        higher = validator.metrics[metric]
        curve = [(int(r["step"]), float(r[f"val/{metric}"])) for r in read_jsonl(out_dir / VALIDATION_LOG)
                 if f"val/{metric}" in r]
        best = choose_step(curve, higher)
        if best is None:
            raise TrainingDiverged(f"{self.name}: --select {watch.select}: no finite validation {metric} was logged "
                                   f"({out_dir / VALIDATION_LOG}); nothing to choose from")
        path = out_dir / KEPT / f"step{best:07d}.safetensors"
        self.load_state_dict(load_file(str(path)))
        for m in self.modules().values():
            m.eval()
        if ctx.is_main:
            atomic_write_json(out_dir / SELECTION, {
                "rule": watch.select, "metric": metric, "higher_is_better": higher, "step": best,
                "total_steps": total, "value": dict(curve)[best], "curve": [[s, v] for s, v in curve],
                "validation_images": len(validator.inputs), "weights": str(path.relative_to(out_dir))})

    def lr_factor(self, step: int, total: int) -> float:
        """Constant for epoch_decay epochs, then linear to 0 (per epoch, as the official loops)."""
        c = self.config
        epoch = min(c.epochs - 1, int(step * c.epochs / total))
        if epoch < c.epoch_decay:
            return 1.0
        return (c.epochs - epoch) / (c.epochs - c.epoch_decay)

    def _flush_log(self, pending, log: TrainingLog, out_dir: Path, ctx: DistContext, images_per_s: float) -> None:
        """The one host sync per ``log_every`` steps; under data parallelism the logged losses are rank means. Each
        row also has the step's learning rate and, for the steps since the last row, img/s and peak memory."""
        if not pending:
            return
        keys = list(pending[0][2])
        table = torch.stack([torch.stack([losses[k].detach().float().reshape(()) for k in keys])
                             for _, _, losses in pending])
        if ctx.enabled:
            from bench.distributed import mean_over_ranks

            table = mean_over_ranks(table)
        table = table.cpu().tolist()
        rows = []
        peak = peak_memory_mib(self.device)
        for (step, lr, _), row in zip(pending, table):
            values = dict(zip(keys, row))
            if not all(math.isfinite(v) for v in values.values()):
                last = out_dir / TRAIN_STATE
                keep = f"the last good checkpoint is {last}" if last.is_file() else "no checkpoint was written yet"
                bad = ", ".join(k for k, v in values.items() if not math.isfinite(v))
                raise TrainingDiverged(f"{self.name}: non-finite loss ({bad}) at step {step + 1}; training stopped, {keep}")
            rows.append({"step": step + 1, **values, "lr": lr, "img_per_s": round(images_per_s, 4),
                         "peak_mem_mib": peak})
        if ctx.is_main:
            log.losses(rows)

    def _save_train_state(self, out_dir: Path, step: int, optimizers: list, ctx: DistContext) -> None:
        """Rank 0 writes networks and optimizers (identical on every rank); each rank's pool and RNG ride along."""
        from bench import distributed

        per_rank = distributed.gather_to_main({
            "extra": self.extra_train_state(),
            "torch_rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state_all() if self.device.type == "cuda" else [],
        }, ctx)
        if ctx.is_main:
            state = {
                "step": step,
                "world": ctx.world,
                "config": self.config.to_json(),
                "models": {k: m.state_dict() for k, m in self.modules().items()},
                "optimizers": [o.state_dict() for o in optimizers],
                "ranks": per_rank,
            }
            atomic_torch_save(state, out_dir / TRAIN_STATE)
        ctx.barrier()  # nobody runs ahead of a checkpoint it may have to resume from

    def _resume(self, out_dir: Path, optimizers: list, ctx: DistContext) -> int:
        path = out_dir / TRAIN_STATE
        if not path.is_file():
            return 0
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
            saved = type(self.config).from_json(state["config"])
        except Exception as exc:  # noqa: BLE001 - truncated, damaged or foreign: one message, one fix
            raise CheckpointMismatch(f"{path}: the training state to resume from is damaged ({type(exc).__name__}: "
                                     f"{str(exc).splitlines()[0] if str(exc) else 'unreadable'}); delete it to "
                                     "train this cell from the start (or from its last intact checkpoint)") from None
        mismatch = self.config.architecture_mismatch(saved)
        if mismatch:
            raise CheckpointMismatch(f"{path} was made with another {self.name} configuration ({'; '.join(mismatch)}); "
                                     "delete it or use the matching preset")
        if state.get("world", 1) != ctx.world:
            raise CheckpointMismatch(f"{path} was written by {state.get('world', 1)} process(es); resume it with the "
                                     f"same number (this run has {ctx.world}), or delete it to start over")
        for k, m in self.modules().items():
            m.load_state_dict(state["models"][k])
        for o, s in zip(optimizers, state["optimizers"]):
            o.load_state_dict(s)
        mine = state["ranks"][ctx.rank] if "ranks" in state else state  # files from before data parallelism
        self.load_extra_train_state(mine["extra"])
        torch.set_rng_state(mine["torch_rng"])
        if mine["cuda_rng"]:
            torch.cuda.set_rng_state_all(mine["cuda_rng"])
        # Log lines past the checkpoint belong to the interrupted attempt: TrainingLog drops them.
        ctx.barrier()
        return int(state["step"])
