"""CycleGAN-Turbo without any download: a tiny random SD-Turbo-like pipeline built here (UNet, VAE, scheduler, a
CLIP text model and a hand-made tokenizer), a checkpoint in the authors' exact layout made from it with peft (as
their training script saves it), and our translator compared with the same one-step computation done directly
with diffusers and peft's unmerged adapters."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

diffusers = pytest.importorskip("diffusers", reason="the diffusion extra: pip install -e '.[diffusion]'")
peft = pytest.importorskip("peft", reason="peft builds the authors' checkpoint layout in this test")
transformers = pytest.importorskip("transformers")

from baselines.cyclegan_turbo.model import (  # noqa: E402
    TIMESTEP,
    CycleGANTurbo,
    CycleGANTurboConfig,
    one_step,
)
from bench.cli import main  # noqa: E402

UNET_TARGETS = ["to_k", "to_q", "to_v", "to_out.0", "conv", "conv1", "conv2", "conv_in", "conv_shortcut", "conv_out",
                "proj_out", "proj_in", "ff.net.2", "ff.net.0.proj"]
VAE_TARGETS = ["conv1", "conv2", "conv_in", "conv_shortcut", "conv", "conv_out", "skip_conv_1", "skip_conv_2",
               "skip_conv_3", "skip_conv_4", "to_k", "to_q", "to_v", "to_out.0"]
WIDTH = 16  # the text embedding's width (SD-Turbo: 1024)


def tiny_unet():
    return diffusers.UNet2DConditionModel(
        sample_size=8, in_channels=4, out_channels=4, layers_per_block=1, block_out_channels=(8, 8, 16, 16),
        down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=WIDTH, attention_head_dim=4, norm_num_groups=4, use_linear_projection=True)


def tiny_vae():
    return diffusers.AutoencoderKL(
        in_channels=3, out_channels=3, down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4, block_out_channels=(8, 16, 32, 32), layers_per_block=1,
        latent_channels=4, norm_num_groups=4, sample_size=64)


def tiny_scheduler():
    return diffusers.DDPMScheduler(num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012,
                                   beta_schedule="scaled_linear", prediction_type="epsilon", clip_sample=False,
                                   timestep_spacing="trailing")  # as SD-Turbo's: one step lands on 999


def _unet_groups(unet):
    """The authors' three target-module lists (initialize_unet in img2img-turbo's cyclegan_turbo.py)."""
    enc, dec, other = [], [], []
    for n, _ in unet.named_parameters():
        if "bias" in n or "norm" in n:
            continue
        for pattern in UNET_TARGETS:
            if pattern in n and ("down_blocks" in n or "conv_in" in n):
                enc.append(n.replace(".weight", ""))
                break
            if pattern in n and "up_blocks" in n:
                dec.append(n.replace(".weight", ""))
                break
            if pattern in n:
                other.append(n.replace(".weight", ""))
                break
    return enc, dec, other


def _randomise_lora(module, seed):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for n, p in module.named_parameters():
            if "lora_" in n:
                p.copy_(torch.randn(p.shape, generator=g) * 0.05)


@pytest.fixture(scope="module")
def turbo(tmp_path_factory):
    """Base components, peft-adapted copies (the reference) and the checkpoint file they make."""
    from peft import LoraConfig
    from peft.utils import get_peft_model_state_dict

    folder = tmp_path_factory.mktemp("turbo")
    torch.manual_seed(0)
    base_unet, base_vae = tiny_unet().eval(), tiny_vae().eval()
    unet = copy.deepcopy(base_unet)
    enc, dec, other = _unet_groups(unet)
    rank_unet, rank_vae = 4, 2
    for name, targets in (("default_encoder", enc), ("default_decoder", dec), ("default_others", other)):
        unet.add_adapter(LoraConfig(r=rank_unet, init_lora_weights="gaussian", target_modules=targets,
                                    lora_alpha=rank_unet), adapter_name=name)
    unet.set_adapters(["default_encoder", "default_decoder", "default_others"])
    _randomise_lora(unet, 1)
    vae = copy.deepcopy(base_vae)
    # The skip convolutions the authors add to the decoder: 1 x 1, no bias, from the encoder's down-block inputs.
    for i, (cin, cout) in enumerate(((32, 32), (16, 32), (8, 32), (8, 16)), start=1):
        conv = torch.nn.Conv2d(cin, cout, 1, bias=False)
        torch.nn.init.normal_(conv.weight, std=0.05)
        setattr(vae.decoder, f"skip_conv_{i}", conv)
    vae.add_adapter(LoraConfig(r=rank_vae, init_lora_weights="gaussian", target_modules=VAE_TARGETS),
                    adapter_name="vae_skip")
    vae_b2a = copy.deepcopy(vae)
    _randomise_lora(vae, 2)
    _randomise_lora(vae_b2a, 3)
    with torch.no_grad():
        for p in vae_b2a.decoder.skip_conv_1.parameters():
            p.mul_(2)

    class Pair(torch.nn.Module):  # the authors' VAE_encode / VAE_decode hold both VAEs under these names
        def __init__(self):
            super().__init__()
            self.vae, self.vae_b2a = vae, vae_b2a

    pair = Pair()
    sd = {"l_target_modules_encoder": enc, "l_target_modules_decoder": dec, "l_modules_others": other,
          "rank_unet": rank_unet, "sd_encoder": get_peft_model_state_dict(unet, adapter_name="default_encoder"),
          "sd_decoder": get_peft_model_state_dict(unet, adapter_name="default_decoder"),
          "sd_other": get_peft_model_state_dict(unet, adapter_name="default_others"), "rank_vae": rank_vae,
          "vae_lora_target_modules": VAE_TARGETS, "sd_vae_enc": pair.state_dict(), "sd_vae_dec": pair.state_dict()}
    torch.save(sd, folder / "night2day.pkl")
    emb = torch.randn(1, 7, WIDTH, generator=torch.Generator().manual_seed(4))
    return {"folder": folder, "base_unet": base_unet, "base_vae": base_vae, "unet": unet, "vae_b2a": vae_b2a,
            "emb": emb}


def reference(t, x):
    """The authors' forward, written here with diffusers' own encode/decode and hooks for the skip connections."""
    vae, unet = t["vae_b2a"], t["unet"]
    acts = []
    hooks = [b.register_forward_pre_hook(lambda m, args: acts.append(args[0])) for b in vae.encoder.down_blocks]
    with torch.no_grad():
        z = vae.encode(x).latent_dist.mean * vae.config.scaling_factor
        for h in hooks:
            h.remove()
        skips = [vae.decoder.skip_conv_1, vae.decoder.skip_conv_2, vae.decoder.skip_conv_3, vae.decoder.skip_conv_4]

        def add_skip(i):
            return lambda m, args: (args[0] + skips[i](acts[::-1][i]), *args[1:])

        hooks = [b.register_forward_pre_hook(add_skip(i)) for i, b in enumerate(vae.decoder.up_blocks)]
        eps = unet(z, torch.tensor([TIMESTEP]), encoder_hidden_states=t["emb"]).sample
        sched = tiny_scheduler()
        sched.set_timesteps(1)
        clean = sched.step(eps[0], TIMESTEP, z[0], generator=torch.Generator().manual_seed(0)).prev_sample[None]
        out = vae.decode(clean / vae.config.scaling_factor).sample.clamp(-1, 1)
        for h in hooks:
            h.remove()
    return out


def ours(t, config=None):
    m = CycleGANTurbo(config=config or CycleGANTurboConfig())
    m.load_file(t["folder"] / "night2day.pkl", prompt_embeds=t["emb"],
                base_parts=(copy.deepcopy(t["base_unet"]), copy.deepcopy(t["base_vae"]), tiny_scheduler()))
    return m


def test_one_step_equals_diffusers_with_peft_adapters(turbo):
    """LoRA merged into the weights (UNet alpha = r, VAE peft's default 8) and our skip-connected VAE: the same
    numbers as peft's unmerged adapters run through diffusers, to float rounding."""
    x = torch.rand(1, 3, 64, 128) * 2 - 1
    m = ours(turbo)
    got = one_step(m.parts, x, None, torch.Generator().manual_seed(0))
    want = reference(turbo, x)
    assert want.abs().max() > 0.05 and want.std() > 0.01  # not a degenerate output
    torch.testing.assert_close(got, want, rtol=0, atol=2e-5)


def test_translate_resizes_as_the_authors_and_back(turbo):
    """Default protocol: the uint8 image to 512 x 512 (PIL Lanczos), the output back to the input's size."""
    rng = np.random.default_rng(0)
    img = rng.integers(0, 255, (48, 80, 3), dtype=np.uint8)
    m = ours(turbo)
    y = m.translate(torch.from_numpy(img).permute(2, 0, 1)[None].float() / 255)
    assert y.shape == (1, 3, 48, 80)
    x = torch.from_numpy(np.asarray(Image.fromarray(img).resize((512, 512), Image.LANCZOS)).copy())
    ref = reference(turbo, x.permute(2, 0, 1)[None].float() / 127.5 - 1)[0]
    ref8 = ((ref * 0.5 + 0.5).clamp(0, 1) * 255).round().byte().permute(1, 2, 0).numpy()
    back = np.asarray(Image.fromarray(ref8).resize((80, 48), Image.LANCZOS)).astype(np.float32) / 255
    assert np.abs(y[0].permute(1, 2, 0).numpy() - back).max() <= 1.5 / 255
    native = ours(turbo, CycleGANTurboConfig(image_prep="native"))
    assert native._size(48, 80) == (64, 64) and native._size(720, 1280) == (704, 1280)
    assert torch.equal(m.translate(y), m.translate(y))  # deterministic (latent mean, seeded step)


def _base_folder(turbo, tmp_path):
    """A local SD-Turbo-like folder: our tiny models, a CLIP text model and a hand-made CLIP tokenizer."""
    base = tmp_path / "sd-turbo"
    turbo["base_unet"].save_pretrained(base / "unet")
    turbo["base_vae"].save_pretrained(base / "vae")
    tiny_scheduler().save_pretrained(base / "scheduler")
    torch.manual_seed(5)
    text = transformers.CLIPTextModel(transformers.CLIPTextConfig(
        vocab_size=40, hidden_size=WIDTH, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2,
        max_position_embeddings=12))
    text.save_pretrained(base / "text_encoder")
    words = ["driving</w>", "in</w>", "the</w>", "day</w>"]
    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1, **{w: i + 2 for i, w in enumerate(words)}}
    vocab.update({c: len(vocab) + i for i, c in enumerate("abcdefghijklmnopqrstuvwxyz")})
    (tmp_path / "vocab.json").write_text(json.dumps(vocab))
    (tmp_path / "merges.txt").write_text("#version: 0.2\n")
    tok = transformers.CLIPTokenizer(str(tmp_path / "vocab.json"), str(tmp_path / "merges.txt"), model_max_length=12)
    tok.save_pretrained(base / "tokenizer")
    ids = tok("driving in the day", max_length=12, padding="max_length", truncation=True, return_tensors="pt").input_ids
    with torch.no_grad():
        emb = text(ids)[0]
    return base, emb


def test_bench_translate_runs_the_published_checkpoint_on_a_local_base(turbo, tmp_path):
    base, emb = _base_folder(turbo, tmp_path)
    src = tmp_path / "night"
    src.mkdir()
    img = np.random.default_rng(1).integers(0, 255, (40, 72, 3), dtype=np.uint8)
    Image.fromarray(img).save(src / "a.png")
    res = CliRunner().invoke(main, ["translate", "--method", "cyclegan-turbo", "--checkpoint",
                                    str(turbo["folder"] / "night2day.pkl"), "--input", str(src), "--output",
                                    str(tmp_path / "day"), "--set", f"cyclegan-turbo.base={base}", "--device", "cpu"])
    assert res.exit_code == 0, res.output
    out = np.asarray(Image.open(tmp_path / "day" / "a.png"))
    direct = ours({**turbo, "emb": emb}).translate(torch.from_numpy(img).permute(2, 0, 1)[None].float() / 255)
    expect = (direct[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    assert out.shape == (40, 72, 3) and np.abs(out.astype(int) - expect.astype(int)).max() <= 1
    # Without a base model: one line naming the files and where they go (its licence forbids shipping it).
    res = CliRunner().invoke(main, ["translate", "--method", "cyclegan-turbo", "--checkpoint",
                                    str(turbo["folder"] / "night2day.pkl"), "--input", str(src), "--output",
                                    str(tmp_path / "day2"), "--set", f"cyclegan-turbo.base={tmp_path / 'none'}"])
    assert res.exit_code == 2 and "SD-Turbo base model is not on this machine" in res.output
    assert "huggingface-cli download stabilityai/sd-turbo" in res.output and "unet/diffusion_pytorch_model" in res.output
    # A custom checkpoint must say its prompt and direction; a file that is not one is refused as such.
    (tmp_path / "mine.pkl").write_bytes((turbo["folder"] / "night2day.pkl").read_bytes())
    res = CliRunner().invoke(main, ["translate", "--method", "cyclegan-turbo", "--checkpoint", str(tmp_path / "mine.pkl"),
                                    "--input", str(src), "--output", str(tmp_path / "d3"),
                                    "--set", f"cyclegan-turbo.base={base}"])
    assert res.exit_code == 2 and "--set cyclegan-turbo.prompt=" in res.output
    torch.save({"weights": torch.zeros(2)}, tmp_path / "other.pkl")
    res = CliRunner().invoke(main, ["translate", "--method", "cyclegan-turbo", "--checkpoint", str(tmp_path / "other.pkl"),
                                    "--input", str(src), "--output", str(tmp_path / "d4")])
    assert res.exit_code == 2 and "not a CycleGAN-Turbo checkpoint" in res.output


def test_a_run_lists_cyclegan_turbo_as_skipped_with_the_fix_when_its_files_are_missing(tmp_path):
    res = CliRunner().invoke(main, ["run", "--preset", "smoke", "--methods", "identity,cyclegan-turbo", "--suite",
                                    "synthetic-fog", "--out", str(tmp_path), "--device", "cpu"])
    assert res.exit_code == 0, res.output
    table = (tmp_path / "synthetic-fog" / "smoke" / "tables" / "summary.md").read_text()
    row = next(ln for ln in table.splitlines() if ln.startswith("| cyclegan-turbo |"))
    assert "skipped" in row and "[" not in row
    assert "not run: cyclegan-turbo: weights file night2day.pkl" in table and "img2img-turbo/models/night2day.pkl" in table


def test_the_published_files_are_listed_by_bench_weights():
    res = CliRunner().invoke(main, ["weights", "list"])
    assert res.exit_code == 0
    for text in ("https://www.cs.cmu.edu/~img2img-turbo/models/night2day.pkl",
                 "https://www.cs.cmu.edu/~img2img-turbo/models/rainy2clear.pkl",
                 "sd-turbo/unet/diffusion_pytorch_model.safetensors", "forbids redistribution"):
        assert text in res.output
