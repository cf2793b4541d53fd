"""CUT / FastCUT: published parameter counts, the official generator layout (anti-aliased sampling included),
PatchNCE by hand, training and reloading."""

import json
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from baselines.cut_codebase.model import CUT
from baselines.patch_nce import patch_nce
from bench.translator import TrainBudget, build_translator


def n_params(m) -> int:
    return sum(p.numel() for p in m.parameters())


def test_parameter_counts_match_the_published_networks():
    """G and D have CycleGAN's layer widths (the blur filters are fixed buffers, not parameters): the official
    code prints 11.378 M and 2.765 M; F is one 2-layer MLP (C -> 256 -> 256) per NCE layer, C = 3, 128, 256, 256,
    256 (0.560 M)."""
    m = CUT("paper")
    mlp = lambda c: c * 256 + 256 + 256 * 256 + 256  # noqa: E731
    assert n_params(m.g) == 11_378_179 and n_params(m.d) == 2_764_737
    assert n_params(m.f) == mlp(3) + mlp(128) + 3 * mlp(256) == 560_384


class _OfficialDown(nn.Module):  # written from the published Downsample (filt_size 3, reflect, stride 2)
    def __init__(self, c):
        super().__init__()
        a = np.array([1.0, 2.0, 1.0])
        f = torch.Tensor(a[:, None] * a[None, :])
        self.register_buffer("filt", (f / f.sum())[None, None].repeat(c, 1, 1, 1))
        self.pad = nn.ReflectionPad2d([1, 1, 1, 1])

    def forward(self, x):
        return F.conv2d(self.pad(x), self.filt, stride=2, groups=x.shape[1])


class _OfficialUp(nn.Module):  # the published Upsample (filt_size 4, replicate, stride 2)
    def __init__(self, c):
        super().__init__()
        a = np.array([1.0, 3.0, 3.0, 1.0])
        f = torch.Tensor(a[:, None] * a[None, :])
        self.register_buffer("filt", (f / f.sum() * 4)[None, None].repeat(c, 1, 1, 1))
        self.pad = nn.ReplicationPad2d([1, 1, 1, 1])

    def forward(self, x):
        y = F.conv_transpose2d(self.pad(x), self.filt, stride=2, padding=1 + 1, groups=x.shape[1])[:, :, 1:, 1:]
        return y[:, :, :-1, :-1]


class _Block(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.conv_block = nn.Sequential(nn.ReflectionPad2d(1), nn.Conv2d(d, d, 3), nn.InstanceNorm2d(d), nn.ReLU(True),
                                        nn.ReflectionPad2d(1), nn.Conv2d(d, d, 3), nn.InstanceNorm2d(d))

    def forward(self, x):
        return x + self.conv_block(x)


def _official_generator(ngf=8, n_blocks=5):
    layers = [nn.ReflectionPad2d(3), nn.Conv2d(3, ngf, 7), nn.InstanceNorm2d(ngf), nn.ReLU(True)]
    for i in range(2):
        m = 2 ** i
        layers += [nn.Conv2d(ngf * m, ngf * m * 2, 3, 1, 1), nn.InstanceNorm2d(ngf * m * 2), nn.ReLU(True),
                   _OfficialDown(ngf * m * 2)]
    layers += [_Block(ngf * 4) for _ in range(n_blocks)]
    for i in range(2):
        m = 2 ** (2 - i)
        layers += [_OfficialUp(ngf * m), nn.Conv2d(ngf * m, ngf * m // 2, 3, 1, 1), nn.InstanceNorm2d(ngf * m // 2),
                   nn.ReLU(True)]
    layers += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, 3, 7), nn.Tanh()]
    wrapper = nn.Module()
    wrapper.model = nn.Sequential(*layers)
    return wrapper


def test_official_generator_checkpoint_gives_identical_outputs(tmp_path):
    torch.manual_seed(0)
    official = _official_generator().eval()
    for m in official.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.normal_(m.weight, 0, 0.1)
            nn.init.normal_(m.bias, 0, 0.1)
    torch.save(official.state_dict(), tmp_path / "latest_net_G.pth")
    from bench.checkpoints import load_tensor_dict

    state = load_tensor_dict(tmp_path / "latest_net_G.pth")
    assert "model.7.filt" in state and "model.21.filt" in state  # the blur buffers travel with the weights
    model = build_translator("cut", preset="quick")
    model.configure_from_state(state)
    model.load_state_dict(state)
    assert (model.config.ngf, model.config.n_blocks) == (8, 5)
    x = torch.rand(2, 3, 32, 64)
    with torch.no_grad():
        ref = ((official.model(x * 2 - 1) + 1) / 2).clamp(0, 1)
    torch.testing.assert_close(model.translate(x), ref, rtol=0, atol=1e-6)


def test_patch_nce_by_hand():
    q = F.normalize(torch.randn(6, 4), dim=1)  # 2 images x 3 patches
    loss = patch_nce(q, q.clone(), batch_size=2, tau=0.5)
    for img in range(2):
        qi = q[3 * img:3 * img + 3]
        for p in range(3):
            logits = [float(qi[p] @ qi[p]) / 0.5] + [(-10.0 if j == p else float(qi[p] @ qi[j])) / 0.5 for j in range(3)]
            expected = -logits[0] + math.log(sum(math.exp(v) for v in logits))
            assert loss[3 * img + p].item() == pytest.approx(expected, rel=1e-5)
    # Negatives come from the same image only: moving patches of image 2 leaves image 1's losses unchanged.
    k2 = q.clone()
    k2[3:] = F.normalize(torch.randn(3, 4), dim=1)
    torch.testing.assert_close(patch_nce(q, k2, 2, 0.5)[:3], loss[:3])


@pytest.mark.parametrize("variant", ["cut", "fastcut"])
def test_smoke_training_lowers_the_nce_loss(variant, smoke_suite, tmp_path):
    """What is CUT's own; any size, reload and resume are the conformance suite's."""
    torch.manual_seed(0)
    m = build_translator(variant, preset="smoke")
    m.fit(smoke_suite.unpaired(), TrainBudget(0, max_steps=30), tmp_path)
    log = [json.loads(line) for line in (tmp_path / "train_log.jsonl").read_text().splitlines()]
    assert sum(r["nce"] for r in log[-10:]) < sum(r["nce"] for r in log[:10])
    assert ("nce_y" in log[0]) == (variant == "cut")


def test_a_cut_repository_cycle_gan_generator_is_refused_by_cyclegan_with_the_fix_and_loads_with_cut(tmp_path):
    """The CUT repository's cycle_gan model samples with anti-aliasing by default: its latest_net_G_A.pth is the
    same ResNet generator as its cut model's. --method cyclegan names the cause and --method cut; cut loads it."""
    from click.testing import CliRunner

    from bench.cli import main
    from bench.data.io import write_png

    torch.manual_seed(0)
    g = _official_generator().eval()
    torch.save(g.state_dict(), tmp_path / "latest_net_G_A.pth")
    (tmp_path / "in").mkdir()
    write_png(tmp_path / "in" / "a.png", (torch.rand(32, 64, 3) * 255).byte().numpy())

    def translate(method, out):
        return CliRunner().invoke(main, ["translate", "--method", method, "--checkpoint",
                                         str(tmp_path / "latest_net_G_A.pth"), "--input", str(tmp_path / "in"),
                                         "--output", str(tmp_path / out), "--device", "cpu"])

    res = translate("cyclegan", "o1")
    assert res.exit_code == 2 and "Traceback" not in res.output
    assert "anti-aliased sampling layers" in res.output and "--method cut" in res.output, res.output
    assert translate("cut", "o2").exit_code == 0
