"""EnlightenGAN: the authors' parameter count and key layout, the attention map and residual by hand, the PyTorch
0.3 upsampling choice, their generator file through the CLI (and a file that is not theirs), and the published
model's cell in a run (from a stand-in file of the right architecture: the real file is not on this machine).
Compared with the authors' code (run outside the repository): README, "Baselines"."""

import json

import pytest
import torch
from click.testing import CliRunner

from baselines.enlightengan.model import EnlightenGAN, EnlightenGANConfig
from baselines.enlightengan.networks import EnlightenGenerator, attention_map
from bench import conformance
from bench.cli import main
from bench.data.io import read_rgb, to_tensor, write_png


def conv(k: int, cin: int, cout: int) -> int:
    return k * k * cin * cout + cout


def generator_params() -> int:
    """``Unet_resize_conv`` with self-attention: two 3x3 convs and two BatchNorms per level (4 input channels at
    the first: image and attention map), a 3x3 "deconv" and two convs per decoder level (no second BatchNorm at
    the last), a 1x1 conv to RGB."""
    w = (32, 64, 128, 256, 512)
    enc = sum(conv(3, cin, c) + conv(3, c, c) + 4 * c for cin, c in zip((4, *w[:-1]), w))
    dec = sum(conv(3, wide, narrow) * 2 + conv(3, narrow, narrow) + 2 * narrow + (2 * narrow if narrow != 32 else 0)
              for wide, narrow in zip(w[:0:-1], w[-2::-1]))
    return enc + dec + conv(1, 32, 3)


def random_generator(seed: int = 0) -> EnlightenGenerator:
    torch.manual_seed(seed)
    g = EnlightenGenerator()
    for k, v in g.state_dict().items():
        if v.is_floating_point():
            v.copy_(torch.randn_like(v).abs() * 0.3 + 0.5 if ("running_var" in k or "bn" in k and k.endswith("weight"))
                    else torch.randn_like(v) * 0.05)
    return g.eval()


def test_parameter_count_and_key_layout_match_the_authors_network():
    g = EnlightenGenerator()
    assert sum(p.numel() for p in g.parameters()) == generator_params() == 8_636_675
    keys = set(g.state_dict())
    assert {"conv1_1.weight", "bn1_1.running_var", "deconv5.weight", "conv9_2.bias", "bn9_1.weight", "conv10.weight"} <= keys
    assert "bn9_2.weight" not in keys and g.conv1_1.weight.shape[1] == 4


def test_attention_map_and_residual_by_hand():
    x = torch.tensor([-1.0, 1.0, 0.0]).view(3, 1, 1).expand(3, 2, 2)[None].clone()  # r = black, g = white, b = mid
    want = 1 - (0.299 * 0 + 0.587 * 2 + 0.114 * 1) / 2
    torch.testing.assert_close(attention_map(x), torch.full((1, 1, 2, 2), want))
    g = random_generator()
    white = torch.ones(1, 3, 32, 48)  # attention 0: the residual is switched off
    out, latent = g(white, attention_map(white))
    torch.testing.assert_close(out, white, rtol=0, atol=0)
    dark = torch.rand(1, 3, 37, 45) * 0.4 - 1  # odd sizes: padded to 48 x 48 and cropped back
    out, latent = g(dark, attention_map(dark))
    assert out.shape == dark.shape and latent.abs().max() > 0
    torch.testing.assert_close(out, dark + latent, rtol=0, atol=1e-6)


def test_upsampling_as_pytorch_0_3_by_default():
    g = random_generator()
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        aligned = g(x, attention_map(x))[0]
        g.align_corners = False
        assert not torch.allclose(aligned, g(x, attention_map(x))[0])
    assert EnlightenGANConfig().align_corners


def test_the_authors_file_translates_through_the_cli_and_another_file_is_refused(tmp_path):
    """Their 200_net_G_A.pth (PyTorch 0.3: no BatchNorm batch counters) loads; a CUT generator is refused in one line."""
    g = random_generator()
    state = {k: v for k, v in g.state_dict().items() if not k.endswith("num_batches_tracked")}
    torch.save(state, tmp_path / "200_net_G_A.pth")
    (tmp_path / "in").mkdir()
    write_png(tmp_path / "in" / "a.png", (torch.rand(36, 52, 3) * 100).byte().numpy())
    args = ["translate", "--method", "enlightengan", "--input", str(tmp_path / "in"), "--device", "cpu"]
    res = CliRunner().invoke(main, [*args, "--checkpoint", str(tmp_path / "200_net_G_A.pth"), "--output",
                                    str(tmp_path / "out")])
    assert res.exit_code == 0, res.output
    x = to_tensor(read_rgb(tmp_path / "in" / "a.png"))[None] * 2 - 1
    with torch.no_grad():
        want = ((g(x, attention_map(x))[0] + 1) / 2).clamp(0, 1)[0]
    assert (to_tensor(read_rgb(tmp_path / "out" / "a.png")) - want).abs().max() <= 1 / 255 + 1e-6

    from baselines.cut_codebase.networks import CUTGenerator

    torch.save(CUTGenerator(8, 2).state_dict(), tmp_path / "other.pth")
    res = CliRunner().invoke(main, [*args, "--checkpoint", str(tmp_path / "other.pth"), "--output", str(tmp_path / "o2")])
    assert res.exit_code != 0 and "Traceback" not in res.output
    assert "is not the EnlightenGAN generator (the authors' 200_net_G_A.pth)" in res.output, res.output


def test_the_published_model_is_a_cell_of_a_run(smoke_suite, tmp_path, monkeypatch):
    """Without the file the cell is skipped with the fix; with a file at the weights path the cell is scored and its
    checkpoint keeps the generator and the file's hash. (A stand-in of the right architecture: not the real model.)"""
    out = tmp_path / "runs"
    run = lambda: CliRunner().invoke(main, ["run", "--methods", "identity,enlightengan", "--preset", "smoke",  # noqa: E731
                                            "--out", str(out), "--device", "cpu"])
    res = run()
    assert res.exit_code == 0, res.output
    assert "200_net_G_A.pth" in res.output and "drive.google.com" in res.output
    weights = tmp_path / "weights"
    weights.mkdir()
    torch.save(random_generator().state_dict(), weights / "200_net_G_A.pth")
    monkeypatch.setenv("AUGAN_BENCH_WEIGHTS", str(weights))
    conformance.check_translate_contract("enlightengan", smoke_suite.unpaired(), tmp_path / "contract")
    conformance.check_state_round_trip("enlightengan", smoke_suite.unpaired(), tmp_path / "round")
    res = run()
    assert res.exit_code == 0, res.output
    folder = out / "synthetic-night" / "smoke"
    rows = (folder / "metrics.csv").read_text()
    assert "enlightengan" in rows
    from safetensors.torch import load_file

    from bench.learned import META_CONFIG, decode_text

    cell = next((folder / "cells" / "enlightengan").rglob("checkpoint.safetensors"))
    meta = json.loads(decode_text(load_file(cell)[META_CONFIG]))
    from bench.weights import file_sha256

    assert meta["checkpoint_sha256"] == file_sha256(weights / "200_net_G_A.pth")


def test_a_download_that_is_not_a_checkpoint_is_named_with_the_fix(tmp_path, monkeypatch):
    from bench.translator import MethodUnavailable, TrainBudget, UnpairedData

    (tmp_path / "200_net_G_A.pth").write_text("<html>Google Drive can't scan this file for viruses</html>")
    monkeypatch.setenv("AUGAN_BENCH_WEIGHTS", str(tmp_path))
    with pytest.raises(MethodUnavailable, match="is not a readable checkpoint .*delete it and download https://drive"):
        EnlightenGAN("smoke").fit(UnpairedData((), (), 0, 0), TrainBudget(), tmp_path)


def test_untrained_translation_is_refused_clearly():
    with pytest.raises(Exception, match="no weights loaded"):
        EnlightenGAN("smoke").translate(torch.rand(1, 3, 8, 8))
