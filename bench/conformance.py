"""The behaviour every method must show, as plain functions that raise ``AssertionError``.

``tests/test_conformance.py`` runs them over every registered method, built-in and plug-in alike (as timm
tests every model in its registry); the test ``bench new-method`` writes runs them on the new method; a
plug-in package can call them from its own tests. Each check builds the method from the registry, so what is
checked is what ``bench run`` uses.

- ``check_translate_contract``: output size equals input size at odd sizes, values in [0, 1], float, and
  translating twice gives the same bits.
- ``check_state_round_trip``: the state dict through safetensors bytes, loaded into a fresh instance,
  reproduces the output exactly.
- ``check_refuses_foreign_checkpoints`` (learned methods): another method's checkpoint, and one of another
  architecture of this method, are refused with a one-line ``BenchError``, not a torch traceback.
- ``check_training_lowers_loss`` / ``check_kill_and_resume`` (learned methods on the shared loop): smoke
  training lowers the total loss; a run killed at a given step and resumed ends with the weights of an
  uninterrupted run.
"""

from __future__ import annotations

import json
from contextlib import contextmanager
from dataclasses import fields, replace
from pathlib import Path
from typing import Iterator

import torch

from bench.errors import BenchError
from bench.translator import METHODS, TrainBudget, Translator, UnpairedData, build_translator

ODD_SIZES = ((37, 53), (64, 97))


def _built(name: str, seed: int = 0, device: str = "cpu") -> Translator:
    torch.manual_seed(seed)
    return build_translator(name, preset="smoke", device=device)


def _ready(name: str, data: UnpairedData, out_dir: Path, seed: int = 0) -> Translator:
    """Built, and fitted when the method is not learned (a classical method's fit is what it translates with;
    a learned method translates with its initial weights here, which is enough for the contract)."""
    t = _built(name, seed)
    if not METHODS[name].learned:
        t.fit(data, TrainBudget(seed), Path(out_dir))
    return t


def _images(h: int, w: int, n: int = 2, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 3, h, w, generator=g) * 0.5  # dark-ish, like adverse inputs


def check_translate_contract(name: str, data: UnpairedData, out_dir: Path) -> None:
    t = _ready(name, data, out_dir)
    for h, w in ODD_SIZES:
        x = _images(h, w)
        with torch.no_grad():
            y = t.translate(x)
            again = t.translate(x)
        assert isinstance(y, torch.Tensor) and y.dtype == torch.float32, f"{name}: returned {type(y)} {y.dtype}"
        assert y.shape == x.shape, f"{name}: {tuple(y.shape)} for input {tuple(x.shape)}"
        assert float(y.min()) >= 0.0 and float(y.max()) <= 1.0, f"{name}: values outside [0, 1]"
        assert torch.equal(y, again), f"{name}: translating twice gave different outputs"


def _through_safetensors(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    from safetensors.torch import load, save

    if not state:
        return {}
    return load(save({k: v.detach().cpu().contiguous() for k, v in state.items()}))


def check_state_round_trip(name: str, data: UnpairedData, out_dir: Path) -> None:
    t = _ready(name, data, out_dir, seed=1)
    x = _images(*ODD_SIZES[0], seed=2)
    fresh = _built(name, seed=2)  # other initial weights: only the loaded state can make it agree
    fresh.load_state_dict(_through_safetensors(t.state_dict()))
    with torch.no_grad():
        assert torch.equal(fresh.translate(x), t.translate(x)), f"{name}: reloaded state gives another output"


def _other_architecture(t: Translator):
    """This method's config with one architecture field changed, or None when it declares none."""
    config = getattr(t, "config", None)
    for f in getattr(config, "ARCHITECTURE_FIELDS", ()):
        value = getattr(config, f)
        if isinstance(value, bool):
            return replace(config, **{f: not value})
        if isinstance(value, int):
            return replace(config, **{f: value + 1})
    return None


def check_refuses_foreign_checkpoints(name: str) -> None:
    t = _built(name)
    # A donor of another class: an ablation that shares the architecture (augan-no-afm) may load augan's weights.
    donor_name, donor = "a foreign", {"x.weight": torch.zeros(1)}
    for m in METHODS.names():
        if m != name and METHODS[m].learned:
            other = _built(m)
            if type(other) is not type(t):
                donor_name, donor = m, other.state_dict()
                break
    try:
        t.load_state_dict(_through_safetensors(donor))
    except BenchError:
        pass
    else:
        raise AssertionError(f"{name}: loaded {donor_name} checkpoint without complaint")
    other = _other_architecture(t)
    if other is None:
        return
    state = dict(t.state_dict())
    from bench.learned import META_CONFIG, encode_text

    state[META_CONFIG] = encode_text(other.to_json())
    try:
        t.load_state_dict(state)
    except BenchError as exc:
        changed = [f.name for f in fields(other) if getattr(other, f.name) != getattr(t.config, f.name)]
        assert changed[0] in str(exc), f"{name}: the mismatch message does not name {changed[0]}: {exc}"
    else:
        raise AssertionError(f"{name}: loaded a checkpoint of another architecture without complaint")


def _fit(name: str, data: UnpairedData, out_dir: Path, steps: int, seed: int = 0, checkpoint_every: int = 0,
         init_seed: int | None = None, device: str = "cpu") -> Translator:
    t = _built(name, seed=seed if init_seed is None else init_seed, device=device)
    if hasattr(getattr(t, "config", None), "log_every"):  # every step logged; checkpoints as often as asked
        t.config = replace(t.config, log_every=1, **({"checkpoint_every": checkpoint_every} if checkpoint_every else {}))
    torch.manual_seed(seed)
    t.fit(data, TrainBudget(seed, max_steps=steps), out_dir)
    return t


def _log(out_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (Path(out_dir) / "train_log.jsonl").read_text().splitlines()]


def check_training_lowers_loss(name: str, data: UnpairedData, out_dir: Path, steps: int = 30) -> None:
    _fit(name, data, out_dir, steps)
    log = _log(out_dir)
    assert len(log) == steps, f"{name}: {len(log)} log lines for {steps} steps"
    k = max(1, steps // 3)
    first, last = sum(r["g_total"] for r in log[:k]), sum(r["g_total"] for r in log[-k:])
    assert last < first, f"{name}: g_total did not go down over {steps} smoke steps ({first / k:.4g} -> {last / k:.4g})"


@contextmanager
def planted_kill(cls: type, kill_at: int) -> Iterator[None]:
    """While open, the ``kill_at``-th call of ``cls.train_step`` raises KeyboardInterrupt, as a kill would: no state
    is saved past the last periodic checkpoint."""
    original, calls = cls.train_step, {"n": 0}

    def dies(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == kill_at:
            raise KeyboardInterrupt
        return original(self, *args, **kwargs)

    cls.train_step = dies
    try:
        yield
    finally:
        cls.train_step = original


def check_kill_and_resume(name: str, data: UnpairedData, out_dir: Path, kill_at: int, steps: int = 8,
                          device: str = "cpu") -> None:
    """Kill (KeyboardInterrupt inside the ``kill_at``-th training step), resume with other initial weights and
    global RNG, and compare every tensor of the state with an uninterrupted run's (on CUDA: with deterministic
    algorithms switched on by the caller)."""
    assert 2 < kill_at <= steps
    straight = _fit(name, data, out_dir / "straight", steps, checkpoint_every=2, device=device)
    with planted_kill(type(_built(name)), kill_at):
        try:
            _fit(name, data, out_dir / "killed", steps, checkpoint_every=2, device=device)
        except KeyboardInterrupt:
            pass
        else:
            raise AssertionError(f"{name}: the planted kill at step {kill_at} did not happen")
    torch.manual_seed(99)
    resumed = _fit(name, data, out_dir / "killed", steps, checkpoint_every=2, init_seed=99, device=device)
    theirs = resumed.state_dict()
    for k, v in straight.state_dict().items():
        assert torch.equal(v, theirs[k]), f"{name}: {k} differs after kill at step {kill_at} and resume"
