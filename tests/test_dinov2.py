"""fd-dinov2: our DINOv2 ViT equals the transformers implementation on converted weights; the metric is the
FID formula on its CLS features and is skipped, with the fix, when the weights are absent."""

import pytest
import torch

from bench.metrics.dinov2 import DinoV2


def _random_vit(dim=128, depth=2, grid=4) -> DinoV2:
    torch.manual_seed(0)
    vit = DinoV2(dim=dim, depth=depth, grid=grid)
    with torch.no_grad():
        for name, p in vit.named_parameters():
            if name.endswith("gamma") or "norm" in name:
                p.copy_(1 + 0.1 * torch.randn_like(p))  # layer scale and LayerNorm affine not at their init
            elif name in ("pos_embed", "cls_token"):
                p.normal_(std=0.5)
    return vit.eval()


def _to_transformers(vit: DinoV2, grid: int):
    transformers = pytest.importorskip("transformers", reason="transformers is the reference implementation")
    dim, depth = vit.cls_token.shape[-1], len(vit.blocks)
    cfg = transformers.Dinov2Config(hidden_size=dim, num_hidden_layers=depth, num_attention_heads=dim // 64,
                                    patch_size=14, image_size=14 * grid, mlp_ratio=4, layer_norm_eps=1e-6)
    ref = transformers.Dinov2Model(cfg).eval()
    sd = vit.state_dict()
    new = {
        "embeddings.cls_token": sd["cls_token"], "embeddings.mask_token": sd["mask_token"],
        "embeddings.position_embeddings": sd["pos_embed"],
        "embeddings.patch_embeddings.projection.weight": sd["patch_embed.proj.weight"],
        "embeddings.patch_embeddings.projection.bias": sd["patch_embed.proj.bias"],
        "layernorm.weight": sd["norm.weight"], "layernorm.bias": sd["norm.bias"],
    }
    # transformers 5 renamed the attention projections; accept both layouts.
    v5 = "encoder.layer.0.attention.q_proj.weight" in ref.state_dict()
    names = ({"q": "attention.q_proj", "k": "attention.k_proj", "v": "attention.v_proj", "o": "attention.o_proj"} if v5
             else {"q": "attention.attention.query", "k": "attention.attention.key",
                   "v": "attention.attention.value", "o": "attention.output.dense"})
    for i in range(depth):
        o, h = f"blocks.{i}.", f"encoder.layer.{i}."
        q, k, v = sd[o + "attn.qkv.weight"].chunk(3)
        qb, kb, vb = sd[o + "attn.qkv.bias"].chunk(3)
        new.update({
            h + "norm1.weight": sd[o + "norm1.weight"], h + "norm1.bias": sd[o + "norm1.bias"],
            h + names["q"] + ".weight": q, h + names["q"] + ".bias": qb,
            h + names["k"] + ".weight": k, h + names["k"] + ".bias": kb,
            h + names["v"] + ".weight": v, h + names["v"] + ".bias": vb,
            h + names["o"] + ".weight": sd[o + "attn.proj.weight"], h + names["o"] + ".bias": sd[o + "attn.proj.bias"],
            h + "layer_scale1.lambda1": sd[o + "ls1.gamma"], h + "layer_scale2.lambda1": sd[o + "ls2.gamma"],
            h + "norm2.weight": sd[o + "norm2.weight"], h + "norm2.bias": sd[o + "norm2.bias"],
            h + "mlp.fc1.weight": sd[o + "mlp.fc1.weight"], h + "mlp.fc1.bias": sd[o + "mlp.fc1.bias"],
            h + "mlp.fc2.weight": sd[o + "mlp.fc2.weight"], h + "mlp.fc2.bias": sd[o + "mlp.fc2.bias"],
        })
    missing, unexpected = ref.load_state_dict(new, strict=False)
    assert not unexpected and all("mask_token" in k for k in missing)
    return ref


def test_vit_equals_transformers_dinov2():
    vit = _random_vit()
    ref = _to_transformers(vit, grid=4)
    x = torch.randn(3, 3, 56, 56)
    with torch.no_grad():
        ours, theirs = vit(x), ref(pixel_values=x).pooler_output
    assert ours.shape == (3, 128) and ours.std() > 0.1
    torch.testing.assert_close(ours, theirs, rtol=1e-4, atol=1e-5)


def test_position_embeddings_follow_the_official_offset_interpolation():
    vit = _random_vit(grid=4)
    pos = vit._pos_embed(6, 6)
    assert pos.shape == (1, 1 + 36, 128) and torch.equal(pos[:, 0], vit.pos_embed[:, 0])
    grid = vit.pos_embed[:, 1:].reshape(1, 4, 4, -1).permute(0, 3, 1, 2)
    official = torch.nn.functional.interpolate(grid, scale_factor=(6.1 / 4, 6.1 / 4), mode="bicubic", align_corners=False)
    torch.testing.assert_close(pos[:, 1:], official.permute(0, 2, 3, 1).reshape(1, 36, -1))
    plain = torch.nn.functional.interpolate(grid, size=(6, 6), mode="bicubic", align_corners=False)
    assert not torch.allclose(official, plain)  # the 0.1 offset matters: a re-implementation must keep it
    assert torch.equal(vit._pos_embed(4, 4), vit.pos_embed)  # the native grid is used as is


def test_fd_dinov2_is_the_frechet_distance_of_cls_features(smoke_suite, with_weights):
    from bench.metrics.dinov2 import DinoV2Extractor
    from bench.metrics.fid_kid import extract_features, fid_from_features
    from bench.scoring import Scorer

    scorer = Scorer("synthetic-night", smoke_suite, ("fd-dinov2",))
    (rec,) = scorer.score("identity", 0, smoke_suite.test_a)
    ext = DinoV2Extractor()
    fa = extract_features(smoke_suite.test_a, ext, use_cache=False)
    fb = extract_features(smoke_suite.test_b, ext, use_cache=False)
    assert fa.shape == (12, 128)  # the substitute ViT is 128 wide
    assert rec.value == pytest.approx(fid_from_features(fa, fb), rel=1e-6) and rec.value > 0
    assert rec.ci_low < rec.value < rec.ci_high
    assert "SUBSTITUTE" in rec.extractor


def test_fd_dinov2_is_skipped_with_the_fix_when_weights_are_absent(smoke_suite, tmp_path, monkeypatch):
    from bench.scoring import Scorer

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    (rec,) = Scorer("synthetic-night", smoke_suite, ("fd-dinov2",)).score("identity", 0, smoke_suite.test_a)
    assert rec.skipped and "dinov2_vitl14_pretrain.pth" in rec.note and "dl.fbaipublicfiles.com" in rec.note


def test_fd_dinov2_equals_torch_fidelity_dinov2_extractor(smoke_suite, with_weights, monkeypatch):
    """torch-fidelity's dinov2-vit-l-14 extractor fetches the model code from GitHub through torch hub; handed our
    ViT with the same weights instead, its calculate_metrics gives our fd-dinov2 (its resize and normalisation)."""
    import torch_fidelity

    from bench.metrics.dinov2 import DinoV2Extractor
    from bench.scoring import Scorer

    ext = DinoV2Extractor()
    monkeypatch.setattr(torch.hub, "load", lambda repo, name, *a, **k: DinoV2.from_state_dict(ext.model.state_dict()))
    ref = torch_fidelity.calculate_metrics(
        input1=str(smoke_suite.root / "testA"), input2=str(smoke_suite.root / "testB"), fid=True, cuda=False,
        feature_extractor="dinov2-vit-l-14", save_cpu_ram=True, cache=False, verbose=False,
    )["frechet_inception_distance"]
    (rec,) = Scorer("synthetic-night", smoke_suite, ("fd-dinov2",)).score("identity", 0, smoke_suite.test_a)
    assert rec.value == pytest.approx(ref, rel=1e-4) and ref > 0
