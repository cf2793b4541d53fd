"""U-GAT-IT: the authors' parameter counts (full and light), AdaLIN by hand, the discriminator's CAM reading the
unnormalised weight as released, the rho clipping, the fixed-size full generator at any image size, and an
authors' params file through the CLI. Compared with the authors' code (run outside the repository): README,
"Baselines"."""

from dataclasses import replace

import pytest
import torch

from baselines.ugatit.model import PRESETS, UGATIT, UGATITConfig
from baselines.ugatit.networks import AdaILN, UGATITDiscriminator, UGATITGenerator


def n_params(m) -> int:
    return sum(p.numel() for p in m.parameters())


def test_parameter_counts_match_the_authors_networks():
    """As their networks.py builds them at the defaults (ch 64, 4 blocks, 256 x 256): the full generator's MLP reads
    the whole 64 x 64 x 256 map (268M of its 279M weights); the light one pools it first."""
    assert n_params(UGATITGenerator(64, 4, 256, light=False)) == 278_959_808
    assert n_params(UGATITGenerator(64, 4, 256, light=True)) == 10_589_888
    assert n_params(UGATITDiscriminator(64, 7)) == 53_130_176 and n_params(UGATITDiscriminator(64, 5)) == 3_290_560


def test_adaptive_layer_instance_norm_by_hand():
    torch.manual_seed(0)
    norm = AdaILN(3)
    with torch.no_grad():
        norm.rho.copy_(torch.tensor([0.0, 0.5, 1.0]).view(1, 3, 1, 1))
    x = torch.randn(2, 3, 4, 5)
    gamma, beta = torch.randn(2, 3), torch.randn(2, 3)
    inst = (x - x.mean((2, 3), keepdim=True)) / (x.var((2, 3), keepdim=True) + 1e-5).sqrt()
    layer = (x - x.mean((1, 2, 3), keepdim=True)) / (x.var((1, 2, 3), keepdim=True) + 1e-5).sqrt()
    rho = torch.tensor([0.0, 0.5, 1.0]).view(1, 3, 1, 1)
    want = (rho * inst + (1 - rho) * layer) * gamma[:, :, None, None] + beta[:, :, None, None]
    torch.testing.assert_close(norm(x, gamma, beta), want)


def test_the_discriminator_cam_reads_the_unnormalised_weight():
    """Its logits use the spectrally normalised classifier; the reweighting, as released, its raw weight_orig."""
    torch.manual_seed(0)
    d = UGATITDiscriminator(8, 5).eval()
    with torch.no_grad():
        d.gap_fc.weight_orig.mul_(7.0)  # far from unit spectral norm
        x = torch.rand(1, 3, 64, 64)
        feats = d.model(x)
        want_cam = torch.cat([feats * d.gap_fc.weight_orig[:, :, None, None],
                              feats * d.gmp_fc.weight_orig[:, :, None, None]], 1)
        want = d.conv(d.pad(d.leaky_relu(d.conv1x1(want_cam))))
        torch.testing.assert_close(d(x)[0], want)


def test_rho_is_clipped_after_each_generator_step(smoke_suite, tmp_path):
    from bench.translator import TrainBudget

    m = UGATIT("smoke")
    with torch.no_grad():
        for mod in m.g_a2b.modules():
            if hasattr(mod, "rho"):
                mod.rho.fill_(5.0)
    m.fit(smoke_suite.unpaired(), TrainBudget(0, max_steps=2), tmp_path)
    rhos = torch.cat([mod.rho.flatten() for mod in m.g_a2b.modules() if hasattr(mod, "rho")])
    assert rhos.max() <= 1.0 and rhos.min() >= 0.0


def test_the_full_generator_translates_any_size_through_its_square_input():
    torch.manual_seed(0)
    m = UGATIT("smoke")
    for p in m.g_a2b.parameters():
        p.data.normal_(0, 0.05)
    images = torch.rand(2, 3, 37, 61)
    out = m.translate(images)
    assert out.shape == images.shape
    # the network sees the images resized to img_size x img_size, and its output is resized back
    import torch.nn.functional as F

    with torch.no_grad():
        square = F.interpolate(images * 2 - 1, size=(32, 32), mode="bilinear", antialias=True)
        back = F.interpolate(m.g_a2b(square)[0], size=(37, 61), mode="bilinear", antialias=True)
    torch.testing.assert_close(out, ((back + 1) / 2).clamp(0, 1))


def test_configuration_is_checked():
    with pytest.raises(ValueError, match="img_size must be a multiple of 4"):
        UGATITConfig(img_size=30)
    with pytest.raises(ValueError, match="at least 3 layers"):
        UGATITConfig(n_dis_local=2)
    p = PRESETS["paper"]
    assert (p.lr, p.weight_decay, p.cam_weight, p.max_steps, p.epoch_decay) == (1e-4, 1e-4, 1000.0, 1_000_000, 500_000)


def test_an_authors_params_file_translates_through_the_cli(tmp_path, cli_translation):
    """``<dataset>_params_<iter>.pt``: a dict of the six networks' state dicts; size, depth and the light flag are
    read off genA2B's keys, and genA2B translates."""
    torch.manual_seed(0)
    ref = UGATIT("smoke", config=replace(PRESETS["smoke"], ngf=4, n_blocks=3, img_size=24))
    for p in ref.g_a2b.parameters():
        p.data.normal_(0, 0.05)
    params = {"genA2B": ref.g_a2b.state_dict(), "genB2A": ref.g_b2a.state_dict(), "disGA": ref.d_ga.state_dict(),
              "disGB": ref.d_gb.state_dict(), "disLA": ref.d_la.state_dict(), "disLB": ref.d_lb.state_dict()}
    torch.save(params, tmp_path / "night2day_params_0100000.pt")
    got, image = cli_translation("ugatit", tmp_path / "night2day_params_0100000.pt")
    want = ref.translate(image[None])[0]
    assert (got - want).abs().max() <= 1 / 255 + 1e-6
