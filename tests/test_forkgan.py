"""ForkGAN: layer-list parameter counts, the blocks it shares with AU-GAN, its losses, training and reloading."""

import json

import pytest
import torch

from augan.model import AUGAN
from baselines.forkgan.model import DomainClassifier, ForkGAN, domain_ce
from bench.learned import CheckpointMismatch
from bench.translator import TrainBudget


def n_params(m) -> int:
    return sum(p.numel() for p in m.parameters())


def test_parameter_counts_match_the_official_layer_list():
    """generator_resnet (official model.py): bias-free convs, instance norm with scale and offset;
    c7s1-64, two stride-2 3x3 stages, 5 encoder blocks (g_r1-g_r5), then two decoders of 4 blocks,
    two 3x3 deconvs and a 7x7 conv each (g_r6-9, g_r6_rec-9_rec)."""
    g, inorm = 64, lambda c: 2 * c  # noqa: E731
    block = 2 * (3 * 3 * 4 * g * 4 * g + inorm(4 * g))
    stem = 7 * 7 * 3 * g + inorm(g) + 3 * 3 * g * 2 * g + inorm(2 * g) + 3 * 3 * 2 * g * 4 * g + inorm(4 * g)
    decoder = 4 * block + 3 * 3 * 4 * g * 2 * g + inorm(2 * g) + 3 * 3 * 2 * g * g + inorm(g) + 7 * 7 * g * 3
    model = ForkGAN("paper")
    assert n_params(model.g_a2b) == stem + 5 * block + 2 * decoder == 16_484_544
    # AU-GAN's normal->adverse generator is this generator with one encoder block fewer.
    assert n_params(AUGAN("paper").g_b2a) == n_params(model.g_a2b) - block
    # domain_agnostic_classifier on the 256-channel code, df_dim = 64 // 2: 4x4 convs to 128, 64, 64, then 2.
    d = 32
    cls = (4 * 4 * 256 * 4 * d + inorm(4 * d) + 4 * 4 * 4 * d * 2 * d + inorm(2 * d) + 4 * 4 * 2 * d * 2 * d
           + inorm(2 * d) + 4 * 4 * 2 * d * 2)
    assert n_params(model.classifier) == cls
    # Three discriminator families (translation, reconstruction, refinement) x 2 domains x n_d = 2.
    assert sum(len(model.modules()[k]) for k in ("d_a", "d_b", "rec_a", "rec_b", "ref_a", "ref_b")) == 12


def test_classifier_pools_over_batch_and_space_and_its_loss():
    cls = DomainClassifier(32, 4)
    logits = cls(torch.randn(3, 32, 16, 32))
    assert logits.shape == (2,)  # one prediction per batch, as the official reduce_mean over [0, 1, 2]
    zero = torch.zeros(2)
    assert domain_ce(zero, 0) == pytest.approx(torch.log(torch.tensor(2.0)).item())
    assert domain_ce(torch.tensor([10.0, -10.0]), 0) < 1e-4 < domain_ce(torch.tensor([10.0, -10.0]), 1)


@pytest.mark.slow
def test_smoke_training_lowers_losses_and_mismatches_name_the_field(smoke_suite, tmp_path):
    torch.manual_seed(0)
    m = ForkGAN("smoke")
    m.fit(smoke_suite.unpaired(), TrainBudget(0, max_steps=30), tmp_path)
    log = [json.loads(line) for line in (tmp_path / "train_log.jsonl").read_text().splitlines()]
    for key in ("cycle", "rec", "g_total"):
        assert sum(r[key] for r in log[-10:]) < sum(r[key] for r in log[:10]), key
    with pytest.raises(CheckpointMismatch, match="ngf"):
        ForkGAN("quick").load_state_dict(m.state_dict())
    with pytest.raises(CheckpointMismatch, match="not a ForkGAN checkpoint"):
        m.load_state_dict(AUGAN("smoke").state_dict())
