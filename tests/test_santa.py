"""Santa: the authors' parameter counts and key layout, the domain code, the path length by hand (one domain value
per image), the configuration checks and an authors' generator file through the CLI. Compared with the authors'
code (run outside the repository): README, "Baselines"."""

import pytest
import torch

from baselines.santa.model import PRESETS, Santa, SantaConfig


def n_params(m) -> int:
    return sum(p.numel() for p in m.parameters())


def conv(k: int, cin: int, cout: int) -> int:
    return k * k * cin * cout + cout


def generator_params(ngf: int, n_blocks: int, style_dim: int) -> int:
    """``AdaINResnetGenerator``: CUT's generator (head, n_blocks residual blocks, tail), plus a Linear(style_dim,
    2C) in every AdaIN of the decoder (two per decoder block, one after each up-conv) and the 2 x style_dim
    domain embedding."""
    d = 4 * ngf
    cut = (conv(7, 3, ngf) + conv(3, ngf, 2 * ngf) + conv(3, 2 * ngf, d) + n_blocks * 2 * conv(3, d, d)
           + conv(3, d, 2 * ngf) + conv(3, 2 * ngf, ngf) + conv(7, ngf, 3))
    adain = lambda c: style_dim * 2 * c + 2 * c  # noqa: E731
    decoder_blocks = n_blocks - n_blocks // 2
    return cut + decoder_blocks * 2 * adain(d) + adain(2 * ngf) + adain(ngf) + 2 * style_dim


def test_parameter_counts_match_the_authors_networks():
    """As their define_G('adain_resnet_9blocks') / define_D('basic') build them (11,427,731 and 2,764,737)."""
    m = Santa("paper")
    assert n_params(m.g) == generator_params(64, 9, 8) == 11_427_731
    assert n_params(m.d) == 2_764_737
    assert n_params(Santa("quick").g) == generator_params(16, 6, 8) == 501_875


def test_state_dict_uses_the_authors_key_layout():
    g = set(Santa("smoke").g.state_dict())
    for key in ("encoder.1.weight", "encoder.7.filt", "encoder.12.conv_block.1.weight", "decoder.0.conv_block.2.fc.weight",
                "decoder.3.filt", "decoder.5.fc.bias", "decoder.12.weight", "domain_embedding.weight"):
        assert key in g, key


def test_the_domain_code_interpolates_the_two_embeddings():
    torch.manual_seed(0)
    m = Santa("smoke")
    e = m.g.domain_embedding.weight
    m.g._set_style(torch.tensor([0.0, 0.25, 1.0]))
    style = m.g.decoder[0].conv_block[2].style
    torch.testing.assert_close(style, torch.stack([e[0], 0.75 * e[0] + 0.25 * e[1], e[1]]))
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    with torch.no_grad():  # the translation is the decoder at d = 1
        torch.testing.assert_close(m.g(x), m.g.decode(m.g.encode(x), torch.ones(1)), rtol=0, atol=0)


def test_path_length_by_hand_with_one_domain_value_per_image():
    """Each image's finite difference is divided by its own max(d1 - d2, 0.1) (the authors' batch-1 computation);
    the energy is the mean square over the batch, averaged over the five layers."""
    torch.manual_seed(0)
    m = Santa("smoke")
    for p in m.g.parameters():
        p.data.normal_(0, 0.2)
    c = m.config
    latent = torch.randn(2, 4 * c.ngf, 8, 8)
    torch.manual_seed(3)
    with torch.no_grad():
        got = m.path_length(latent)
    torch.manual_seed(3)
    centre, half = torch.empty(2).uniform_(0, 1), torch.empty(2).uniform_(c.path_interval_min, c.path_interval_max)
    d1, d2 = (centre + half).clamp(0, 1), (centre - half).clamp(0, 1)
    per_layer = [0.0] * len(c.path_layers)
    for i in range(2):
        with torch.no_grad():
            f1 = m.g.decode_features(latent[i:i + 1], d1[i:i + 1], c.path_layers)
            f2 = m.g.decode_features(latent[i:i + 1], d2[i:i + 1], c.path_layers)
        for j, (a, b) in enumerate(zip(f1, f2)):
            per_layer[j] += (((a - b) / max(float(d1[i] - d2[i]), 0.1)) ** 2).mean() / 2
    assert got.item() == pytest.approx(float(sum(per_layer) / len(per_layer)), rel=1e-5)
    assert got.item() > 1e-3


def test_configuration_is_checked():
    with pytest.raises(ValueError, match=r"reach past the decoder's 14 layers \(n_blocks 5\)"):
        SantaConfig(n_blocks=5, path_layers=(0, 3, 6, 10, 14))
    with pytest.raises(ValueError, match="increasing"):
        SantaConfig(path_layers=(3, 0))
    with pytest.raises(ValueError, match="path_interval_min"):
        SantaConfig(path_interval_min=0.2, path_interval_max=0.1)
    assert PRESETS["paper"].lambda_path == 0.1 and PRESETS["paper"].batch_size == 1


def test_an_authors_generator_file_translates_through_the_cli(tmp_path, cli_translation):
    """Their ``latest_net_G.pth`` (no prefix): width, depth and style size are read off its keys."""
    torch.manual_seed(0)
    ref = Santa("smoke", config=SantaConfig(ngf=8, n_blocks=6, style_dim=3, path_layers=(0, 1, 4, 8, 12)))
    for p in ref.g.parameters():
        p.data.normal_(0, 0.05)
    torch.save(ref.g.state_dict(), tmp_path / "latest_net_G.pth")
    got, image = cli_translation("santa", tmp_path / "latest_net_G.pth")
    want = ref.translate(image[None])[0]
    assert (got - want).abs().max() <= 1 / 255 + 1e-6
