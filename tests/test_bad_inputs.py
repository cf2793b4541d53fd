"""Ordinary mistakes get one clear line (which file, what is wrong, what to do; exit 2), never a traceback and never
a silent wrong number (issue 17's classes that are not about one metric or one method)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image
from safetensors.torch import save_file

from bench.cli import main


from conftest import random_images as _images  # noqa: E402


def _checkpoint(tmp_path, method="gamma"):
    from bench.translator import build_translator

    path = tmp_path / f"{method}.safetensors"
    save_file(build_translator(method).state_dict(), path)
    return path


def _translate(ckpt, src, out, method="gamma"):
    return CliRunner().invoke(main, ["translate", "--method", method, "--checkpoint", str(ckpt), "--input", str(src),
                                     "--output", str(out), "--device", "cpu"])


def test_two_inputs_that_would_write_one_translation_are_refused(tmp_path):
    """a.jpg and a.png would both become a.png: one would overwrite the other while the metric counted both."""
    src = _images(tmp_path / "night", ["a.png", "a.jpg", "b.png"])
    res = _translate(_checkpoint(tmp_path), src, tmp_path / "day")
    assert res.exit_code == 2 and "a.jpg and a.png -> a.png" in res.output and "rename one" in res.output
    assert not (tmp_path / "day").exists()
    # A folder suite says so before anything trains.
    root = tmp_path / "suite"
    for sub in ("trainA", "trainB", "testB"):
        _images(root / sub, ["x.png", "y.png"])
    _images(root / "testA", ["n1.png", "n1.jpeg", "n2.png"])
    res = CliRunner().invoke(main, ["run", "--suite", f"folder:{root}", "--methods", "identity", "--preset", "smoke",
                                    "--out", str(tmp_path / "r")])
    assert res.exit_code == 2 and "n1.jpeg and n1.png -> n1.png" in res.output and "Traceback" not in res.output


def test_translate_keeps_only_its_own_earlier_outputs(tmp_path):
    """Kept outputs count as translated: a folder with another checkpoint's (or anyone's) images is refused."""
    src = _images(tmp_path / "night", ["a.png", "b.png"])
    gamma, identity = _checkpoint(tmp_path, "gamma"), _checkpoint(tmp_path, "identity")
    out = tmp_path / "day"
    assert _translate(gamma, src, out).exit_code == 0
    first = (out / "a.png").read_bytes()
    assert _translate(gamma, src, out).exit_code == 0  # the same checkpoint again: resume, outputs kept
    assert (out / "a.png").read_bytes() == first
    res = _translate(identity, src, out, "identity")
    assert res.exit_code == 2 and "holds 2 translation(s) by method gamma" in res.output and "empty --output" in res.output
    assert (out / "a.png").read_bytes() == first
    stranger = _images(tmp_path / "someone", ["a.png"])
    res = _translate(gamma, src, stranger)
    assert res.exit_code == 2 and "bench translate did not write" in res.output


def test_a_gpu_that_is_not_there_is_named(monkeypatch):
    from bench.runner import RunError, resolve_device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    assert resolve_device("cuda:0") == "cuda:0"
    with pytest.raises(RunError, match=r"--device cuda:1 was asked for, but torch sees GPUs 0-0 .*use --device cuda:0"):
        resolve_device("cuda:1")
    with pytest.raises(RunError, match="cuda:N"):
        resolve_device("cuda:one")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    res = CliRunner().invoke(main, ["run", "--preset", "smoke", "--device", "cuda:1", "--out", "/nonexistent/x"])
    assert res.exit_code == 2 and "torch sees no CUDA GPU" in res.output and "Traceback" not in res.output


def test_a_run_folder_made_at_another_size_is_not_extended(tmp_path):
    root = tmp_path / "suite"
    for sub in ("trainA", "trainB", "testA", "testB"):
        _images(root / sub, ["x.png", "y.png"], size=(32, 64))
    args = ["run", "--preset", "smoke", "--methods", "identity", "--suite", f"folder:{root}", "--name", "n",
            "--out", str(tmp_path / "r"), "--device", "cpu"]
    assert CliRunner().invoke(main, [*args, "--size", "16x32"]).exit_code == 0
    res = CliRunner().invoke(main, [*args, "--size", "24x48", "--methods", "gamma"])
    assert res.exit_code == 2 and "cells made at 16x32 images" in res.output and "asks for 24x48" in res.output
    assert "another --name" in res.output
    run_dir = next((tmp_path / "r").glob("*/n"))
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["image_size"] == [16, 32] and not (run_dir / "cells" / "gamma").exists()
    assert CliRunner().invoke(main, [*args, "--size", "24x48", "--force"]).exit_code == 0  # --force redoes it all


def test_the_training_loader_decodes_16_bit_images_and_resizes_as_the_official_loader(tmp_path):
    """scipy.misc.imresize, rebuilt here from its parts as scipy 1.1 wrote them: bytescale a float image to 0..255
    (cmin/cmax of the image, + 0.5, uint8), then PIL's bilinear resize of the 8-bit image."""
    from bench.data.unpaired import UnpairedBatches

    rng = np.random.default_rng(1)
    night = (rng.random((90, 160, 3)) * 120 + 20).astype(np.uint8)  # spans 20..140: the stretch matters
    Image.fromarray(night).save(tmp_path / "n.png")
    wide = (np.arange(160, dtype=np.uint16)[None, :].repeat(90, 0) * 400)  # a 16-bit grey ramp, 0..63600
    Image.fromarray(wide).save(tmp_path / "d16.png")
    with Image.open(tmp_path / "d16.png") as im:
        assert im.mode.startswith("I")  # PIL's own convert("RGB") would make it white

    def scipy_imresize(img, size):
        data = img.astype(np.float64)
        cmin, cmax = data.min(), data.max()
        scale = 255.0 / ((cmax - cmin) or 1)
        byte = ((data - cmin) * scale).clip(0, 255) + 0.5
        return np.array(Image.fromarray(byte.astype(np.uint8)).resize((size[1], size[0]), resample=Image.BILINEAR))

    for stretch in (True, False):
        b = UnpairedBatches([tmp_path / "n.png"], [tmp_path / "d16.png"], 1, load_size=36, fine_size=36, seed=0,
                            stretch=stretch)
        a, d = b.batch(0)
        want = scipy_imresize(night, (36, 72)) if stretch else np.array(
            Image.fromarray(night).resize((72, 36), resample=Image.BILINEAR))
        got = ((a[0].permute(1, 2, 0) + 1) * 127.5).round().numpy().astype(np.uint8)
        flipped = np.array_equal(got, want[:, ::-1])
        assert np.array_equal(got, want) or flipped
        grey = ((d[0] + 1) * 127.5).round()
        assert float(grey.min()) < 10 and float(grey.max()) > 240  # the 16-bit ramp, not clipped to white
    # Plain bilinear interpolation (no anti-aliasing) would be far from the official loader on a downscale.
    plain = torch.nn.functional.interpolate(torch.from_numpy(night).permute(2, 0, 1)[None].float(), size=(36, 72),
                                            mode="bilinear", align_corners=False)[0].permute(1, 2, 0).numpy()
    official = np.array(Image.fromarray(night).resize((72, 36), resample=Image.BILINEAR)).astype(np.float64)
    assert np.abs(plain - official).mean() > 3


def test_an_undecodable_training_image_names_the_file(tmp_path):
    from bench.data.io import ImageReadError
    from bench.data.unpaired import UnpairedBatches

    _images(tmp_path, ["ok.png"])
    (tmp_path / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    b = UnpairedBatches([tmp_path / "bad.png"], [tmp_path / "ok.png"], 1, None, 8, seed=0)
    with pytest.raises(ImageReadError, match=r"bad.png: cannot read image .*re-export or remove the file"):
        b.batch(0)


def test_one_run_per_folder_and_a_stale_lock_is_taken_over(tmp_path, capfd):
    import os
    import socket
    import subprocess
    import sys

    from bench.lock import LOCK_NAME

    root = tmp_path / "suite"
    for sub in ("trainA", "trainB", "testA", "testB"):
        _images(root / sub, ["x.png", "y.png"])
    run_dir = tmp_path / "r" / f"folder_{str(root).replace('/', '_')}" / "smoke"
    run_dir.mkdir(parents=True)
    args = ["run", "--preset", "smoke", "--methods", "identity", "--suite", f"folder:{root}", "--out",
            str(tmp_path / "r"), "--device", "cpu"]
    lock = run_dir / LOCK_NAME
    # A live process holds it: refused, with the owner and the way out.
    lock.write_text(json.dumps({"host": socket.gethostname(), "pid": os.getppid(), "started": "2026-12-06T01:00:00"}))
    res = CliRunner().invoke(main, args)
    assert res.exit_code == 2 and f"pid {os.getppid()}" in res.output and "in use by another bench run" in res.output
    assert not (run_dir / "cells").exists()
    # Another machine holds it (a shared file system): refused, and told which file to delete if it is gone.
    lock.write_text(json.dumps({"host": "elsewhere", "pid": 1, "started": "2026-12-06T01:00:00"}))
    res = CliRunner().invoke(main, args)
    assert res.exit_code == 2 and "on elsewhere" in res.output and f"delete {lock}" in res.output
    # A killed run's lock: its process is gone, so the run takes it over, says so, and releases it at the end.
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    lock.write_text(json.dumps({"host": socket.gethostname(), "pid": int(dead.stdout), "started": "then"}))
    res = CliRunner().invoke(main, args)
    assert res.exit_code == 0, res.output
    assert "taking over a stale lock" in capfd.readouterr().err + res.output
    assert not lock.exists() and (run_dir / "metrics.csv").is_file()


def test_a_checkpoint_of_another_method_names_that_method(tmp_path):
    src = _images(tmp_path / "night", ["a.png"])
    gamma = _checkpoint(tmp_path, "gamma")
    for method in ("identity", "histmatch", "cyclegan"):
        res = _translate(gamma, src, tmp_path / f"out-{method}", method)
        assert res.exit_code == 2 and "Traceback" not in res.output, res.output
        assert "not a" in res.output and "gamma" in res.output, res.output
    from bench.translator import build_translator

    cut = tmp_path / "cut.safetensors"
    save_file(build_translator("cut", preset="smoke").state_dict(), cut)
    res = _translate(cut, src, tmp_path / "o", "cyclegan")
    assert res.exit_code == 2 and "written by method 'cut'; use --method cut" in res.output


def test_network_mismatches_name_the_keys_and_the_likely_cause():
    from bench.learned import CheckpointMismatch, checkpoint_hint
    from bench.translator import build_translator

    m = build_translator("cyclegan", preset="smoke")
    state = {k: v for k, v in m.state_dict().items()}
    first = next(k for k in state if k.startswith("g_a2b."))
    del state[first]
    state["g_a2b.model.99.filt"] = torch.zeros(1)
    with pytest.raises(CheckpointMismatch, match=rf"1 missing key\(s\) in 'g_a2b', e.g. {first[6:]}.*1 unexpected key"
                                                 r".*anti-aliased sampling layers .*--method cut"):
        m.load_state_dict(state)
    shapes = dict(m.state_dict())
    shapes[first] = torch.zeros(3)
    with pytest.raises(CheckpointMismatch, match=rf"size mismatch for {first[6:]}"):
        m.load_state_dict(shapes)
    assert "norm layer" in checkpoint_hint(["model.1.running_mean", "model.1.running_var"])


def test_a_full_disk_during_torch_save_is_the_out_of_space_error(tmp_path, monkeypatch):
    import errno

    from bench.learned import atomic_torch_save

    def full(obj, f, *a, **k):
        raise RuntimeError("[enforce fail at inline_container.cc:672] . PytorchStreamWriter failed writing file "
                           "data/3: file write failed")

    monkeypatch.setattr(torch, "save", full)
    (tmp_path / "train_state.pt").write_bytes(b"previous")
    with pytest.raises(OSError) as info:
        atomic_torch_save({"x": 1}, tmp_path / "train_state.pt")
    assert info.value.errno == errno.ENOSPC and "disk is probably full" in str(info.value)
    assert (tmp_path / "train_state.pt").read_bytes() == b"previous" and len(list(tmp_path.iterdir())) == 1


def test_damaged_run_folder_pieces_are_repaired_or_named(tmp_path):
    """A cut metrics.json is scored again; an unreadable manifest is rewritten; a cut checkpoint or train state names
    the file and the way out (exit 2, no traceback)."""
    args = ["run", "--preset", "smoke", "--methods", "identity,gamma", "--suite", "synthetic-fog", "--out", str(tmp_path),
            "--device", "cpu"]
    assert CliRunner().invoke(main, args).exit_code == 0
    run_dir = tmp_path / "synthetic-fog" / "smoke"
    metrics = run_dir / "cells" / "gamma" / "seed0" / "metrics.json"
    good = json.loads(metrics.read_text())
    metrics.write_text(metrics.read_text()[:50])
    (run_dir / "manifest.json").write_text("{not json")
    res = CliRunner().invoke(main, args)
    assert res.exit_code == 0, res.output
    assert json.loads(metrics.read_text())["records"] == good["records"]  # rescored: the same numbers
    assert (metrics.parent / "metrics.json.damaged").is_file()
    assert json.loads((run_dir / "manifest.json").read_text())["suite"] == "synthetic-fog"
    # A learned cell whose checkpoint was cut short (its metrics gone, so it must be loaded again).
    learned = ["run", "--preset", "smoke", "--methods", "cyclegan", "--suite", "synthetic-fog", "--out",
               str(tmp_path), "--device", "cpu", "--name", "l", "--max-steps", "2"]
    assert CliRunner().invoke(main, learned).exit_code == 0
    cell = tmp_path / "synthetic-fog" / "l" / "cells" / "cyclegan" / "seed0"
    (cell / "metrics.json").unlink()
    ckpt = cell / "checkpoint.safetensors"
    ckpt.write_bytes(ckpt.read_bytes()[:100])
    res = CliRunner().invoke(main, learned)
    assert res.exit_code == 2 and "checkpoint is damaged: delete" in res.output and str(cell) in res.output
    assert "Traceback" not in res.output


def test_a_cut_training_state_names_the_file(tmp_path):
    from bench.distributed import current
    from bench.learned import TRAIN_STATE, CheckpointMismatch
    from bench.translator import build_translator

    out = tmp_path / "train"
    out.mkdir()
    (out / TRAIN_STATE).write_bytes(b"PK\x03\x04 cut short")
    m = build_translator("cyclegan", preset="smoke")
    with pytest.raises(CheckpointMismatch, match=rf"{TRAIN_STATE}: the training state to resume from is damaged"):
        m._resume(out, m.setup_training(0), current())


def test_an_image_too_small_for_a_learned_method_is_named_before_training(tmp_path):
    root = tmp_path / "suite"
    for sub in ("trainA", "trainB", "testB"):
        _images(root / sub, ["x.png", "y.png"], size=(40, 80))
    _images(root / "testA", ["ok.png"], size=(40, 80))
    _images(root / "testA", ["dot.png"], size=(1, 1))
    res = CliRunner().invoke(main, ["run", "--suite", f"folder:{root}", "--methods", "cyclegan", "--preset", "smoke",
                                    "--out", str(tmp_path / "r"), "--device", "cpu"])
    assert res.exit_code == 2 and "dot.png is 1x1 pixels, too small for cyclegan" in res.output, res.output
    assert not list((tmp_path / "r").rglob("checkpoint.safetensors"))  # nothing trained
    # A classical method translates it fine.
    res = CliRunner().invoke(main, ["run", "--suite", f"folder:{root}", "--methods", "gamma", "--preset", "smoke",
                                    "--out", str(tmp_path / "c"), "--device", "cpu"])
    assert res.exit_code == 0, res.output


def test_data_check_lists_every_problem_class_in_one_pass(tmp_path):
    import os

    root = tmp_path / "suite"
    elsewhere = _images(tmp_path / "elsewhere", ["far.png"])
    _images(root / "trainA", ["a.png", "b.png"])
    _images(root / "trainB", ["c.png", "d.png"])
    _images(root / "testB", ["e.png"])
    _images(root / "testA", ["n1.png", "n1.jpg", "n2.png", "n3.png"], size=(32, 64))
    _images(root / "testA", ["speck.png"], size=(4, 4))
    (root / "testA" / "broken.png").write_bytes(b"not an image")
    os.symlink(root / "trainA" / "gone.png", root / "trainA" / "dangling.png")
    os.symlink(elsewhere / "far.png", root / "trainB" / "far.png")
    labels = root / "testA_labels"
    labels.mkdir()
    Image.fromarray(np.zeros((32, 64), np.uint8)).save(labels / "n1.png")
    Image.fromarray(np.full((32, 64), 30, np.uint8)).save(labels / "n2.png")  # a labelIds map
    Image.fromarray(np.zeros((32, 20), np.uint8)).save(labels / "n3.png")  # another aspect ratio
    res = CliRunner().invoke(main, ["data", "check", "--suite", f"folder:{root}"])
    assert res.exit_code == 1, res.output
    out = res.output
    assert "1 undecodable testA image(s): broken.png" in out
    assert "1 testA image(s) under 16 pixels on a side" in out and "speck.png (4x4)" in out
    assert "1 pair(s) of testA images that would write one translation" in out and "n1.jpg and n1.png" in out
    assert "1 dangling symbolic link(s) in trainA" in out
    assert "trainB: 1 symbolic link(s) lead outside" in out and "far.png ->" in out
    assert "testA image(s) without a label" in out and "speck.png" in out
    assert "1 label map(s) that are not single-channel Cityscapes train ids: n2.png" in out and "labelIds" in out
    assert "1 label map(s) of another aspect ratio than their image: n3.png (20x32 for a 64x32 image)" in out
    # A run follows the link out of the folder and says so in the manifest and the table.
    (root / "testA" / "broken.png").unlink()
    (root / "testA" / "n1.jpg").unlink()
    (root / "testA" / "speck.png").unlink()
    shutil_rmtree = __import__("shutil").rmtree
    shutil_rmtree(labels)
    res = CliRunner().invoke(main, ["run", "--suite", f"folder:{root}", "--methods", "identity", "--preset", "smoke",
                                    "--out", str(tmp_path / "r"), "--device", "cpu"])
    assert res.exit_code == 0, res.output
    run_dir = next((tmp_path / "r").glob("*/smoke"))
    notes = json.loads((run_dir / "manifest.json").read_text())["data_notes"]
    assert any("1 trainB file(s) are symbolic links to outside" in n for n in notes)
    assert "Data: 1 trainB file(s) are symbolic links to outside" in (run_dir / "tables" / "summary.md").read_text()


def test_translate_can_reproduce_the_official_test_scripts_input_and_output_scaling(tmp_path):
    from bench.data.io import read_rgb
    from bench.data.unpaired import bytescale

    src = tmp_path / "night"
    src.mkdir()
    img = (np.random.default_rng(0).random((20, 30, 3)) * 120 + 20).astype(np.uint8)
    Image.fromarray(img).save(src / "a.png")
    ident = _checkpoint(tmp_path, "identity")
    assert _translate(ident, src, tmp_path / "plain", "identity").exit_code == 0
    assert np.array_equal(read_rgb(tmp_path / "plain" / "a.png"), img)  # bench run's way: untouched
    res = CliRunner().invoke(main, ["translate", "--method", "identity", "--checkpoint", str(ident), "--input", str(src),
                                    "--output", str(tmp_path / "s"), "--stretch-input"])
    assert res.exit_code == 0 and np.array_equal(read_rgb(tmp_path / "s" / "a.png"), bytescale(img))
    res = CliRunner().invoke(main, ["translate", "--method", "identity", "--checkpoint", str(ident), "--input", str(src),
                                    "--output", str(tmp_path / "m"), "--minmax-output"])
    out = read_rgb(tmp_path / "m" / "a.png")
    assert res.exit_code == 0 and out.min() == 0 and out.max() == 255
    assert np.abs(out.astype(int) - bytescale(img).astype(int)).max() <= 1


def test_a_lock_still_being_written_is_not_taken_over(tmp_path):
    """Between O_EXCL creation and its first write another run's lock is empty: it is read again, not stolen."""
    import os
    import socket
    import threading

    from bench.lock import LOCK_NAME, RunFolderLocked, run_folder_lock

    lock = tmp_path / LOCK_NAME
    lock.write_text("")
    owner = json.dumps({"host": socket.gethostname(), "pid": os.getppid(), "started": "now"})
    threading.Timer(0.2, lock.write_text, args=(owner,)).start()
    with pytest.raises(RunFolderLocked, match=f"pid {os.getppid()}"):
        with run_folder_lock(tmp_path):
            pass
    assert lock.read_text() == owner
