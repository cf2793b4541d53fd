"""One behaviour suite over the whole method registry (bench.conformance): every registered method, built-in or
installed plug-in, passes the same checks. Per-method test files keep only what is specific to a method.

The training checks (smoke training lowers the loss, kill-and-resume equals an uninterrupted run) train every
learned method at the smoke preset; variants that share a trained method's class and loop (the AU-GAN
ablations, FastCUT) and the slowest method to train (ForkGAN) run them in the slow suite, so the quick suite stays
within its time.
"""

from __future__ import annotations

import hashlib
from contextlib import contextmanager

import pytest

from bench import conformance
from bench.translator import MethodUnavailable, available_methods

METHODS = sorted(available_methods())
LEARNED = [m for m in METHODS if available_methods()[m].learned]
VARIANTS = {"augan-no-afm", "augan-no-tnet", "augan-no-uncertainty", "fastcut"}
SLOW_TO_TRAIN = {"forkgan"}  # ~20 s per smoke training on 2 cores (three discriminator families)
TRAINING = [pytest.param(m, marks=pytest.mark.slow) if m in VARIANTS | SLOW_TO_TRAIN else m for m in LEARNED]

def kill_step(name: str, steps: int = 8) -> int:
    """A step in (2, steps], drawn from the method's name: random across methods, the same on every run."""
    return 3 + int(hashlib.sha256(name.encode()).hexdigest(), 16) % (steps - 2)


@pytest.mark.parametrize("name", METHODS)
def test_translate_contract(name, smoke_suite, tmp_path):
    with _unless_unavailable():
        conformance.check_translate_contract(name, smoke_suite.unpaired(), tmp_path)


@pytest.mark.parametrize("name", METHODS)
def test_state_round_trip_through_safetensors(name, smoke_suite, tmp_path):
    with _unless_unavailable():
        conformance.check_state_round_trip(name, smoke_suite.unpaired(), tmp_path)


@contextmanager
def _unless_unavailable():
    """A pretrained method whose published files are not here (CycleGAN-Turbo offline) is skipped, saying why."""
    try:
        yield
    except MethodUnavailable as exc:
        pytest.skip(f"its files are not on this machine: {exc}")


@pytest.mark.parametrize("name", LEARNED)
def test_refuses_foreign_checkpoints_clearly(name):
    conformance.check_refuses_foreign_checkpoints(name)


@pytest.mark.parametrize("name", TRAINING)
def test_smoke_training_lowers_the_loss(name, smoke_suite, tmp_path):
    conformance.check_training_lowers_loss(name, smoke_suite.unpaired(), tmp_path)


@pytest.mark.parametrize("name", TRAINING)
def test_kill_at_a_random_step_and_resume_equals_an_uninterrupted_run(name, smoke_suite, tmp_path):
    conformance.check_kill_and_resume(name, smoke_suite.unpaired(), tmp_path, kill_at=kill_step(name))


def test_kill_steps_differ_between_methods():
    assert len({kill_step(m) for m in LEARNED}) > 1


def test_a_broken_method_fails_the_contract(plugin_site):
    """The checks can fail: a plug-in that returns a crop (and one that is not deterministic) is caught."""
    import subprocess
    import sys

    site = plugin_site("crop_plugin", "cropper", "Cropper", translate="return images[..., 1:, :]")
    code = ("from bench import conformance\n"
            "try:\n    conformance.check_translate_contract('cropper', None, '.')\n"
            "except AssertionError as e:\n    print('FAIL', e)\n")
    out = subprocess.run([sys.executable, "-c", code], env={"PYTHONPATH": str(site), "PATH": ""},
                         capture_output=True, text=True, check=True).stdout
    assert out.startswith("FAIL cropper: (2, 3, 36, 53) for input (2, 3, 37, 53)"), out
