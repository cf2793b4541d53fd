"""MoNCE: the authors' parameter counts, the Sinkhorn plan's marginals, the loss by hand at its limits, gradients
through the plan as released, the configuration checks and an authors' generator file through the CLI. Compared
with the authors' CUT_MoNCE code (run outside the repository): docs/baselines.md."""

import math

import pytest
import torch
import torch.nn.functional as F

from baselines.monce.loss import modulated_nce, transport_plan
from baselines.monce.model import MoNCE, MoNCEConfig
from baselines.patch_nce import patch_nce


def n_params(m) -> int:
    return sum(p.numel() for p in m.parameters())


def test_parameter_counts_match_the_authors_networks():
    """As their networks.define_G / define_D / define_F build them at the defaults (CUT's networks, unchanged)."""
    m = MoNCE("paper")
    assert (n_params(m.g), n_params(m.d), n_params(m.f)) == (11_378_179, 2_764_737, 560_384)
    m = MoNCE("quick")
    assert (n_params(m.g), n_params(m.d), n_params(m.f)) == (494_083, 175_089, 35_648)


def test_the_plan_has_uniform_marginals_and_keeps_a_patch_off_its_own_key():
    torch.manual_seed(0)
    q, k = (F.normalize(torch.randn(2, 7, 5), dim=2) for _ in range(2))
    plan = transport_plan(q, k, eps=0.5, cost_type="hard", iters=50)
    torch.testing.assert_close(plan.sum(1), torch.ones(2, 7), rtol=0, atol=1e-5)  # the last update fixes columns
    torch.testing.assert_close(plan.sum(2), torch.ones(2, 7), rtol=0, atol=1e-3)
    assert plan.diagonal(dim1=1, dim2=2).max() < 1e-6
    # hard negatives (more similar keys) get more weight than with the easy cost
    sim = q @ k.transpose(1, 2)
    off = ~torch.eye(7, dtype=torch.bool)
    hard, easy = plan[:, off], transport_plan(q, k, 0.5, "easy", 50)[:, off]
    assert torch.corrcoef(torch.stack([hard.flatten(), sim[:, off].flatten()]))[0, 1] > 0.5
    assert torch.corrcoef(torch.stack([easy.flatten(), sim[:, off].flatten()]))[0, 1] < -0.5


def test_with_a_flat_plan_the_loss_is_patch_nce_with_shifted_negatives():
    """A huge eps makes every entry of the plan 1/P (the diagonal too): each negative logit gains
    log((P - 1) / P) (the scale num_patches - 1 times the plan), so MoNCE is PatchNCE with that shift."""
    torch.manual_seed(0)
    p, tau = 4, 0.5
    q, k = F.normalize(torch.randn(2 * p, 6), dim=1), F.normalize(torch.randn(2 * p, 6), dim=1)
    got = modulated_nce(q, k, 2, tau, num_patches=p, eps=1e9)
    shift = math.log((p - 1) / p)
    for row in range(2 * p):
        img, i = divmod(row, p)
        logits = [float(q[row] @ k[row]) / tau]
        logits += [-10.0 / tau if j == i else float(q[row] @ k[img * p + j]) / tau + shift for j in range(p)]
        want = -logits[0] + math.log(sum(math.exp(v) for v in logits))
        assert got[row].item() == pytest.approx(want, rel=1e-5)
    assert not torch.allclose(got, patch_nce(q, k, 2, tau))


def test_the_generator_is_trained_through_the_plan_as_released():
    """The released loss builds the plan from the queries with their gradient: detaching it changes the gradient."""
    torch.manual_seed(0)
    q0, k = F.normalize(torch.randn(8, 6), dim=1), F.normalize(torch.randn(8, 6), dim=1)
    q = q0.clone().requires_grad_()
    modulated_nce(q, k, 1, 0.07, num_patches=8).mean().backward()
    from baselines.monce import loss as monce_loss

    original = monce_loss.transport_plan
    monce_loss.transport_plan = lambda *a, **kw: original(a[0].detach(), *a[1:], **kw)
    try:
        q2 = q0.clone().requires_grad_()
        modulated_nce(q2, k, 1, 0.07, num_patches=8).mean().backward()
    finally:
        monce_loss.transport_plan = original
    assert not torch.allclose(q.grad, q2.grad, atol=1e-6)


def test_configuration_is_checked():
    with pytest.raises(ValueError, match="cost_type must be one of hard, easy"):
        MoNCEConfig(cost_type="medium")
    with pytest.raises(ValueError, match="eps must be positive"):
        MoNCEConfig(eps=0)


def test_an_authors_generator_file_translates_through_the_cli(tmp_path, cli_translation):
    """Their ``latest_net_G.pth`` is CUT's generator (same keys): depth and width are read off it."""
    from baselines.cut_codebase.model import CUT

    torch.manual_seed(0)
    ref = CUT("smoke")
    for p in ref.g.parameters():
        p.data.normal_(0, 0.05)
    torch.save(ref.g.state_dict(), tmp_path / "latest_net_G.pth")
    got, image = cli_translation("monce", tmp_path / "latest_net_G.pth")
    want = ref.translate(image[None])[0]
    assert (got - want).abs().max() <= 1 / 255 + 1e-6
