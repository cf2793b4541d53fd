"""ToDayGAN: the authors' parameter counts, their near-box "blur", the relativistic multi-scale loss by hand, the
three views, and their saved generator files (a folder, one file, the published zip) through the CLI. Compared
with the authors' code (run outside the repository): README, "Baselines"."""

import zipfile
from dataclasses import replace

import pytest
import torch
from click.testing import CliRunner

from baselines.todaygan.model import PRESETS, ToDayGAN, ToDayGANConfig
from baselines.todaygan.networks import ViewsDiscriminator, blur_kernel, relativistic_lsgan
from bench.cli import main
from bench.data.io import read_rgb, to_tensor, write_png


def n_params(m) -> int:
    return sum(p.numel() for p in m.parameters())


def test_parameter_counts_match_the_authors_networks():
    """As their define_G / define_D build them at the defaults (per domain; checked against their networks.py)."""
    m = ToDayGAN("paper")
    assert (n_params(m.g.encoders[0]), n_params(m.g.decoders[0]), n_params(m.d[0])) == (5_099_143, 6_565_770, 16_698_201)
    assert len(m.g.encoders) == len(m.g.decoders) == len(m.d) == 2


def test_the_authors_blur_is_nearly_a_box_filter():
    k = blur_kernel()
    assert k.shape == (3, 1, 5, 5)
    assert k.sum(dim=(1, 2, 3)).sub(1).abs().max() < 1e-6
    assert 0.0398 < k.min() < k.max() < 0.0402 and k[0, 0, 2, 2] == k.max()


def test_relativistic_multiscale_loss_by_hand():
    real = [torch.full((1, 4, 4), 1.0), torch.full((1, 2, 2), 2.0), torch.full((1, 1, 1), 0.5)]
    fake = [torch.full((1, 4, 4), 0.0), torch.full((1, 2, 2), 1.0), torch.full((1, 1, 1), 1.5)]
    # D (y = -1): (1 - 0 - 1)^2 = 0, (2 - 1 - 1)^2 = 0, (0.5 - 1.5 - 1)^2 = 4; weights 1, 2, 3 + 1 over 7 x 3 scales
    assert relativistic_lsgan(real, fake, True).item() == pytest.approx(4 * 4 / (7 * 3))
    # G (y = +1): 4, 4, 0
    assert relativistic_lsgan(real, fake, False).item() == pytest.approx((1 * 4 + 2 * 4) / (7 * 3))


def test_three_views_with_a_prediction_per_depth():
    d = ViewsDiscriminator(ndf=4, n_layers=3)
    rgb, gray, grad = d(torch.rand(2, 3, 64, 64))
    assert (len(rgb), len(gray), len(grad)) == (3, 3, 2)
    assert all(p.dim() == 3 and p.shape[0] == 2 for p in rgb + gray + grad)


def test_configuration_is_checked():
    with pytest.raises(ValueError, match="night_domain must be 0 or 1"):
        ToDayGANConfig(night_domain=2)
    with pytest.raises(ValueError, match="n_layers_d must be at least 2"):
        ToDayGANConfig(n_layers_d=1)
    assert PRESETS["paper"].epochs == 150 and PRESETS["paper"].epoch_decay == 75


def _authors_files(folder, m: ToDayGAN, epoch: int = 150) -> None:
    folder.mkdir(parents=True)
    for i, net in enumerate([*m.g.encoders, *m.g.decoders]):
        torch.save(net.state_dict(), folder / f"{epoch}_net_G{i}.pth")


def test_the_authors_files_translate_through_the_cli(tmp_path):
    """Their checkpoint is four files (encoders 0, 1, decoders 0, 1); night is their domain 1. Any of the files
    or the zip they publish loads; a file without its decoder siblings is refused naming what it found."""
    torch.manual_seed(0)
    ref = ToDayGAN("smoke", config=replace(PRESETS["smoke"], ngf=8, n_blocks=6))
    for p in ref.g.parameters():
        p.data.normal_(0, 0.05)
    _authors_files(tmp_path / "ckpt", ref)
    with zipfile.ZipFile(tmp_path / "2DayGAN_Checkpoint150.zip", "w") as zf:
        for f in sorted((tmp_path / "ckpt").iterdir()):
            zf.write(f, f"robotcar_2day/{f.name}")
    (tmp_path / "in").mkdir()
    write_png(tmp_path / "in" / "a.png", (torch.rand(36, 52, 3) * 255).byte().numpy())
    want = ref.translate(to_tensor(read_rgb(tmp_path / "in" / "a.png"))[None])[0]
    for i, source in enumerate([tmp_path / "ckpt" / "150_net_G2.pth", tmp_path / "2DayGAN_Checkpoint150.zip"]):
        res = CliRunner().invoke(main, ["translate", "--method", "todaygan", "--checkpoint", str(source), "--input",
                                        str(tmp_path / "in"), "--output", str(tmp_path / f"out{i}"), "--device", "cpu"])
        assert res.exit_code == 0, res.output
        assert (to_tensor(read_rgb(tmp_path / f"out{i}" / "a.png")) - want).abs().max() <= 1 / 255 + 1e-6
    (tmp_path / "ckpt" / "150_net_G3.pth").unlink()
    res = CliRunner().invoke(main, ["translate", "--method", "todaygan", "--checkpoint", str(tmp_path / "ckpt" / "150_net_G0.pth"),
                                    "--input", str(tmp_path / "in"), "--output", str(tmp_path / "bad"), "--device", "cpu"])
    assert res.exit_code != 0 and "Traceback" not in res.output
    assert "expected <epoch>_net_G0.pth .. G3.pth" in res.output and "150_net_G2.pth" in res.output, res.output


def test_an_authors_file_of_another_network_is_named(tmp_path):
    """A decoder file that holds an encoder, or an encoder file that is not one: one line each, no traceback."""
    from bench.learned import CheckpointMismatch

    m = ToDayGAN("smoke")
    _authors_files(tmp_path / "ckpt", m)
    torch.save(m.g.encoders[0].state_dict(), tmp_path / "ckpt" / "150_net_G3.pth")
    with pytest.raises(CheckpointMismatch, match="ToDayGAN weights do not fit this configuration .*decoders.1"):
        ToDayGAN("smoke").load_file(tmp_path / "ckpt" / "150_net_G0.pth")
    torch.save({"other.weight": torch.zeros(1)}, tmp_path / "ckpt" / "150_net_G0.pth")
    with pytest.raises(CheckpointMismatch, match="150_net_G0.pth: not a ToDayGAN encoder"):
        ToDayGAN("smoke").load_file(tmp_path / "ckpt" / "150_net_G0.pth")
