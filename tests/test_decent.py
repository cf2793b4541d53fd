"""DECENT: the authors' parameter counts, the BNAF flows as densities (log-determinant against autograd's Jacobian),
the optimizer's uncorrected running average as released, the density-changing term at its zero, the flows' own
learning rate under the schedule, and an authors' generator file through the CLI. Compared with the authors' code
(run outside the repository): README, "Baselines"."""

import math
from dataclasses import replace

import pytest
import torch

from baselines.decent.flows import BNAF
from baselines.decent.model import PRESETS, Decent, DecentConfig
from baselines.decent.optim import PolyakAdam
from bench.translator import TrainBudget


def n_params(m) -> int:
    return sum(p.numel() for p in m.parameters())


def flow_params(c: int, hidden: int = 10) -> int:
    """One BNAF block with no hidden layers: MaskedWeight(C, hC) and MaskedWeight(hC, C), each a weight, a log
    diagonal scale per output and a bias."""
    return (hidden * c * c + 2 * hidden * c) + (hidden * c * c + 2 * c)


def test_parameter_counts_match_the_authors_networks():
    """G and D are CUT's; each density estimator has one flow per layer, on 3, 128, 256, 256, 256 channels."""
    m = Decent("paper")
    assert (n_params(m.g), n_params(m.d)) == (11_378_179, 2_764_737)
    assert n_params(m.f_a) == n_params(m.f_b) == sum(map(flow_params, (3, 128, 256, 256, 256))) == 4_279_798


@pytest.mark.parametrize("n_flows,n_layers", [(1, 0), (2, 2)])
def test_a_flow_is_a_density_with_a_triangular_jacobian(n_flows, n_layers):
    """log p(x) = log N(f(x)) + log |det J_f(x)|, with J from autograd, and J lower triangular (autoregressive)."""
    torch.manual_seed(0)
    flow = BNAF(4, n_flows=n_flows, n_layers=n_layers, hidden_dim=3).double()
    x = torch.randn(5, 4, dtype=torch.float64)
    got = flow.log_probs(x)
    for i in range(5):
        y = flow.model(x[i:i + 1])[0][0]
        jac = torch.autograd.functional.jacobian(lambda v: flow.model(v[None])[0][0], x[i])
        if n_flows == 1:
            assert torch.allclose(jac.triu(1), torch.zeros_like(jac), atol=1e-12)
        want = -0.5 * (y ** 2).sum() - 2 * math.log(2 * math.pi) + torch.linalg.slogdet(jac)[1]
        assert got[i].item() == pytest.approx(want.item(), rel=1e-9, abs=1e-9)


def test_the_running_average_starts_at_zero_without_bias_correction():
    """As released: after t steps of a parameter that does not move, its average is (1 - polyak^t) of it."""
    p = torch.nn.Parameter(torch.full((3,), 2.0))
    opt = PolyakAdam([p], lr=1e-3, polyak=0.9)
    for _ in range(5):
        p.grad = torch.zeros(3)
        opt.step()
    torch.testing.assert_close(opt.state[p]["exp_avg_param"], torch.full((3,), 2.0 * (1 - 0.9 ** 5)))
    opt.swap()
    torch.testing.assert_close(p.detach(), torch.full((3,), 2.0 * (1 - 0.9 ** 5)))
    opt.swap()
    torch.testing.assert_close(p.detach(), torch.full((3,), 2.0))


def test_density_change_is_zero_when_nothing_changes():
    """Same flows on both sides and G(A) = A: every patch keeps its density, so the variance is 0; else positive."""
    torch.manual_seed(0)
    m = Decent("smoke")
    m.f_b.load_state_dict(m.f_a.state_dict())
    a = torch.rand(2, 3, 32, 48) * 2 - 1
    feats = m.g.encode(a, m.config.var_layers)
    torch.manual_seed(1)
    assert m.density_change_variance(feats, a).item() == pytest.approx(0.0, abs=1e-10)
    torch.manual_seed(1)
    assert m.density_change_variance(feats, a.flip(3)).item() > 1e-6


def test_the_flows_keep_their_own_learning_rate_under_the_schedule(smoke_suite, tmp_path):
    m = Decent("smoke", config=replace(PRESETS["smoke"], epochs=3, epoch_decay=1, max_steps=6))
    seen = []
    original = m.train_step

    def spy(real_a, real_b, optimizers):
        seen.append([group["lr"] for opt in optimizers for group in opt.param_groups])
        return original(real_a, real_b, optimizers)

    m.train_step = spy
    m.fit(smoke_suite.unpaired(), TrainBudget(0, max_steps=6), tmp_path)
    for g, d, flows in seen:
        assert g == d and flows == pytest.approx(g * 1e-3 / 2e-4)
    assert seen[0][2] == 1e-3 and seen[-1][2] < 1e-3  # decayed with the schedule, from the flows' own rate


def test_configuration_is_checked():
    with pytest.raises(ValueError, match=r"reach past the generator's encoder \(17 layers at n_blocks 5\)"):
        DecentConfig(n_blocks=5, var_layers=(0, 4, 8, 12, 17))
    with pytest.raises(ValueError, match="flow_blocks and bnaf_dim"):
        DecentConfig(flow_blocks=0)


def test_an_authors_generator_file_translates_through_the_cli(tmp_path, cli_translation):
    """Their ``latest_net_G.pth`` is CUT's generator: width and depth read off its keys."""
    torch.manual_seed(0)
    ref = Decent("smoke", config=replace(PRESETS["smoke"], n_blocks=6))
    for p in ref.g.parameters():
        p.data.normal_(0, 0.05)
    torch.save(ref.g.state_dict(), tmp_path / "latest_net_G.pth")
    got, image = cli_translation("decent", tmp_path / "latest_net_G.pth")
    want = ref.translate(image[None])[0]
    assert (got - want).abs().max() <= 1 / 255 + 1e-6
