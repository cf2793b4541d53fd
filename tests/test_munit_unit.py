"""MUNIT and UNIT: layer-list parameter counts, the official key layout and two-network checkpoint files,
AdaIN by hand, the test-time style policy, training and reloading."""

import json

import pytest
import torch

from baselines.munit.model import MUNIT
from baselines.two_autoencoders.networks import AdaptiveInstanceNorm2d
from baselines.unit.model import UNIT
from bench.translator import TrainBudget, build_translator


def n_params(m) -> int:
    return sum(p.numel() for p in m.parameters())


def conv(cin, cout, k):
    return cin * cout * k * k + cout


def test_parameter_counts_from_the_published_configs():
    """dim 64, n_downsample 2, n_res 4, style 8, mlp 256 (MUNIT configs); D: 3 scales x (4 stride-2 4x4 convs
    + a 1x1 conv), no norm."""
    res = 4 * 2 * conv(256, 256, 3)
    content = conv(3, 64, 7) + conv(64, 128, 4) + conv(128, 256, 4) + res
    ups = conv(256, 128, 5) + 2 * 128 + conv(128, 64, 5) + 2 * 64 + conv(64, 3, 7)  # layer norm: gamma, beta
    style = conv(3, 64, 7) + conv(64, 128, 4) + conv(128, 256, 4) + 2 * conv(256, 256, 4) + conv(256, 8, 1)
    adain = 8 * 2 * 256  # 4 AdaIN residual blocks x 2 norms x (scale + shift) x 256 channels
    mlp = (8 * 256 + 256) + (256 * 256 + 256) + (256 * adain + adain)
    munit = MUNIT("paper")
    assert n_params(munit.gen_a) == style + content + res + ups + mlp == 15_026_187  # AdaIN: no norm weights
    unit = UNIT("paper")
    assert n_params(unit.gen_a) == content + res + ups == 11_140_483  # IN residual decoder blocks
    scale = conv(3, 64, 4) + conv(64, 128, 4) + conv(128, 256, 4) + conv(256, 512, 4) + conv(512, 1, 1)
    assert n_params(munit.dis_a) == n_params(unit.dis_a) == 3 * scale


def test_key_layout_is_the_official_one():
    keys = set(MUNIT("smoke").gen_a.state_dict())
    for k in ("enc_style.model.0.conv.weight", "enc_content.model.0.conv.weight",
              "enc_content.model.3.model.0.model.0.conv.weight", "dec.model.0.model.0.model.0.norm.running_mean",
              "dec.model.2.conv.weight", "dec.model.2.norm.gamma", "dec.model.2.norm.beta", "mlp.model.0.fc.weight",
              "mlp.model.2.fc.bias"):
        assert k in keys, k
    assert {"enc.model.0.conv.weight", "dec.model.0.model.0.model.0.conv.weight"} <= set(UNIT("smoke").gen_a.state_dict())


def test_official_two_network_checkpoint_loads_through_bench_translate(tmp_path):
    from click.testing import CliRunner

    from bench.cli import main
    from bench.data.io import read_rgb, write_png

    torch.manual_seed(0)
    src = MUNIT("smoke")
    # The official trainer saves {"a": gen_a.state_dict(), "b": gen_b.state_dict()}.
    torch.save({"a": src.gen_a.state_dict(), "b": src.gen_b.state_dict()}, tmp_path / "gen_00010000.pt")
    from bench.checkpoints import load_tensor_dict

    loaded = MUNIT("smoke")
    loaded.load_state_dict(load_tensor_dict(tmp_path / "gen_00010000.pt"))
    x = torch.rand(1, 3, 32, 48)
    assert torch.equal(loaded.translate(x), src.translate(x))
    (tmp_path / "in").mkdir()
    write_png(tmp_path / "in" / "a.png", (torch.rand(33, 47, 3) * 255).byte().numpy())
    # An official file carries no config: bench translate reads the widths and depths off its shapes.
    res = CliRunner().invoke(main, ["translate", "--method", "munit", "--checkpoint", str(tmp_path / "gen_00010000.pt"),
                                    "--input", str(tmp_path / "in"), "--output", str(tmp_path / "out"),
                                    "--device", "cpu"])
    assert res.exit_code == 0, res.output
    assert read_rgb(tmp_path / "out" / "a.png").shape == (33, 47, 3)
    res = CliRunner().invoke(main, ["translate", "--method", "munit", "--checkpoint", str(tmp_path / "gen_00010000.pt"),
                                    "--input", str(tmp_path / "in"), "--output", str(tmp_path / "styles"),
                                    "--style-samples", "3", "--device", "cpu"])
    assert res.exit_code == 0, res.output
    styles = [read_rgb(tmp_path / "styles" / f"a_style{k}.png") for k in range(3)]
    assert (styles[0] == read_rgb(tmp_path / "out" / "a.png")).all() and (styles[0] != styles[1]).any()
    from bench.translator import build_translator as build

    probe = build("munit", preset="paper")
    probe.configure_from_state(load_tensor_dict(tmp_path / "gen_00010000.pt"))
    assert (probe.config.dim, probe.config.n_res, probe.config.style_dim, probe.config.mlp_dim) == (8, 1, 8, 16)
    u = UNIT("quick")
    torch.save({"a": u.gen_a.state_dict(), "b": u.gen_b.state_dict()}, tmp_path / "unit.pt")
    probe = build("unit", preset="paper")
    probe.configure_from_state(load_tensor_dict(tmp_path / "unit.pt"))
    assert (probe.config.dim, probe.config.n_res, probe.config.n_downsample) == (16, 3, 2)


def test_adain_by_hand():
    m = AdaptiveInstanceNorm2d(3)
    x = torch.randn(2, 3, 5, 7)
    m.weight, m.bias = torch.rand(6) + 0.5, torch.randn(6)
    mean, var = x.mean((2, 3), keepdim=True), x.var((2, 3), unbiased=False, keepdim=True)
    expected = (x - mean) / torch.sqrt(var + 1e-5) * m.weight.view(2, 3, 1, 1) + m.bias.view(2, 3, 1, 1)
    torch.testing.assert_close(m(x), expected, rtol=1e-5, atol=1e-5)


def test_munit_style_policy_is_seeded_and_diverse():
    torch.manual_seed(0)
    m = MUNIT("smoke")
    x = torch.rand(2, 3, 32, 64)
    assert torch.equal(m.translate(x), m.translate(x))  # one seeded style code, every call
    outs = m.translate_styles(x, 3)
    assert torch.equal(outs[0], m.translate(x)) and not torch.equal(outs[0], outs[1])


@pytest.mark.parametrize("name", ["munit", "unit"])
def test_smoke_training_lowers_reconstruction(name, smoke_suite, tmp_path):
    torch.manual_seed(0)
    m = build_translator(name, preset="smoke")
    m.fit(smoke_suite.unpaired(), TrainBudget(0, max_steps=30), tmp_path)
    log = [json.loads(line) for line in (tmp_path / "train_log.jsonl").read_text().splitlines()]
    for key in ("recon_x", "g_total"):
        assert sum(r[key] for r in log[-10:]) < sum(r[key] for r in log[:10]), key


@pytest.mark.parametrize("cls", [MUNIT, UNIT])
def test_pytorch_03_era_files_with_instance_norm_statistics_load(cls, tmp_path):
    """Files saved by PyTorch 0.3 hold running_mean/running_var for every InstanceNorm (0.4 dropped them); the
    authors' test script deletes exactly those keys before loading. So do we; AdaIN's own buffers stay."""
    from bench.checkpoints import load_tensor_dict

    torch.manual_seed(0)
    src = cls("smoke")
    old = {}
    for name in ("a", "b"):
        gen = getattr(src, f"gen_{name}")
        state = dict(gen.state_dict())
        norms = [n for n, m in gen.named_modules() if isinstance(m, torch.nn.InstanceNorm2d)]
        assert norms
        for n in norms:
            c = dict(gen.named_modules())[n].num_features
            state[f"{n}.running_mean"], state[f"{n}.running_var"] = torch.zeros(c), torch.ones(c)
        old[name] = state
    torch.save(old, tmp_path / "gen_00100000.pt")
    loaded = cls("smoke")
    loaded.load_state_dict(load_tensor_dict(tmp_path / "gen_00100000.pt"))
    x = torch.rand(1, 3, 32, 48)
    assert torch.equal(loaded.translate(x), src.translate(x))
