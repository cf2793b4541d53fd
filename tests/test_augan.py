"""AU-GAN: layer semantics, parameter counts, shapes, losses, training, resume, checkpoints."""

import json
import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from augan import AUGAN
from augan.config import AUGANConfig, preset_config
from baselines.tf_exact.losses import lsgan
from baselines.tf_exact.layers import Conv, Deconv, tf_same_padding
from augan.losses import asymmetric_feature_matching, uncertainty_cycle
from augan.model import CheckpointMismatch, TrainingDiverged
from baselines.tf_exact.networks import MultiScaleDiscriminator
from baselines.tf_exact.pool import HistoryPool
from bench.translator import TrainBudget, available_methods, build_translator


def n_params(module) -> int:
    return sum(p.numel() for p in module.parameters())


# Parameter counts from the official layer list (models.py, ops.py): conv k x k, no bias: k^2 cin cout;
# instance norm: scale + offset = 2c; residual block at 4g: 2 * (9 (4g)^2 + 2 * 4g).
def encoder(g):
    return 49 * 3 * g + 2 * g + 9 * g * 2 * g + 2 * 2 * g + 9 * 2 * g * 4 * g + 2 * 4 * g + 4 * res(g)


def res(g):
    return 2 * (9 * (4 * g) ** 2 + 2 * 4 * g)


def decoder(g):
    return 4 * res(g) + 9 * 4 * g * 2 * g + 2 * 2 * g + 9 * 2 * g * g + 2 * g + 49 * g * 3


def confidence(g):
    return 9 * 2 * g * g + 2 * g + 49 * g


def discriminator(d, n_scale=2):
    total, cin = 0, 3
    for level in range(4):
        ch = d * 2**level
        total += (n_scale - 1) * (16 * cin * ch + 2 * ch)  # stride-1 branches
        total += 16 * cin * ch + 2 * ch + (n_scale - 1) * (16 * ch * ch + 2 * ch)  # the stride-2 branch
        cin = ch
    return total + n_scale * 16 * cin


def test_parameter_counts_match_the_official_layer_list():
    m = AUGAN("paper")
    g = 64
    assert n_params(m.g_a2b.encoder) == encoder(g)
    assert n_params(m.g_a2b.tnet) == 4 * res(g)
    assert n_params(m.g_a2b.decoder) == n_params(m.g_a2b.rec_decoder) == decoder(g)
    assert n_params(m.g_a2b.confidence) == confidence(g)
    assert n_params(m.g_a2b) == encoder(g) + 4 * res(g) + 2 * decoder(g) + confidence(g) == 20_103_552
    assert n_params(m.g_b2a) == encoder(g) + 2 * decoder(g) == 15_303_872
    assert len(m.d_a) == len(m.d_b) == 2
    assert n_params(m.d_a[0]) == discriminator(32) == 2_783_040  # df_dim = ndf / n_d = 32


def test_no_bias_anywhere_and_learned_instance_norm():
    m = AUGAN("smoke")
    for net in (m.g_a2b, m.g_b2a, m.d_a[0]):
        for mod in net.modules():
            if isinstance(mod, (torch.nn.Conv2d, torch.nn.ConvTranspose2d)):
                assert mod.bias is None
            if isinstance(mod, torch.nn.InstanceNorm2d):
                assert mod.affine and mod.eps == 1e-5 and not mod.track_running_stats


def test_tf_same_padding_is_asymmetric():
    assert tf_same_padding(64, 3, 2) == (0, 1)  # PyTorch's padding=1 would shift the features
    assert tf_same_padding(63, 3, 2) == (1, 1)
    assert tf_same_padding(64, 4, 1) == (1, 2)
    assert tf_same_padding(64, 4, 2) == (1, 1)
    conv = Conv(2, 3, 3, 2)
    x = torch.randn(1, 2, 8, 10)
    assert torch.allclose(conv(x), F.conv2d(F.pad(x, (0, 1, 0, 1)), conv.conv.weight, stride=2), atol=1e-6)


def test_deconv_is_the_adjoint_of_the_same_conv():
    """TF defines conv2d_transpose as the gradient of conv2d: <conv(x), y> == <x, deconv(y)>."""
    conv, deconv = Conv(4, 6, 3, 2), Deconv(6, 4, 3, 2)
    deconv.conv.weight.data = conv.conv.weight.data.clone()
    x, y = torch.randn(2, 4, 8, 12, dtype=torch.float64), torch.randn(2, 6, 4, 6, dtype=torch.float64)
    conv.double()
    deconv.double()
    assert deconv(y).shape == x.shape
    assert torch.allclose((conv(x) * y).sum(), (x * deconv(y)).sum(), rtol=1e-10)


def test_output_shapes_at_256x512_and_odd_sizes():
    m = AUGAN("paper")
    x = torch.rand(1, 3, 256, 512)
    out = m.g_a2b(x * 2 - 1)
    assert out.image.shape == x.shape and out.sigma.shape == (1, 1, 256, 512)
    assert out.features.shape == out.transfer.shape == (1, 256, 64, 128)
    assert [o.shape[-2:] for o in m.d_a[0](x)] == [(16, 32), (8, 16)]
    small = AUGAN("smoke")
    for h, w in [(37, 53), (5, 7), (64, 130)]:
        y = small.translate(torch.rand(2, 3, h, w))
        assert y.shape == (2, 3, h, w) and 0 <= y.min() and y.max() <= 1
        assert small.uncertainty(torch.rand(1, 3, h, w)).shape == (1, 1, h, w)


def test_discriminator_mixes_scales_like_dis_down():
    d = MultiScaleDiscriminator(4, n_scale=2)
    x = torch.randn(1, 3, 64, 128)
    # Branch 0 sees only the half-resolution input at level 0; branch 1 only the full-resolution one.
    half = F.interpolate(x, size=(32, 64), mode="bicubic", align_corners=False)
    assert torch.allclose(d.levels[0][0](half), d.levels[0][0](half))
    feats0, feats1 = d.levels[0][0](half), d.levels[0][1](x)
    assert feats0.shape[-2:] == (32, 64) and feats1.shape[-2:] == (16, 32)
    out = d(x)
    assert [o.shape[-2:] for o in out] == [(4, 8), (2, 4)]


def test_lsgan_is_the_mean_over_scales():
    outs = [torch.tensor([[0.5, 1.5]]), torch.tensor([2.0])]
    assert lsgan(outs, 1.0).item() == pytest.approx((0.25 + 1.0) / 2)
    assert lsgan(outs, 0.0).item() == pytest.approx(((0.25 + 2.25) / 2 + 4.0) / 2)


def test_uncertainty_losses_by_hand():
    real, cyc = torch.tensor([0.0, 1.0]), torch.tensor([0.5, 0.5])
    sigma = torch.tensor([0.0, math.log(2)])
    # official: exp(-s) * 5 * |e| + s / 2  ->  2.5 and 1.25 + ln2/2
    assert uncertainty_cycle(real, cyc, sigma, "official").item() == pytest.approx((2.5 + 1.25 + math.log(2) / 2) / 2)
    sigma = torch.tensor([1.0, 2.0])
    # paper (Laplacian NLL): |e| * 2 / s + log(2 s)  ->  1 + log 2 and 0.5 + log 4
    assert uncertainty_cycle(real, cyc, sigma, "paper").item() == pytest.approx((1 + math.log(2) + 0.5 + math.log(4)) / 2,
                                                                                rel=1e-5)
    with pytest.raises(ValueError):
        uncertainty_cycle(real, cyc, sigma, "gaussian")


def test_asymmetric_feature_matching_by_hand():
    trans = torch.stack([torch.full((2, 3), 1.0), torch.full((2, 3), 3.0)])[None]  # channel mean 2
    zeros, ones = torch.zeros(1, 2, 2, 3), torch.ones(1, 2, 2, 3)
    assert asymmetric_feature_matching(trans, zeros, ones, ones).item() == pytest.approx(2.0)
    assert asymmetric_feature_matching(trans, zeros, ones, zeros).item() == pytest.approx(3.0)


def test_history_pool_follows_the_official_rule():
    pool = HistoryPool(2, seed=0)
    batches = [(torch.full((1,), float(i)), torch.full((1,), -float(i))) for i in range(40)]
    assert pool(*batches[0])[0].item() == 0 and pool(*batches[1])[0].item() == 1  # filling: pass-through
    returned_old = 0
    for a, b in batches[2:]:
        out_a, out_b = pool(a, b)
        returned_old += out_a.item() != a.item()
        assert len(pool.fake_a) == 2
    assert 8 < returned_old < 30  # about half the time an older batch comes back


def test_ablations_are_registered_and_differ():
    methods = available_methods()
    for name in ("augan", "augan-no-tnet", "augan-no-afm", "augan-no-uncertainty"):
        assert methods[name].learned
    assert build_translator("augan-no-tnet", preset="smoke").g_a2b.tnet is None
    assert build_translator("augan-no-uncertainty", preset="smoke").g_a2b.confidence is None
    assert not build_translator("augan-no-afm", preset="smoke").config.use_afm
    with pytest.raises(ValueError, match="no uncertainty head"):
        build_translator("augan-no-uncertainty", preset="smoke").uncertainty(torch.rand(1, 3, 8, 8))


def _fit(model, suite, out_dir, steps, seed=0):
    torch.manual_seed(seed)
    model.fit(suite.unpaired(), TrainBudget(seed, max_steps=steps), out_dir)


def _log(out_dir):
    return [json.loads(line) for line in (Path(out_dir) / "train_log.jsonl").read_text().splitlines()]


def test_smoke_training_lowers_cycle_and_adversarial_losses(smoke_suite, tmp_path):
    torch.manual_seed(0)
    m = AUGAN("smoke")
    _fit(m, smoke_suite, tmp_path, 30)
    log = _log(tmp_path)
    assert [r["step"] for r in log] == list(range(1, 31))
    first, last = log[:10], log[-10:]
    for key in ("cycle_a", "cycle_b", "g_adv", "g_total"):
        assert sum(r[key] for r in last) < sum(r[key] for r in first), key


def test_kill_and_resume_equals_an_uninterrupted_run(smoke_suite, tmp_path, monkeypatch):
    torch.manual_seed(0)
    straight = AUGAN("smoke")
    _fit(straight, smoke_suite, tmp_path / "a", 8)

    torch.manual_seed(0)
    killed = AUGAN("smoke")
    original = AUGAN.train_step
    calls = {"n": 0}

    def dies_at_step_6(self, *args):
        calls["n"] += 1
        if calls["n"] == 6:
            raise KeyboardInterrupt  # after the step-4 checkpoint (checkpoint_every=4)
        return original(self, *args)

    monkeypatch.setattr(AUGAN, "train_step", dies_at_step_6)
    with pytest.raises(KeyboardInterrupt):
        _fit(killed, smoke_suite, tmp_path / "b", 8)
    monkeypatch.setattr(AUGAN, "train_step", original)
    state = torch.load(tmp_path / "b" / "train_state.pt", weights_only=True)
    assert state["step"] == 4 and len(state["ranks"][0]["extra"]["pool"]["fake_a"]) == 4

    torch.manual_seed(123)  # a different RNG state: resume must restore the saved one
    resumed = AUGAN("smoke")
    _fit(resumed, smoke_suite, tmp_path / "b", 8, seed=0)
    for k, v in straight.state_dict().items():
        assert torch.equal(v, resumed.state_dict()[k]), k
    for a, b in zip(straight.d_a.parameters(), resumed.d_a.parameters()):
        assert torch.equal(a, b)
    assert [r["step"] for r in _log(tmp_path / "b")] == list(range(1, 9))


def test_checkpoint_roundtrip_and_clear_mismatch_errors(smoke_suite, tmp_path):
    m = AUGAN("smoke")
    x = torch.rand(1, 3, 40, 72)
    fresh = AUGAN("smoke")
    fresh.load_state_dict(m.state_dict())
    assert torch.equal(fresh.translate(x), m.translate(x))
    with pytest.raises(CheckpointMismatch, match="ngf: checkpoint 8, model 16"):
        AUGAN("quick").load_state_dict(m.state_dict())
    with pytest.raises(CheckpointMismatch, match="use_tnet"):
        build_translator("augan-no-tnet", preset="smoke").load_state_dict(m.state_dict())
    histmatch = build_translator("histmatch")
    histmatch.fit(smoke_suite.unpaired(), TrainBudget(), tmp_path)
    with pytest.raises(CheckpointMismatch, match="not an AU-GAN checkpoint.*target_cdf"):
        m.load_state_dict(histmatch.state_dict())
    # DDP / torch.compile prefixes are accepted.
    prefixed = {f"module.{k}": v for k, v in m.state_dict().items()}
    fresh.load_state_dict(prefixed)
    # configure_from_state adopts the checkpoint's architecture.
    quick = AUGAN("quick")
    quick.configure_from_state(m.state_dict())
    quick.load_state_dict(m.state_dict())
    assert torch.equal(quick.translate(x), m.translate(x))


def test_resume_refuses_a_state_of_another_config(smoke_suite, tmp_path):
    _fit(AUGAN("smoke"), smoke_suite, tmp_path, 4)
    other = AUGAN("smoke", config=preset_config("smoke", ngf=4))
    with pytest.raises(CheckpointMismatch, match="ngf"):
        _fit(other, smoke_suite, tmp_path, 8)


def test_nan_stops_training_and_keeps_the_last_good_checkpoint(smoke_suite, tmp_path, monkeypatch):
    import augan.model as model

    real_l1 = model.l1
    calls = {"n": 0}

    def poisoned(a, b):
        calls["n"] += 1
        return real_l1(a, b) * (float("nan") if calls["n"] > 5 * 3 else 1.0)  # 3 model.l1 terms per step

    monkeypatch.setattr(model, "l1", poisoned)
    m = AUGAN("smoke")
    with pytest.raises(TrainingDiverged, match=r"non-finite loss .* at step 6.*last good checkpoint"):
        _fit(m, smoke_suite, tmp_path, 8)
    state = torch.load(tmp_path / "train_state.pt", weights_only=True)
    assert state["step"] == 4
    assert all(torch.isfinite(v).all() for v in state["models"]["g_a2b"].values())


def test_config_switches_change_behaviour():
    assert AUGANConfig().uncertainty_form == "official"
    with pytest.raises(ValueError, match="uncertainty_form"):
        AUGANConfig(uncertainty_form="laplace")
    with pytest.raises(ValueError, match="divisible"):
        AUGANConfig(ndf=30, n_d=4)
    assert preset_config("paper").fine_size == 256 and preset_config("paper").load_size == 286
    assert AUGAN("smoke", config=preset_config("smoke", channels_last=True)).translate(torch.rand(1, 3, 16, 32)).shape == (1, 3, 16, 32)


def test_bench_translate_any_size_with_uncertainty(tmp_path):
    import numpy as np
    from click.testing import CliRunner
    from PIL import Image
    from safetensors.torch import save_file

    from bench.cli import main

    torch.manual_seed(0)
    m = AUGAN("smoke")
    save_file(m.state_dict(), tmp_path / "augan.safetensors")
    src = tmp_path / "night"
    src.mkdir()
    rng = np.random.default_rng(0)
    sizes = {"a": (37, 53), "b": (64, 128), "c": (64, 128)}
    for name, (h, w) in sizes.items():
        Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)).save(src / f"{name}.png")
    res = CliRunner().invoke(main, ["translate", "--method", "augan", "--checkpoint", str(tmp_path / "augan.safetensors"),
                                    "--input", str(src), "--output", str(tmp_path / "day"), "--save-uncertainty",
                                    "--device", "cpu"])
    assert res.exit_code == 0, res.output
    for name, (h, w) in sizes.items():
        out = np.asarray(Image.open(tmp_path / "day" / f"{name}.png"))
        assert out.shape == (h, w, 3)
        sigma = np.load(tmp_path / "day" / f"{name}_sigma.npy")
        assert sigma.shape == (h, w) and (sigma >= 0).all()
    # The same translation as the model's own, image by image.
    x = torch.from_numpy(np.array(Image.open(src / "b.png"))).permute(2, 0, 1)[None].float() / 255
    expected = (m.translate(x)[0] * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()
    assert np.array_equal(np.asarray(Image.open(tmp_path / "day" / "b.png")), expected)

    bad = build_translator("gamma")
    save_file(bad.state_dict(), tmp_path / "gamma.safetensors")
    res = CliRunner().invoke(main, ["translate", "--method", "augan", "--checkpoint", str(tmp_path / "gamma.safetensors"),
                                    "--input", str(src), "--output", str(tmp_path / "x")])
    assert res.exit_code == 2 and "not an AU-GAN checkpoint" in res.output and "Traceback" not in res.output


@pytest.mark.slow
def test_runner_seeds_make_augan_reproducible(tmp_path):
    from safetensors.torch import load_file

    from bench.runner import RunConfig, run

    def checkpoint(name, seed):
        run(RunConfig(preset="smoke", methods=("augan",), seeds=(seed,), out=tmp_path, name=name, device="cpu"))
        return load_file(str(tmp_path / "synthetic-night" / name / "cells" / "augan" / f"seed{seed}" /
                             "checkpoint.safetensors"))

    a, b, c = checkpoint("a", 0), checkpoint("b", 0), checkpoint("c", 1)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a if not k.startswith("_meta"))


def test_config_json_round_trip_drops_legacy_fields_and_refuses_unknown_ones():
    cfg = AUGANConfig(ngf=32, use_tnet=False)
    assert AUGANConfig.from_json(cfg.to_json()) == cfg
    older = json.loads(cfg.to_json()) | {"amp_bf16": True}  # written before precision moved to the engine
    assert AUGANConfig.from_json(json.dumps(older)) == cfg
    with pytest.raises(ValueError, match=r"unknown AUGANConfig fields in checkpoint: \['ngff'\]"):
        AUGANConfig.from_json(json.dumps(json.loads(cfg.to_json()) | {"ngff": 3}))
