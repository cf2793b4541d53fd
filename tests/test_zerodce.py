"""Zero-DCE: the published parameter count, the official forward and losses by hand, training on adverse images."""

import json

import pytest
import torch
import torch.nn.functional as F

from baselines.zerodce.model import (
    DCENet,
    ZeroDCE,
    colour_constancy,
    exposure_control,
    illumination_smoothness,
    spatial_consistency,
)
from bench.translator import TrainBudget


def test_parameter_count_is_the_papers():
    # Guo et al. 2020, section 3.2: "79,416 trainable parameters"; 3->32, 3 x 32->32, 2 x 64->32, 64->24, 3x3, biases.
    by_layer = (3 * 32 * 9 + 32) + 3 * (32 * 32 * 9 + 32) + 2 * (64 * 32 * 9 + 32) + (64 * 24 * 9 + 24)
    assert sum(p.numel() for p in DCENet().parameters()) == by_layer == 79_416


def test_forward_equals_the_official_iteration_on_official_keys():
    torch.manual_seed(0)
    state = {k: torch.randn_like(v) * 0.1 for k, v in DCENet().state_dict().items()}  # e_conv1..e_conv7 keys
    net = ZeroDCE("smoke")
    net.load_state_dict(state)  # an official Epoch99.pth has exactly these keys
    x = torch.rand(2, 3, 20, 36)

    def conv(name, t):
        return F.conv2d(t, state[f"{name}.weight"], state[f"{name}.bias"], padding=1)

    x1 = F.relu(conv("e_conv1", x))
    x2 = F.relu(conv("e_conv2", x1))
    x3 = F.relu(conv("e_conv3", x2))
    x4 = F.relu(conv("e_conv4", x3))
    x5 = F.relu(conv("e_conv5", torch.cat([x3, x4], 1)))
    x6 = F.relu(conv("e_conv6", torch.cat([x2, x5], 1)))
    r = torch.tanh(conv("e_conv7", torch.cat([x1, x6], 1)))
    y = x
    for i in range(8):
        a = r[:, 3 * i:3 * i + 3]
        y = y + a * (torch.pow(y, 2) - y)
    torch.testing.assert_close(net.translate(x), y.clamp(0, 1))


def test_losses_by_hand():
    grey = torch.full((1, 3, 16, 16), 0.6)
    assert exposure_control(grey, 0.6) == pytest.approx(0.0, abs=1e-10)
    assert exposure_control(torch.full((1, 3, 16, 16), 0.4), 0.6) == pytest.approx(0.04, rel=1e-5)
    assert colour_constancy(grey) == pytest.approx(0.0, abs=1e-5)
    rgb = torch.zeros(1, 3, 4, 4)
    rgb[:, 0] = 1.0  # means (1, 0, 0): sqrt(1 + 1 + 0) over the squared squared differences
    assert colour_constancy(rgb) == pytest.approx(2 ** 0.5, rel=1e-5)
    img = torch.rand(1, 3, 16, 16)
    assert spatial_consistency(img, img) == 0
    assert spatial_consistency(img * 0.5, img) > 0
    assert illumination_smoothness(torch.ones(2, 24, 8, 8)) == 0
    ramp = torch.arange(8.0).view(1, 1, 1, 8).expand(1, 1, 8, 8)
    # Horizontal steps of 1: sum = 8 rows x 7 steps, over h*(w-1) = 56 -> 1; vertical 0; times 2 / batch 1.
    assert illumination_smoothness(ramp) == pytest.approx(2.0, rel=1e-6)


def test_smoke_training_lowers_the_loss_and_brightens_night(smoke_suite, tmp_path):
    torch.manual_seed(0)
    m = ZeroDCE("smoke")
    m.fit(smoke_suite.unpaired(), TrainBudget(0, max_steps=40), tmp_path)
    log = [json.loads(line) for line in (tmp_path / "train_log.jsonl").read_text().splitlines()]
    assert sum(r["g_total"] for r in log[-5:]) < sum(r["g_total"] for r in log[:5])
    from bench.data.io import read_rgb, to_tensor

    night = torch.stack([to_tensor(read_rgb(p)) for p in smoke_suite.test_a[:4]])
    out = m.translate(night)
    assert out.shape == night.shape and out.mean() > night.mean()  # exposure loss pulls towards 0.6
