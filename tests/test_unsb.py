"""UNSB: the authors' parameter counts and key layout, the released residual block, the bridge schedule and the
test-time chain by hand, the authors' checkpoint through the CLI, nfe as a test-time setting, a smoke run."""

import csv
import json
from dataclasses import replace

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from baselines.unsb.model import PRESETS, UNSB, bridge_times
from bench.cli import main
from bench.data.io import read_rgb, to_tensor, write_png


def n_params(m) -> int:
    return sum(p.numel() for p in m.parameters())


def conv(k: int, cin: int, cout: int) -> int:
    return k * k * cin * cout + cout


def linear(cin: int, cout: int) -> int:
    return cin * cout + cout


def generator_params(ngf: int, n_blocks: int, n_mlp: int) -> int:
    """``ResnetGenerator_ncsn``'s layer list: CUT's head and tail; per block two 3x3 convs, the z modulation
    (4ngf -> 2 x 4ngf), the time projection (4ngf -> 4ngf) and the unused ``style`` layer (4ngf -> 2 x 4ngf); the
    mapping network (1 + n_mlp Linear layers) and the time MLP (ngf -> 4ngf -> 4ngf)."""
    d = 4 * ngf
    head = conv(7, 3, ngf) + conv(3, ngf, 2 * ngf) + conv(3, 2 * ngf, d)
    block = 2 * conv(3, d, d) + linear(d, 2 * d) + linear(d, d) + linear(d, 2 * d)
    tail = conv(3, d, 2 * ngf) + conv(3, 2 * ngf, ngf) + conv(7, ngf, 3)
    return head + n_blocks * block + tail + (1 + n_mlp) * linear(d, d) + linear(ngf, d) + linear(d, d)


def discriminator_params(cin: int, ndf: int) -> int:
    """``NLayerDiscriminator_ncsn`` (3 layers): four 4x4 convs each with a time projection, the final conv, the
    two-layer time MLP."""
    widths = [cin, ndf, 2 * ndf, 4 * ndf, 8 * ndf]
    blocks = sum(conv(4, a, b) + linear(4 * ndf, b) for a, b in zip(widths, widths[1:]))
    return blocks + conv(4, 8 * ndf, 1) + 2 * linear(4 * ndf, 4 * ndf)


def test_parameter_counts_match_the_authors_networks():
    """The counts the authors' training prints for their defaults (14.684 M, 3.143 M, 3.152 M, 0.560 M; checked by
    building their ncsn_networks.py modules), from their layer list: E is D on 12 channels (two (x_t, x_1) pairs)."""
    m = UNSB("paper")
    assert n_params(m.g) == generator_params(64, 9, 3) == 14_684_419
    assert n_params(m.d) == discriminator_params(3, 64) == 3_143_041
    assert n_params(m.e) == discriminator_params(12, 64) == 3_152_257
    mlp = lambda c: linear(c, 256) + linear(256, 256)  # noqa: E731
    assert n_params(m.f) == mlp(3) + mlp(128) + 3 * mlp(256) == 560_384


def test_state_dicts_use_the_authors_key_layout():
    m = UNSB("smoke")
    g, d = set(m.g.state_dict()), set(m.e.state_dict())
    for key in ("model.1.weight", "model.7.filt", "model.11.filt", "model_res.0.conv_block.1.weight",
                "model_res.0.adaptive.style_net.weight", "model_res.4.conv_fin.2.bias", "model_res.0.Dense_time.weight",
                "model_res.0.style.weight", "model_upsample.0.filt", "model_upsample.1.weight",
                "model_upsample.9.weight", "z_transform.1.weight", "z_transform.7.weight", "time_embed.2.weight"):
        assert key in g, key
    for key in ("model_main.0.conv1.weight", "model_main.0.dense.weight", "model_main.3.down.filt",
                "final_conv.weight", "t_embed.main.2.weight"):
        assert key in d, key
    assert m.e.state_dict()["model_main.0.conv1.weight"].shape[1] == 12  # E reads two (x_t, x_1) pairs


def test_the_released_residual_block_reduces_its_first_branch_to_a_norm():
    """As released (cyclomon/UNSB#29) each layer of the block's first branch reads the block input, so its conv and
    the time projection change nothing, and G's output does not depend on the step index; D's does."""
    torch.manual_seed(0)
    m = UNSB("smoke")
    for p in m.g.parameters():
        p.data.normal_(0, 0.1)
    x, z = torch.randn(2, 3, 32, 48), torch.randn(2, 4 * m.config.ngf)
    t = lambda k: torch.full((2,), k, dtype=torch.long)  # noqa: E731
    before = m.g(x, t(0), z)
    with torch.no_grad():
        for block in m.g.model_res:
            block.conv_block[1].weight.add_(1.0)
            block.Dense_time.weight.add_(1.0)
    torch.testing.assert_close(m.g(x, t(0), z), before, rtol=0, atol=0)
    torch.testing.assert_close(m.g(x, t(3), z), before, rtol=0, atol=0)
    assert not torch.allclose(m.d(x, t(0)[:1]), m.d(x, t(3)[:1]))
    # z does act: through each block's modulation after the norm
    assert not torch.allclose(m.g(x, t(0), torch.randn_like(z)), before)


def test_bridge_schedule_is_the_released_one():
    """T = 5: partial sums 0, 1, 1.5, 1.8333, 2.0833 normalised, then 0.5 + 0.5 x: 0.5, 0.74, 0.86, 0.94, 1."""
    np.testing.assert_allclose(bridge_times(5).numpy(), [0, 0.5, 0.74, 0.86, 0.94, 1.0], atol=1e-6)
    np.testing.assert_allclose(bridge_times(2).numpy(), [0, 0.5, 1.0])


def _noise(m: UNSB, image: torch.Tensor, steps: int) -> tuple[torch.Tensor, list[torch.Tensor]]:
    g = torch.Generator().manual_seed(m._image_seed(image))
    z = torch.randn(steps, 4 * m.config.ngf, generator=g)
    return z, [torch.randn(image.shape, generator=g) for _ in range(steps - 1)]


def test_test_time_chain_by_hand():
    """NFE 1 is one generator pass from the input; NFE 2 moves to x_1 = 0.5 x_0 + 0.5 G(x_0) + sqrt(tau * 0.25) n
    (t_1 = 0.5: inter = 0.5 / 1, variance delta (1 - delta / rest) = 0.25) and predicts again."""
    torch.manual_seed(0)
    m = UNSB("smoke")
    image = torch.rand(1, 3, 32, 64)
    z, noise = _noise(m, image[0], 2)
    x0 = image * 2 - 1
    with torch.no_grad():
        e0 = m.g(x0, torch.zeros(1, dtype=torch.long), z[0:1])
        x1 = 0.5 * x0 + 0.5 * e0 + (0.25 * m.config.tau) ** 0.5 * noise[0][None]
        e1 = m.g(x1, torch.ones(1, dtype=torch.long), z[1:2])
    m.config = replace(m.config, nfe=1)
    torch.testing.assert_close(m.translate(image), ((e0 + 1) / 2).clamp(0, 1), rtol=0, atol=1e-6)
    m.config = replace(m.config, nfe=2)
    torch.testing.assert_close(m.translate(image), ((e1 + 1) / 2).clamp(0, 1), rtol=0, atol=1e-6)


def test_translation_depends_on_the_image_and_seed_not_on_the_batch():
    torch.manual_seed(0)
    m = UNSB("smoke")
    images = torch.rand(3, 3, 37, 53)
    together = m.translate(images)
    torch.testing.assert_close(m.translate(images[1:2]), together[1:2], rtol=0, atol=1e-6)
    m.config = replace(m.config, sample_seed=1)
    assert not torch.allclose(m.translate(images[1:2]), together[1:2], atol=1e-4)


@pytest.mark.usefixtures("smoke_suite")
def test_nfe_is_checked_and_kept_when_a_checkpoint_is_loaded(tmp_path):
    """nfe and sample_seed are test-time settings: bench translate's --set wins over the checkpoint's values. An nfe
    outside 1..T is one line naming the range, before anything trains."""
    from safetensors.torch import save_file

    from bench.translator import load_translator

    res = CliRunner().invoke(main, ["run", "--methods", "unsb", "--preset", "smoke", "--out", str(tmp_path / "runs"),
                                    "--set", "unsb.nfe=6"])
    assert res.exit_code == 2 and "Traceback" not in res.output
    assert "method 'unsb': nfe must be between 1 and num_timesteps (5), got 6" in res.output, res.output
    assert not (tmp_path / "runs" / "synthetic-night" / "smoke" / "cells").exists()

    save_file(UNSB("smoke").state_dict(), tmp_path / "c.safetensors")
    t = load_translator("unsb", tmp_path / "c.safetensors", overrides={"nfe": 2, "sample_seed": 3})
    assert (t.config.nfe, t.config.sample_seed, t.config.ngf) == (2, 3, 8)


def test_the_authors_checkpoint_translates_through_the_cli(tmp_path):
    """``latest_net_G.pth`` (their state dict: no prefix, n_mlp and depth read off the keys) loads with
    bench translate; its output is that generator's chain."""
    torch.manual_seed(0)
    ref = UNSB("smoke", config=replace(PRESETS["smoke"], n_mlp=2, n_blocks=6))
    torch.save(ref.g.state_dict(), tmp_path / "latest_net_G.pth")
    (tmp_path / "in").mkdir()
    write_png(tmp_path / "in" / "a.png", (torch.rand(36, 52, 3) * 255).byte().numpy())
    res = CliRunner().invoke(main, ["translate", "--method", "unsb", "--checkpoint", str(tmp_path / "latest_net_G.pth"),
                                    "--input", str(tmp_path / "in"), "--output", str(tmp_path / "out"),
                                    "--device", "cpu", "--set", "unsb.nfe=3"])
    assert res.exit_code == 0, res.output
    ref.config = replace(ref.config, nfe=3)
    want = ref.translate(to_tensor(read_rgb(tmp_path / "in" / "a.png"))[None])[0]
    got = to_tensor(read_rgb(tmp_path / "out" / "a.png"))
    assert (got - want).abs().max() <= 1 / 255 + 1e-6


def test_each_step_sees_two_independent_batches_of_a(smoke_suite, tmp_path):
    from bench.translator import TrainBudget

    seen = []
    m = UNSB("smoke")
    original = m.train_step

    def spy(real_a, real_b, optimizers):
        seen.append((real_a.clone(), real_b.shape[0]))
        return original(real_a, real_b, optimizers)

    m.train_step = spy
    m.fit(smoke_suite.unpaired(), TrainBudget(0, max_steps=2), tmp_path)
    for real_a, n_b in seen:
        assert real_a.shape[0] == 2 * n_b
        first, second = real_a.chunk(2)
        assert not torch.equal(first, second)


@pytest.mark.usefixtures("smoke_suite")
def test_bench_run_trains_and_scores_unsb_and_records_nfe(tmp_path):
    def run(*extra):
        return CliRunner().invoke(main, ["run", "--methods", "identity,unsb", "--preset", "smoke", "--out",
                                         str(tmp_path), "--device", "cpu", *extra])

    res = run()
    assert res.exit_code == 0, res.output
    folder = tmp_path / "synthetic-night" / "smoke"
    log = (folder / "cells" / "unsb" / "seed0" / "train" / "train_log.jsonl").read_text().splitlines()
    assert [json.loads(line)["step"] for line in log] == list(range(1, 13))  # smoke: 12 steps
    rows = [r for r in csv.DictReader(open(folder / "metrics.csv")) if r["method"] == "unsb"]
    psnr = [float(r["value"]) for r in rows if r["metric"] == "psnr"]
    assert len(psnr) == 1 and np.isfinite(psnr[0])
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["method_configs"]["unsb"]["nfe"] == 5
    # Another nfe is another protocol: the finished cells are not silently relabelled.
    res = run("--set", "unsb.nfe=1")
    assert res.exit_code == 2 and "nfe=5 there, 1 now" in res.output and "--name" in res.output, res.output
