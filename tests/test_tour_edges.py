"""What a new user's tour found (issue 33): each class gets one clear line or an honest, counted handling, shown here
as the user sees it."""

from __future__ import annotations

import json
import struct
import zlib

import numpy as np
import pytest
from click.testing import CliRunner

from bench.cli import main
from conftest import random_images


def _images(folder, names, size=(32, 64), seed=0):
    return random_images(folder, names, size, seed)


def _bomb(path, width=30000, height=30000):
    """A small PNG whose header claims ``width`` x ``height`` pixels (its data is a few bytes: never decodable)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64))
                     + chunk(b"IEND", b""))
    return path


# -- images whose header claims an enormous size -----------------------------------------------------------------

def test_a_decompression_bomb_is_refused_before_decoding_naming_the_file_and_the_limit(tmp_path, monkeypatch):
    import tracemalloc

    from bench.data.io import ImageTooLarge, read_label, read_rgb

    bomb = _bomb(tmp_path / "bomb.png")
    tracemalloc.start()
    for read in (read_rgb, read_label):
        with pytest.raises(ImageTooLarge, match=r"bomb\.png: the header declares 900,000,000 pixels, more than the "
                                                r"limit of 178,956,970"):
            read(bomb)
    assert tracemalloc.get_traced_memory()[1] < 50 * 2**20  # nothing the size of the image was allocated
    tracemalloc.stop()
    # Between our limit and Pillow's own refusal: still ours, with the exact size.
    mid = _bomb(tmp_path / "mid.png", 10000, 10000)
    monkeypatch.setenv("AUGAN_BENCH_MAX_IMAGE_PIXELS", "60000000")
    with pytest.raises(ImageTooLarge, match=r"mid\.png: the header declares 10000x10000 = 100,000,000 pixels, more "
                                            r"than the limit of 60,000,000 .* AUGAN_BENCH_MAX_IMAGE_PIXELS=N"):
        read_rgb(mid)
    # Raised above it, the file is opened and fails as what it is: a truncated image, not a bomb.
    monkeypatch.setenv("AUGAN_BENCH_MAX_IMAGE_PIXELS", "2000000000")
    with pytest.raises(Exception) as info:
        read_rgb(bomb)
    assert not isinstance(info.value, ImageTooLarge)
    monkeypatch.setenv("AUGAN_BENCH_MAX_IMAGE_PIXELS", "lots")
    with pytest.raises(Exception, match="give a whole number of pixels"):
        read_rgb(mid)


def test_data_check_lists_bombs_as_a_class_and_run_and_score_say_one_line(tmp_path):
    root = tmp_path / "suite"
    for sub in ("trainA", "trainB", "testB"):
        _images(root / sub, ["a.png", "b.png"])
    _images(root / "testA", ["x.png", "y.png"])
    _bomb(root / "testA" / "z.png")
    res = CliRunner().invoke(main, ["data", "check", "--suite", f"folder:{root}"])
    assert "testA image(s) declaring more than 178,956,970 pixels, refused before decoding" in res.output
    assert "z.png (900,000,000 pixels)" in res.output and "Traceback" not in res.output
    run = CliRunner().invoke(main, ["run", "--suite", f"folder:{root}", "--methods", "identity", "--preset", "smoke",
                                    "--out", str(tmp_path / "r"), "--device", "cpu"])
    assert run.exit_code == 2 and "z.png: the header declares" in run.output and "Traceback" not in run.output
    # bench score: a bomb among the translations is listed with every other problem of the folder.
    (root / "testA" / "z.png").unlink()
    out = _images(tmp_path / "out", ["x.png"], seed=3)
    _bomb(out / "y.png")
    score = CliRunner().invoke(main, ["score", "--suite", f"folder:{root}", "--preset", "smoke", "--translations",
                                      str(out), "--method", "mine", "--out", str(tmp_path / "s"), "--device", "cpu"])
    assert score.exit_code == 2 and "1 unreadable file(s): y.png (the header declares 900,000,000 pixels" in score.output
    # Its limit is recorded with every run.
    ok = CliRunner().invoke(main, ["run", "--suite", f"folder:{root}", "--methods", "identity", "--preset", "smoke",
                                   "--out", str(tmp_path / "r2"), "--device", "cpu"])
    assert ok.exit_code == 0, ok.output
    manifest = json.loads(next((tmp_path / "r2").glob("*/smoke/manifest.json")).read_text())
    assert manifest["image_pixel_limit"] == 178_956_970


# -- translations of another aspect ratio --------------------------------------------------------------------------

def test_square_outputs_of_wide_inputs_are_refused_even_with_resize_to_input_unless_intended(tmp_path):
    root = tmp_path / "suite"
    for sub in ("trainA", "trainB", "testB"):
        _images(root / sub, ["a.png", "b.png"])
    _images(root / "testA", ["x.png", "y.png"], size=(32, 64))
    squares = _images(tmp_path / "squares", ["x.png", "y.png"], size=(48, 48), seed=5)  # CUT's test.py: 256x256 crops
    args = ["score", "--suite", f"folder:{root}", "--preset", "smoke", "--translations", str(squares), "--method",
            "cut-default", "--out", str(tmp_path / "s"), "--device", "cpu", "--no-bounds"]
    for extra in ([], ["--resize-to-input"]):
        res = CliRunner().invoke(main, [*args, *extra])
        assert res.exit_code == 2 and "2 translation(s) of another aspect ratio than their input" in res.output
        assert "x.png is 48x48, its input 32x64" in res.output and "--preprocess none" in res.output
        assert not (tmp_path / "s").exists()
    res = CliRunner().invoke(main, [*args, "--resize-to-input", "--allow-aspect-change"])
    assert res.exit_code == 0, res.output
    run_dir = next((tmp_path / "s").glob("*/smoke"))
    external = json.loads((run_dir / "manifest.json").read_text())["external"]["cut-default"]
    assert external["aspect_changed"] == 2 and external["resized"] == 2
    assert "2 of them from another aspect ratio (--allow-aspect-change" in (run_dir / "tables" / "summary.md").read_text()
    # Same aspect, another size: --resize-to-input alone, as before.
    halves = _images(tmp_path / "halves", ["x.png", "y.png"], size=(16, 32), seed=6)
    ok = CliRunner().invoke(main, [*args[:6], str(halves), *args[7:], "--resize-to-input", "--out", str(tmp_path / "h")])
    assert ok.exit_code == 0, ok.output


# -- --print-config checks what it prints --------------------------------------------------------------------------

def test_print_config_refuses_what_bench_run_refuses(tmp_path):
    config = tmp_path / "run.toml"
    config.write_text('methods = ["identity", "cyclegan"]\npreset = "smoke"\n\n[method.cyclegan]\nlambda_cycle = "ten"\n')
    printed = CliRunner().invoke(main, ["run", "--config", str(config), "--print-config"])
    ran = CliRunner().invoke(main, ["run", "--config", str(config), "--out", str(tmp_path / "r"), "--device", "cpu"])
    def error(res):
        return [line for line in res.output.splitlines() if line.startswith("error:")]

    assert printed.exit_code == ran.exit_code == 2
    assert error(printed) == error(ran) == ["error: method 'cyclegan'.lambda_cycle: 'ten' is not float"]
    trained = CliRunner().invoke(main, ["train", "--method", "cyclegan", "--config", str(config), "--print-config"])
    assert trained.exit_code == 2 and error(trained) == error(printed)
    config.write_text('methods = ["identity", "cyclegan"]\npreset = "smoke"\n\n[method.cyclegan]\nlambda_cycle = 5.0\n')
    good = CliRunner().invoke(main, ["run", "--config", str(config), "--print-config"])
    assert good.exit_code == 0 and "lambda_cycle = 5.0" in good.output


# -- classical methods need no checkpoint --------------------------------------------------------------------------

def test_translate_without_a_checkpoint_for_methods_without_state(tmp_path):
    from bench.data.io import read_rgb, to_tensor, to_uint8
    from bench.translator import build_translator

    src = _images(tmp_path / "night", ["a.png", "b.png"])
    res = CliRunner().invoke(main, ["translate", "--method", "clahe", "--input", str(src), "--output",
                                    str(tmp_path / "day"), "--device", "cpu"])
    assert res.exit_code == 0, res.output
    expected = to_uint8(build_translator("clahe").translate(to_tensor(read_rgb(src / "a.png"))[None])[0])
    assert np.array_equal(read_rgb(tmp_path / "day" / "a.png"), expected)
    for method, says in (("gamma", "its exponent is fitted to the training images"),
                         ("histmatch", "its target histograms are those of the day training images"),
                         ("cyclegan", "it is trained")):
        res = CliRunner().invoke(main, ["translate", "--method", method, "--input", str(src), "--output",
                                        str(tmp_path / method), "--device", "cpu"])
        assert res.exit_code == 2 and f"--method {method} needs --checkpoint: {says}" in res.output, res.output
        assert not (tmp_path / method).exists()


# -- conventions ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("command", [[], ["run"], ["score"], ["data", "check"], ["weights", "list"], ["tables"],
                                     ["compare"], ["translate"]])
def test_h_is_help_wherever_help_is(command):
    res = CliRunner().invoke(main, [*command, "-h"])
    assert res.exit_code == 0 and res.output.startswith("Usage: ") and "-h, --help" in res.output


# -- preemption ----------------------------------------------------------------------------------------------------

def _cyclegan(steps_between_checkpoints: int):
    from dataclasses import replace

    from bench.translator import build_translator

    t = build_translator("cyclegan", preset="smoke")
    t.config = replace(t.config, log_every=1, checkpoint_every=steps_between_checkpoints)
    return t


def test_sigterm_mid_epoch_saves_that_step_and_the_resumed_run_ends_as_an_uninterrupted_one(smoke_suite, tmp_path):
    import os
    import signal

    import torch

    from bench.learned import TRAIN_STATE, TrainingStopped
    from bench.translator import TrainBudget

    data, steps = smoke_suite.unpaired(), 6
    torch.manual_seed(0)
    straight = _cyclegan(4)
    straight.fit(data, TrainBudget(0, max_steps=steps), tmp_path / "straight")

    torch.manual_seed(0)
    stopped = _cyclegan(4)  # the periodic checkpoint comes at step 4: the signal arrives at step 3, between two
    cls, original, calls = type(stopped), type(stopped).train_step, {"n": 0}

    def signalled(self, *args, **kwargs):
        out = original(self, *args, **kwargs)
        calls["n"] += 1
        if calls["n"] == 3:
            os.kill(os.getpid(), signal.SIGTERM)  # what Slurm sends before the kill
        return out

    cls.train_step = signalled
    try:
        with pytest.raises(TrainingStopped) as info:
            stopped.fit(data, TrainBudget(0, max_steps=steps), tmp_path / "stopped")
    finally:
        cls.train_step = original
    assert info.value.exit_code == 143 and "SIGTERM at step 3 of 6: the training state is saved" in str(info.value)
    assert torch.load(tmp_path / "stopped" / TRAIN_STATE, weights_only=False)["step"] == 3
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # the handler is gone once training ends
    torch.manual_seed(99)
    resumed = _cyclegan(4)
    resumed.fit(data, TrainBudget(0, max_steps=steps), tmp_path / "stopped")
    for k, v in straight.state_dict().items():
        assert torch.equal(v, resumed.state_dict()[k]), k
    log = [json.loads(x)["step"] for x in (tmp_path / "stopped" / "train_log.jsonl").read_text().splitlines()]
    assert log == list(range(1, steps + 1))  # one line per step: none lost, none twice


def test_the_cli_exits_with_the_signals_code_and_says_where_the_state_is(monkeypatch):
    import bench.runner
    from bench.learned import TrainingStopped

    def stopped(cfg):
        raise TrainingStopped("cyclegan: SIGTERM at step 3 of 6: the training state is saved at that step (X)", 15)

    monkeypatch.setattr(bench.runner, "run", stopped)
    res = CliRunner().invoke(main, ["run", "--methods", "cyclegan"])
    assert res.exit_code == 143 and "stopped: cyclegan: SIGTERM at step 3" in res.output


def test_a_slurm_cell_saves_on_submitits_signal_then_hands_over_to_its_requeue(monkeypatch):
    import signal

    import submitit

    from bench.launch import RequeuedCell
    from bench.learned import _ALSO_STOP_ON, TrainingStopped

    seen, requeued = [], []

    def job(cfg, method, seed):
        seen.append(list(_ALSO_STOP_ON))  # the training loop would stop on submitit's signal too
        raise TrainingStopped("saved", signal.SIGUSR2)

    previous = signal.signal(signal.SIGUSR2, lambda signum, frame: requeued.append(signum))  # stands in for submitit's
    try:
        cell = RequeuedCell(job)
        with pytest.raises(TrainingStopped):
            cell("cfg", "cyclegan", 1)
    finally:
        signal.signal(signal.SIGUSR2, previous)
    assert seen == [[signal.SIGUSR2]] and requeued == [signal.SIGUSR2] and _ALSO_STOP_ON == []
    again = cell.checkpoint("cfg", "cyclegan", 1)
    assert isinstance(again, submitit.helpers.DelayedSubmission) and again.args == ("cfg", "cyclegan", 1)


# -- scoring large sets within memory -------------------------------------------------------------------------------

def test_kid_replicates_from_kernel_row_blocks_equal_the_gathered_kernels():
    """Above d images the KID replicates come from quadratic forms over row blocks (no N x N kernel is held); on a
    small set with d below N they equal the unbiased MMD^2 of the gathered kernel matrices, resample by resample."""
    import torch
    from torch_fidelity.metric_kid import kernel_poly

    from bench.metrics.bootstrap import Draws, draws_key
    from bench.metrics.fid_kid import LARGE_SET_RESAMPLES, fid_kid_replicates, kid_replicates_blockwise, mmd2_unbiased

    rng = np.random.default_rng(7)
    x1, x2 = rng.normal(size=(40, 8)), rng.normal(0.3, 1, size=(33, 8))
    d = Draws(draws_key({"kid": 1}), 40, 33, 500)
    rows, cols = d.indices(50), d.reference_indices(50)
    k11, k22, k12 = kernel_poly(x1, x1), kernel_poly(x2, x2), kernel_poly(x1, x2)
    gathered = [mmd2_unbiased(k11[np.ix_(i, i)], k12[np.ix_(i, j)], k22[np.ix_(j, j)]) for i, j in zip(rows, cols)]
    np.testing.assert_allclose(kid_replicates_blockwise(x1, x2, rows, cols, block=7), gathered, rtol=1e-9, atol=1e-12)
    fids, kids = fid_kid_replicates(torch.from_numpy(x1), torch.from_numpy(x2), d)  # 40 > 8 dimensions: blockwise
    assert len(kids) == len(fids) == LARGE_SET_RESAMPLES
    np.testing.assert_allclose(kids[:50], gathered, rtol=1e-9, atol=1e-12)
