"""Training you can watch: the logs read back with TensorBoard's own reader, a killed run resumed with one value per
step, validation curves on the validation split, and a checkpoint chosen by a declared rule that never sees a test
file."""

from __future__ import annotations

import builtins
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from bench.cli import main
from bench.conformance import planted_kill
from bench.runner import RunConfig
from bench.translator import EngineError, TrainBudget, TrainWatch, build_translator

pytest.importorskip("tensorboard")
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator  # noqa: E402
from tensorboard.plugins.hparams import plugin_data_pb2  # noqa: E402

STEPS = 8


class MeanLevel:
    """A stand-in validation (the loop's side of the seam): the translations' mean level, higher is better."""

    metrics = {"level": True}

    def __init__(self, files) -> None:
        from bench.data.io import read_rgb, to_tensor

        self.inputs = torch.stack([to_tensor(read_rgb(p)) for p in files.val_a[:4]])
        self.calls = 0

    def __call__(self, translated: torch.Tensor) -> dict[str, float]:
        assert translated.shape == self.inputs.shape
        self.calls += 1
        return {"level": float(translated.mean())}


def _cyclegan():
    t = build_translator("cyclegan", preset="smoke")
    t.config = replace(t.config, log_every=1, checkpoint_every=4)
    return t


def _fit(files, out: Path, validator, kill_at: int | None = None, logger=("tensorboard",)):
    torch.manual_seed(0)
    t = _cyclegan()
    budget = TrainBudget(0, max_steps=STEPS, watch=TrainWatch(logger=logger, val_every=2), validator=validator)
    if kill_at is None:
        t.fit(files.unpaired(), budget, out)
        return t
    with planted_kill(type(t), kill_at), pytest.raises(KeyboardInterrupt):
        t.fit(files.unpaired(), budget, out)
    torch.manual_seed(0)
    t = _cyclegan()
    t.fit(files.unpaired(), budget, out)  # resumes from the checkpoint at step 4
    return t


def _jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _events(folder: Path) -> EventAccumulator:
    acc = EventAccumulator(str(folder), size_guidance={"scalars": 0, "images": 0, "tensors": 0})
    acc.Reload()
    return acc


def test_tensorboard_matches_the_jsonl_and_a_killed_run_resumes_with_one_value_per_step(smoke_suite, tmp_path):
    plain = _fit(smoke_suite, tmp_path / "plain", None, logger=())
    watched = _fit(smoke_suite, tmp_path / "watched", MeanLevel(smoke_suite))
    killed = _fit(smoke_suite, tmp_path / "killed", MeanLevel(smoke_suite), kill_at=7)
    # validation runs on a copy of the random state: the weights are those of a training without it
    for k, v in plain.state_dict().items():
        assert torch.equal(v, watched.state_dict()[k]) and torch.equal(v, killed.state_dict()[k]), k
    assert not (tmp_path / "plain" / "tensorboard").exists() and not (tmp_path / "plain" / "validation.jsonl").exists()

    for name in ("watched", "killed"):
        out = tmp_path / name
        log, val = _jsonl(out / "train_log.jsonl"), _jsonl(out / "validation.jsonl")
        assert [r["step"] for r in log] == list(range(1, STEPS + 1)), name  # none lost, none twice
        assert [r["step"] for r in val] == [2, 4, 6, 8], name
        assert all(r["lr"] == pytest.approx(2e-4) and r["img_per_s"] > 0 and r["peak_mem_mib"] > 0 for r in log)
        assert all(r["images"] == 4 and r["seconds"] > 0 for r in val)
        acc = _events(out / "tensorboard")
        for term in ("g_total", "cycle", "d_a", "lr"):
            events = acc.Scalars(f"train/{term}")
            assert [e.step for e in events] == list(range(1, STEPS + 1)), (name, term)
            np.testing.assert_allclose([e.value for e in events], [r[term] for r in log], rtol=1e-6)
        curve = acc.Scalars("val/level")
        assert [e.step for e in curve] == [2, 4, 6, 8]
        np.testing.assert_allclose([e.value for e in curve], [r["val/level"] for r in val], rtol=1e-6)
        # the fixed grid: input | translation, one row per validation image, as an image event and a PNG
        images = acc.Images("samples")
        assert [e.step for e in images] == [2, 4, 6, 8], name
        h, w = smoke_suite.height, smoke_suite.width
        assert (images[-1].height, images[-1].width) == (4 * h, 2 * w)
        grid = np.asarray(Image.open(out / "samples" / "step0000008.png"))
        assert grid.shape == (4 * h, 2 * w, 3)
        np.testing.assert_array_equal(grid[:h, :w], np.asarray(Image.open(smoke_suite.val_a[0]).convert("RGB")))
        # the resolved config, once, as hyperparameters
        content = acc.PluginTagToContent("hparams")
        start = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/session_start_info"])
        hp = start.session_start_info.hparams
        assert hp["method"].string_value == "cyclegan" and hp["batch_size"].number_value == 2
        assert hp["lambda_cycle"].number_value == watched.config.lambda_cycle
    # the resumed run logged the same values as the straight one (same weights at every step)
    np.testing.assert_allclose([r["g_total"] for r in _jsonl(tmp_path / "killed" / "train_log.jsonl")],
                               [r["g_total"] for r in _jsonl(tmp_path / "watched" / "train_log.jsonl")], rtol=1e-5)


@pytest.mark.slow
def test_select_val_kid_scores_the_step_its_logged_curve_predicts(tmp_path, run_with_test_weights):
    cfg = RunConfig(preset="smoke", methods=("cyclegan",), out=tmp_path, device="cpu",
                    watch=TrainWatch(select="val:kid", logger=()))
    run_with_test_weights(cfg)
    run = tmp_path / "synthetic-night" / "smoke"
    train = run / "cells" / "cyclegan" / "seed0" / "train"
    curve = [(r["step"], r["val/kid"]) for r in _jsonl(train / "validation.jsonl")]
    assert [s for s, _ in curve] == [4, 8, 12] and all(np.isfinite(v) for _, v in curve)
    best = min(curve, key=lambda sv: (sv[1], sv[0]))[0]  # lowest KID, the earlier step on a tie
    chosen = json.loads((train / "selection.json").read_text())
    assert (chosen["step"], chosen["rule"], chosen["total_steps"]) == (best, "val:kid", 12)
    assert chosen["curve"] == [list(p) for p in curve] and chosen["validation_images"] == 8
    # the scored checkpoint is that step's weights
    from safetensors.torch import load_file

    scored, kept = load_file(str(run / "cells" / "cyclegan" / "seed0" / "checkpoint.safetensors")), load_file(
        str(train / "kept" / f"step{best:07d}.safetensors"))
    assert all(torch.equal(scored[k], kept[k]) for k in kept)
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["selections"]["cyclegan"]["0"]["step"] == best
    assert manifest["scored_checkpoint"]["cyclegan"].startswith("val:kid")
    table = (run / "tables" / "summary.md").read_text()
    assert "cyclegan: scored at the checkpoint chosen by val:kid" in table and f"step {best} of 12" in table
    # the report plots the curve
    res = CliRunner().invoke(main, ["report", str(run)])
    assert res.exit_code == 0, res.output
    assert (run / "figures" / "validation_curves.png").is_file()
    assert "Scores on the validation split during training" in (run / "report.html").read_text()


def test_training_and_selection_open_no_test_file(tmp_path, smoke_suite, with_weights, monkeypatch):
    import PIL.Image

    from bench.train import train_cell

    opened: list[str] = []
    real_open, real_image_open = builtins.open, PIL.Image.open

    def spy_open(file, *args, **kwargs):
        opened.append(str(file))
        return real_open(file, *args, **kwargs)

    def spy_image_open(fp, *args, **kwargs):
        opened.append(str(fp))
        return real_image_open(fp, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", spy_open)
    monkeypatch.setattr(PIL.Image, "open", spy_image_open)
    ckpt = train_cell(RunConfig(preset="smoke", out=tmp_path, device="cpu", watch=TrainWatch(select="val:kid")),
                      "cyclegan", 0)
    monkeypatch.undo()
    assert ckpt is not None and ckpt.is_file()
    assert (ckpt.parent / "train" / "selection.json").is_file()
    opened = {str(Path(p).resolve()) for p in opened}
    assert {str(p.resolve()) for p in smoke_suite.val_a[:8]} <= opened  # the spy sees the images read
    test_files = {str(Path(p).resolve()) for p in (*smoke_suite.test_a, *smoke_suite.test_b, *smoke_suite.twins,
                                                    *smoke_suite.labels, smoke_suite.boxes)}
    assert not opened & test_files


def test_selection_rules_are_checked_before_anything_runs(tmp_path, smoke_suite):
    for rule in ("best", "test:kid", "val:"):
        with pytest.raises(EngineError, match="unknown selection rule"):
            TrainWatch(select=rule).checked()
    with pytest.raises(EngineError, match="unknown logger 'visdom'"):  # as a --config file may say
        TrainWatch(logger=("visdom",)).checked()
    res = CliRunner().invoke(main, ["run", "--preset", "smoke", "--methods", "cyclegan", "--select", "val:fid",
                                    "--out", str(tmp_path)])
    assert res.exit_code != 0 and "--select val:fid: not available on this suite's validation split" in res.output
    assert not list(tmp_path.glob("**/checkpoint.safetensors"))
    # a folder suite without valA/ valB/ has no validation split to select on
    folder = tmp_path / "data"
    for sub, files in (("trainA", smoke_suite.train_a), ("trainB", smoke_suite.train_b),
                       ("testA", smoke_suite.test_a), ("testB", smoke_suite.test_b)):
        (folder / sub).mkdir(parents=True)
        for f in files[:6]:
            (folder / sub / f.name).symlink_to(f)
    res = CliRunner().invoke(main, ["run", "--suite", f"folder:{folder}", "--preset", "smoke", "--methods",
                                    "cyclegan", "--select", "val:kid", "--out", str(tmp_path / "r")])
    assert res.exit_code != 0 and "this suite has no validation split" in res.output
    (folder / "valA").mkdir()
    res = CliRunner().invoke(main, ["run", "--suite", f"folder:{folder}", "--preset", "smoke", "--methods",
                                    "cyclegan", "--select", "val:kid", "--out", str(tmp_path / "r")])
    assert res.exit_code != 0 and "needs both valA/ (adverse) and valB/ (normal)" in res.output
    res = CliRunner().invoke(main, ["data", "check", "--suite", f"folder:{folder}"])
    assert "valA is there without valB/: a validation split needs both" in res.output
    res = CliRunner().invoke(main, ["run", "--preset", "smoke", "--logger", "visdom", "--out", str(tmp_path)])
    assert res.exit_code != 0 and "unknown logger 'visdom'" in res.output


def test_default_validation_interval_is_the_checkpoint_interval_up_to_twenty_validations():
    from bench.learned import default_val_every

    assert default_val_every(12, 4) == 4  # smoke: every checkpoint
    assert default_val_every(500, 100) == 100  # quick
    every = default_val_every(5_400_000, 500)  # a paper CycleGAN on BDD100K night: 200 epochs of 27k images
    assert every % 500 == 0 and 5_400_000 / every <= 20 < 5_400_000 / (every - 500)
