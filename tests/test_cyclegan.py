"""CycleGAN: published parameter counts, the official checkpoint layout, training, resume, any-size translation."""

import json
from pathlib import Path

import pytest
import torch
from torch import nn

from baselines.cyclegan.model import CycleGAN
from baselines.cyclegan_codebase import ImagePool
from baselines.cyclegan.networks import NLayerDiscriminator, ResnetGenerator
from bench.learned import CheckpointMismatch
from bench.translator import TrainBudget


def n_params(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def conv(cin: int, cout: int, k: int) -> int:
    return cin * cout * k * k + cout  # every CycleGAN conv has a bias (instance norm without affine)


def test_parameter_counts_match_the_official_layer_list():
    """ResNet-9-block G (ngf 64) and the 70x70 PatchGAN (ndf 64), counted from the published layer lists
    (paper appendix 7.2; the official code prints 11.378 M and 2.765 M)."""
    g = 64
    generator = (conv(3, g, 7) + conv(g, 2 * g, 3) + conv(2 * g, 4 * g, 3) + 9 * 2 * conv(4 * g, 4 * g, 3)
                 + conv(4 * g, 2 * g, 3) + conv(2 * g, g, 3) + conv(g, 3, 7))
    disc = conv(3, 64, 4) + conv(64, 128, 4) + conv(128, 256, 4) + conv(256, 512, 4) + conv(512, 1, 4)
    assert n_params(ResnetGenerator(64, 9)) == generator == 11_378_179
    assert n_params(NLayerDiscriminator(64, 3)) == disc == 2_764_737


class _OfficialBlock(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.conv_block = nn.Sequential(nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3, bias=True),
                                        nn.InstanceNorm2d(dim, track_running_stats=True), nn.ReLU(True),
                                        nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3, bias=True),
                                        nn.InstanceNorm2d(dim, track_running_stats=True))

    def forward(self, x):
        return x + self.conv_block(x)


def _official_generator(ngf=16, n_blocks=3) -> nn.Module:
    """The published ResnetGenerator's module list, index for index (old-PyTorch InstanceNorm buffers included,
    as 2017-era checkpoints carry them), wrapped in `.model` as the official class does."""
    norm = lambda c: nn.InstanceNorm2d(c, track_running_stats=True)  # noqa: E731
    layers = [nn.ReflectionPad2d(3), nn.Conv2d(3, ngf, 7, bias=True), norm(ngf), nn.ReLU(True)]
    for i in range(2):
        m = 2 ** i
        layers += [nn.Conv2d(ngf * m, ngf * m * 2, 3, 2, 1, bias=True), norm(ngf * m * 2), nn.ReLU(True)]
    layers += [_OfficialBlock(ngf * 4) for _ in range(n_blocks)]
    for i in range(2):
        m = 2 ** (2 - i)
        layers += [nn.ConvTranspose2d(ngf * m, ngf * m // 2, 3, 2, 1, output_padding=1, bias=True),
                   norm(ngf * m // 2), nn.ReLU(True)]
    layers += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, 3, 7), nn.Tanh()]
    wrapper = nn.Module()
    wrapper.model = nn.Sequential(*layers)
    return wrapper


def test_official_generator_checkpoint_gives_identical_outputs(tmp_path):
    torch.manual_seed(0)
    official = _official_generator()
    for m in official.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(m.weight, 0, 0.05)
            nn.init.normal_(m.bias, 0, 0.05)
    state = official.state_dict()
    assert "model.1.weight" in state and "model.10.conv_block.5.weight" in state and "model.2.running_mean" in state
    torch.save(state, tmp_path / "latest_net_G_A.pth")

    from bench.checkpoints import load_tensor_dict

    loaded = load_tensor_dict(tmp_path / "latest_net_G_A.pth")
    model = CycleGAN("smoke")
    model.configure_from_state(loaded)  # ngf 16, 3 blocks, read off the file
    model.load_state_dict(loaded)
    assert (model.config.ngf, model.config.n_blocks) == (16, 3)
    official.eval()  # InstanceNorm normalises per image in eval too (running stats unused unless tracked+eval)
    for m in official.modules():
        if isinstance(m, nn.InstanceNorm2d):
            m.track_running_stats = False  # as the official loader's patch makes them behave
    x = torch.rand(2, 3, 32, 64)
    with torch.no_grad():
        ref = (official.model(x * 2 - 1) + 1) / 2
    torch.testing.assert_close(model.translate(x), ref.clamp(0, 1), rtol=0, atol=1e-6)


def test_bench_translate_reads_an_official_pth(tmp_path):
    from click.testing import CliRunner

    from bench.cli import main
    from bench.data.io import read_rgb, write_png

    torch.manual_seed(0)
    torch.save(_official_generator(8, 2).state_dict(), tmp_path / "latest_net_G_A.pth")
    (tmp_path / "in").mkdir()
    write_png(tmp_path / "in" / "a.png", (torch.rand(37, 53, 3) * 255).byte().numpy())
    res = CliRunner().invoke(main, ["translate", "--method", "cyclegan", "--checkpoint", str(tmp_path / "latest_net_G_A.pth"),
                                    "--input", str(tmp_path / "in"), "--output", str(tmp_path / "out"), "--device", "cpu"])
    assert res.exit_code == 0, res.output
    assert read_rgb(tmp_path / "out" / "a.png").shape == (37, 53, 3)


def _fit(model, suite, out_dir, steps, seed=0):
    torch.manual_seed(seed)
    model.fit(suite.unpaired(), TrainBudget(seed, max_steps=steps), out_dir)


def _log(out_dir):
    return [json.loads(line) for line in (Path(out_dir) / "train_log.jsonl").read_text().splitlines()]


def test_smoke_training_lowers_losses_and_mismatches_name_the_field(smoke_suite, tmp_path):
    torch.manual_seed(0)
    m = CycleGAN("smoke")
    _fit(m, smoke_suite, tmp_path, 30)
    log = _log(tmp_path)
    first, last = log[:10], log[-10:]
    for key in ("cycle", "identity", "g_total"):
        assert sum(r[key] for r in last) < sum(r[key] for r in first), key
    with pytest.raises(CheckpointMismatch, match="n_blocks"):
        CycleGAN("quick").load_state_dict(m.state_dict())


def test_image_pool_swaps_per_image():
    pool = ImagePool(3, seed=0)
    first = pool(torch.arange(3.0).view(3, 1))
    assert first.flatten().tolist() == [0, 1, 2]  # filling: pass-through
    swapped = sum((pool(torch.full((4, 1), 10.0 + i)) != 10.0 + i).sum().item() for i in range(25))
    assert 25 < swapped < 75  # about half of the 100 images come back from the pool
