"""CycleGAN-Turbo (Parmar et al., "One-Step Image Translation with Text-to-Image Models", arXiv 2403.12036):
inference from the authors' published checkpoints on the SD-Turbo base model.

What a translation is, following the authors' ``CycleGAN_Turbo.forward`` (GaParmar/img2img-turbo, MIT):
the image in [-1, 1] goes through the SD-Turbo VAE encoder (LoRA-adapted, one VAE per direction), the latent
(times the VAE's scaling factor) through the SD-Turbo UNet (LoRA-adapted) once at timestep 999 with the text
prompt's CLIP embedding, one DDPM scheduler step gives the clean latent, and the VAE decoder (LoRA-adapted)
turns it back into an image, helped by skip connections from the encoder's down blocks (four 1x1 convolutions
added before each up block). Pixels are clamped to [-1, 1].

What we do differently, and why:
- The LoRA adapters are merged into the base weights when the checkpoint is loaded (W + alpha/r * B A, the same
  product peft computes; UNet adapters have alpha = r, VAE adapters peft's default alpha 8), so inference needs
  neither peft nor its wrapper modules; a test compares with peft's unmerged forward.
- The VAE latent is its mean by default (deterministic), where the authors' code samples it (``latent="sample"``
  draws it from a seeded generator instead); the scheduler step's negligible variance term is seeded too.
- Nothing is downloaded behind the user's back: the checkpoint comes from our weights lookup (``bench weights``),
  the base model from a local folder or the Hugging Face cache, offline; the checkpoint file is read with
  ``torch.load(weights_only=True)`` (dicts, lists, numbers, strings and tensors; no code objects).
- Any device and dtype: fp32 on the CPU, bf16 (or fp16) on CUDA (the authors hard-code ``.cuda()``).
- Size: the authors' protocol resizes every frame to 512 x 512 (PIL Lanczos) and the output back to the input's
  size (PIL Lanczos), ``image_prep="resize_512x512"`` (the default, recorded in the manifest); ``"native"``
  keeps the aspect ratio, each side rounded to a multiple of 64 (the UNet's three halvings of the 8x latent).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import nn

from bench.data.io import to_tensor, to_uint8
from bench.errors import BenchError
from bench.translator import MethodUnavailable, TrainBudget, UnpairedData
from bench.weights import WeightsFile, WeightsMissing, file_sha256, offline, resolve

BASE_REPO = "stabilityai/sd-turbo"
BASE_FOLDER = "sd-turbo"  # under $AUGAN_BENCH_WEIGHTS or the torch hub checkpoints folder
BASE_FILES = ("model_index.json", "scheduler/scheduler_config.json", "unet/config.json",
              "unet/diffusion_pytorch_model.safetensors", "vae/config.json", "vae/diffusion_pytorch_model.safetensors",
              "text_encoder/config.json", "text_encoder/model.safetensors", "tokenizer/vocab.json",
              "tokenizer/merges.txt", "tokenizer/tokenizer_config.json", "tokenizer/special_tokens_map.json")
TIMESTEP = 999  # the authors' one step
CHECKPOINT_KEYS = ("rank_unet", "l_target_modules_encoder", "l_target_modules_decoder", "l_modules_others",
                   "sd_encoder", "sd_decoder", "sd_other", "rank_vae", "vae_lora_target_modules", "sd_vae_enc",
                   "sd_vae_dec")
VAE_LORA_ALPHA = 8  # peft's LoraConfig default: the authors' VAE adapter sets no alpha
N_SKIPS = 4


@dataclass(frozen=True)
class Published:
    file: WeightsFile
    prompt: str
    direction: str  # which of the checkpoint's two VAEs: "a2b" (vae) or "b2a" (vae_b2a)


def _published(name: str, stem: str, prompt: str, direction: str) -> Published:
    return Published(WeightsFile(
        key=f"cyclegan-turbo-{stem}", filename=f"{stem}.pkl",
        url=f"https://www.cs.cmu.edu/~img2img-turbo/models/{stem}.pkl",
        sha256_prefix="",  # the authors publish no checksum: the file's sha256 is recorded with every number
        used_by=f"cyclegan-turbo model={name} (LoRA adapters, VAE skip convolutions; BDD100K-trained)", optional=True),
        prompt, direction)


# The authors' four driving-scene models (img2img-turbo's CycleGAN_Turbo: captions and directions as there).
PUBLISHED = {
    "night_to_day": _published("night_to_day", "night2day", "driving in the day", "b2a"),
    "rainy_to_clear": _published("rainy_to_clear", "rainy2clear", "driving in the day", "b2a"),
    "day_to_night": _published("day_to_night", "day2night", "driving in the night", "a2b"),
    "clear_to_rainy": _published("clear_to_rainy", "clear2rainy", "driving in heavy rain", "a2b"),
}
BASE_WEIGHTS = tuple(WeightsFile(
    key=f"sd-turbo-{part.split('/')[0].replace('_', '-')}", filename=f"{BASE_FOLDER}/{part}",
    url=f"https://huggingface.co/{BASE_REPO}/resolve/main/{part}", sha256_prefix="",
    used_by=f"cyclegan-turbo (the SD-Turbo base model, {part.split('/')[0]}; its licence forbids redistribution: "
            f"`huggingface-cli download {BASE_REPO} --local-dir <weights dir>/{BASE_FOLDER}`)", optional=True)
    for part in BASE_FILES if part.endswith(".safetensors"))


@dataclass(frozen=True)
class CycleGANTurboConfig:
    model: str = "night_to_day"  # a published checkpoint (PUBLISHED); bench translate --checkpoint FILE overrides
    base: str = BASE_REPO  # a local diffusers folder, or a Hugging Face id found in its cache (offline)
    prompt: str = ""  # "" : the published model's caption (a custom checkpoint needs its own)
    direction: str = ""  # "" : the published model's; "a2b" or "b2a" for a custom checkpoint
    image_prep: str = "resize_512x512"  # the authors' protocol; "native": aspect kept, sides to multiples of 64
    latent: str = "mean"  # "mean" (deterministic) or "sample" (seeded, as the authors' code samples)
    seed: int = 0
    precision: str = "auto"  # auto: bf16 on CUDA, fp32 on the CPU; or fp32, bf16, fp16

    def __post_init__(self) -> None:
        choices = {"image_prep": ("resize_512x512", "native"), "latent": ("mean", "sample"),
                   "precision": ("auto", "fp32", "bf16", "fp16"), "direction": ("", "a2b", "b2a")}
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name} must be one of {', '.join(map(repr, allowed))}, got {getattr(self, name)!r}")


class TurboCheckpointError(BenchError, ValueError):
    pass


def read_checkpoint(path: Path) -> dict[str, Any]:
    """The authors' pickled dict (ranks, target-module lists, adapter state dicts), read without unpickling code."""
    try:
        sd = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any refusal or damage is reported the same way
        raise TurboCheckpointError(f"{path}: cannot be read as a CycleGAN-Turbo checkpoint with weights_only=True "
                                   f"({str(exc).splitlines()[0]})") from None
    missing = [k for k in CHECKPOINT_KEYS if not isinstance(sd, dict) or k not in sd]
    if missing:
        raise TurboCheckpointError(f"{path}: not a CycleGAN-Turbo checkpoint (no {', '.join(missing[:4])}); give one "
                                   "of the authors' .pkl files (bench weights list) or one their training script saved")
    return sd


def merged_lora(base: dict[str, torch.Tensor], adapters: dict[str, torch.Tensor], scaling: float,
                suffix: str = "") -> dict[str, torch.Tensor]:
    """``base`` with every adapter pair ``M.lora_A{suffix}.weight`` / ``M.lora_B{suffix}.weight`` folded into
    ``M.weight``: W + scaling * B A (for a convolution, A carries the kernel and B is 1 x 1)."""
    out = dict(base)
    for key, a in adapters.items():
        if f".lora_A{suffix}.weight" not in key:
            continue
        module = key.split(f".lora_A{suffix}.weight")[0]
        b = adapters[f"{module}.lora_B{suffix}.weight"]
        w = out[f"{module}.weight"]
        delta = (b.flatten(1).double() @ a.flatten(1).double()).reshape(w.shape)
        out[f"{module}.weight"] = (w.double() + scaling * delta).to(w.dtype)
    return out


def vae_state(sd: dict[str, Any], direction: str) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """The chosen direction's VAE weights (adapters merged) and its four skip convolutions, from ``sd_vae_enc`` and
    ``sd_vae_dec``. Both hold both VAEs whole (the authors' wrappers share them); loaded in the authors' order, the
    decoder's copy wins."""
    prefix = "vae." if direction == "a2b" else "vae_b2a."
    whole = {**sd["sd_vae_enc"], **sd["sd_vae_dec"]}
    mine = {k[len(prefix):]: v for k, v in whole.items() if k.startswith(prefix)}
    plain = {k.replace(".base_layer.", "."): v for k, v in mine.items() if ".lora_" not in k}
    adapters = {k.replace(".vae_skip.", "."): v for k, v in mine.items() if ".lora_" in k}
    state = merged_lora(plain, adapters, VAE_LORA_ALPHA / int(sd["rank_vae"]))
    skips = {k: state.pop(k) for k in [k for k in state if k.startswith("decoder.skip_conv_")]}
    return state, skips


def unet_state(base: dict[str, torch.Tensor], sd: dict[str, Any]) -> dict[str, torch.Tensor]:
    """The base UNet with the three adapter groups (encoder, decoder, others; alpha = rank) merged."""
    state = base
    for group in ("sd_encoder", "sd_decoder", "sd_other"):
        state = merged_lora(state, sd[group], 1.0)
    return state


class SkipVAE(nn.Module):
    """An SD VAE with CycleGAN-Turbo's encoder-to-decoder skip connections (our forward, the authors' wiring)."""

    def __init__(self, vae: nn.Module, skips: dict[str, torch.Tensor]) -> None:
        super().__init__()
        self.vae = vae
        self.skips = nn.ModuleList()
        for i in range(1, N_SKIPS + 1):
            w = skips[f"decoder.skip_conv_{i}.weight"]
            conv = nn.Conv2d(w.shape[1], w.shape[0], 1, bias=False)
            conv.weight.data.copy_(w)
            self.skips.append(conv)

    def encode(self, x: torch.Tensor, generator: torch.Generator | None) -> tuple[torch.Tensor, list[torch.Tensor]]:
        enc, acts = self.vae.encoder, []
        h = enc.conv_in(x)
        for block in enc.down_blocks:
            acts.append(h)
            h = block(h)
        h = enc.conv_out(enc.conv_act(enc.conv_norm_out(enc.mid_block(h))))
        if self.vae.quant_conv is not None:
            h = self.vae.quant_conv(h)
        mean, logvar = h.chunk(2, dim=1)
        if generator is not None:  # the authors' latent_dist.sample()
            std = torch.exp(0.5 * logvar.clamp(-30.0, 20.0))
            mean = mean + std * torch.randn(mean.shape, generator=generator, device="cpu").to(mean.device, mean.dtype)
        return mean * self.vae.config.scaling_factor, acts

    def decode(self, z: torch.Tensor, acts: list[torch.Tensor]) -> torch.Tensor:
        dec = self.vae.decoder
        z = z / self.vae.config.scaling_factor
        if self.vae.post_quant_conv is not None:
            z = self.vae.post_quant_conv(z)
        h = dec.mid_block(dec.conv_in(z), None)
        for skip, act, block in zip(self.skips, acts[::-1], dec.up_blocks):
            h = block(h + skip(act), None)
        return dec.conv_out(dec.conv_act(dec.conv_norm_out(h))).clamp(-1, 1)


@dataclass
class TurboParts:
    """What one translation needs: the adapted UNet and VAE, the scheduler and the prompt's embedding."""

    unet: nn.Module
    vae: SkipVAE
    scheduler: Any
    prompt_embeds: torch.Tensor  # 1 x tokens x width


def assemble(unet: nn.Module, vae: nn.Module, scheduler: Any, prompt_embeds: torch.Tensor, sd: dict[str, Any],
             direction: str) -> TurboParts:
    """Base components (diffusers models with the SD-Turbo weights) + an authors' checkpoint -> ready parts."""
    unet.load_state_dict(unet_state(dict(unet.state_dict()), sd))
    state, skips = vae_state(sd, direction)
    missing, unexpected = vae.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise TurboCheckpointError(f"the checkpoint's VAE does not fit the base model's: missing {missing[:3]}, "
                                   f"unexpected {unexpected[:3]}")
    scheduler.set_timesteps(1, device="cpu")
    return TurboParts(unet.eval(), SkipVAE(vae, skips).eval(), scheduler, prompt_embeds)


@torch.no_grad()
def one_step(parts: TurboParts, x: torch.Tensor, latent_generator: torch.Generator | None = None,
             step_generator: torch.Generator | None = None) -> torch.Tensor:
    """N x 3 x h x w in [-1, 1] (h, w multiples of 64) -> the translation in [-1, 1]."""
    z, acts = parts.vae.encode(x, latent_generator)
    t = torch.full((x.shape[0],), TIMESTEP, dtype=torch.long, device=x.device)
    emb = parts.prompt_embeds.to(x.device, z.dtype).expand(x.shape[0], -1, -1)
    eps = parts.unet(z, t, encoder_hidden_states=emb).sample
    clean = torch.stack([parts.scheduler.step(eps[i], TIMESTEP, z[i], generator=step_generator).prev_sample
                         for i in range(x.shape[0])])
    return parts.vae.decode(clean.to(z.dtype), acts)


def base_location(base: str) -> str:
    """A local diffusers folder for ``base``: the folder itself, a copy in the weights folders, or (offline) the id."""
    if Path(base).expanduser().is_dir():
        return str(Path(base).expanduser())
    if base == BASE_REPO:
        from bench.weights import candidate_paths

        probe = WeightsFile(key="sd-turbo", filename=f"{BASE_FOLDER}/model_index.json", url="", sha256_prefix="",
                            used_by="")
        for path in candidate_paths(probe):
            if path.is_file():
                return str(path.parent)
    return base


def load_base(config: CycleGANTurboConfig, device: str):
    """The SD-Turbo components from a local copy (never downloaded here: its licence forbids mirroring it)."""
    try:
        from diffusers import AutoencoderKL, DDPMScheduler, UNet2DConditionModel
        from transformers import AutoTokenizer, CLIPTextModel
    except ImportError as exc:
        raise MethodUnavailable(f"cyclegan-turbo needs diffusers and transformers ({exc}): pip install -e "
                                "'.[diffusion]'") from None
    where = base_location(config.base)
    try:
        kw = {"local_files_only": True}
        unet = UNet2DConditionModel.from_pretrained(where, subfolder="unet", **kw)
        vae = AutoencoderKL.from_pretrained(where, subfolder="vae", **kw)
        scheduler = DDPMScheduler.from_pretrained(where, subfolder="scheduler", **kw)
        tokenizer = AutoTokenizer.from_pretrained(where, subfolder="tokenizer", **kw)
        text_encoder = CLIPTextModel.from_pretrained(where, subfolder="text_encoder", **kw)
    except (OSError, ValueError) as exc:
        from bench.weights import candidate_paths

        folder = candidate_paths(BASE_WEIGHTS[0])[0].parent.parent
        raise MethodUnavailable(
            f"the SD-Turbo base model is not on this machine ({config.base}: {str(exc).splitlines()[0][:160]}). Its "
            f"licence forbids redistribution, so download it yourself: huggingface-cli download {BASE_REPO} "
            f"--local-dir {folder} (files: {', '.join(BASE_FILES)}), or set --set cyclegan-turbo.base=DIR") from None
    return unet, vae, scheduler, tokenizer, text_encoder


def prompt_embedding(tokenizer, text_encoder, prompt: str) -> torch.Tensor:
    tokens = tokenizer(prompt, max_length=tokenizer.model_max_length, padding="max_length", truncation=True,
                       return_tensors="pt").input_ids
    with torch.no_grad():
        return text_encoder(tokens)[0].float()


def _lanczos(img: np.ndarray, h: int, w: int) -> np.ndarray:
    return img if img.shape[:2] == (h, w) else np.asarray(Image.fromarray(img).resize((w, h), Image.LANCZOS))


class CycleGANTurbo:
    """The ``cyclegan-turbo`` method: a pretrained translator (no training here), from the authors' checkpoint."""

    name = "cyclegan-turbo"

    def __init__(self, preset: str = "quick", device: str = "cpu", config: CycleGANTurboConfig | None = None) -> None:
        self.config = config or CycleGANTurboConfig()
        self.device = torch.device(device)
        self.parts: TurboParts | None = None
        self.checkpoint_sha256 = ""

    # ---------------------------------------------------------------- loading
    def _prompt_and_direction(self, path: Path) -> tuple[str, str]:
        known = next((p for p in PUBLISHED.values() if p.file.filename == path.name), None)
        prompt = self.config.prompt or (known.prompt if known else "")
        direction = self.config.direction or (known.direction if known else "")
        if not prompt or not direction:
            raise TurboCheckpointError(f"{path} is not one of the published models, so its prompt and direction are "
                                       "unknown: --set cyclegan-turbo.prompt='driving in the day' --set "
                                       "cyclegan-turbo.direction=b2a (as used when it was trained)")
        return prompt, direction

    def load_file(self, path: Path, prompt_embeds: torch.Tensor | None = None, base_parts: tuple | None = None) -> None:
        """Load an authors' checkpoint onto the base model (``base_parts``: ready components, for tests)."""
        path = Path(path)
        sd = read_checkpoint(path)
        prompt, direction = self._prompt_and_direction(path)
        if base_parts is None:
            unet, vae, scheduler, tokenizer, text_encoder = load_base(self.config, str(self.device))
            prompt_embeds = prompt_embedding(tokenizer, text_encoder, prompt)
            del tokenizer, text_encoder
        else:
            unet, vae, scheduler = base_parts
        assert prompt_embeds is not None
        parts = assemble(unet, vae, scheduler, prompt_embeds, sd, direction)
        dtype = self._dtype()
        parts.unet.to(self.device, dtype)
        parts.vae.to(self.device, dtype)
        self.parts = parts
        self.checkpoint_sha256 = file_sha256(path)

    def _dtype(self) -> torch.dtype:
        p = self.config.precision
        if self.device.type != "cuda" or p == "fp32":
            return torch.float32
        return torch.float16 if p == "fp16" else torch.bfloat16

    def fit(self, data: UnpairedData, budget: TrainBudget, out_dir: Path) -> None:
        """Nothing to train: find the published checkpoint (downloaded unless offline) and the local base model."""
        published = PUBLISHED.get(self.config.model)
        if published is None:
            raise TurboCheckpointError(f"unknown cyclegan-turbo model {self.config.model!r}; choose one of "
                                       f"{', '.join(PUBLISHED)} (or bench translate --checkpoint FILE)")
        try:
            path = resolve(published.file, download=not offline()).path
        except WeightsMissing as exc:
            raise MethodUnavailable(exc.one_line) from None
        self.load_file(path)

    # ---------------------------------------------------------------- translating
    def _size(self, h: int, w: int) -> tuple[int, int]:
        if self.config.image_prep == "resize_512x512":
            return 512, 512
        return max(64, round(h / 64) * 64), max(64, round(w / 64) * 64)

    def translate(self, images: torch.Tensor) -> torch.Tensor:
        if self.parts is None:
            raise TurboCheckpointError("cyclegan-turbo has no checkpoint loaded: run it through bench run (the "
                                       "published model) or bench translate --checkpoint FILE")
        out = []
        for k, img in enumerate(images):
            arr = to_uint8(img)
            h, w = arr.shape[:2]
            th, tw = self._size(h, w)
            x = to_tensor(_lanczos(arr, th, tw)) * 2 - 1
            x = x[None].to(self.device, self._dtype())
            latent_gen = torch.Generator().manual_seed(self.config.seed + k) if self.config.latent == "sample" else None
            step_gen = torch.Generator(device=self.device).manual_seed(self.config.seed + k)
            y = one_step(self.parts, x, latent_gen, step_gen)[0].float()
            out.append(to_tensor(_lanczos(to_uint8(y * 0.5 + 0.5), h, w)))
        return torch.stack(out).to(images.device)

    # ---------------------------------------------------------------- cells
    def state_dict(self) -> dict[str, torch.Tensor]:
        """What a run's cell keeps: which checkpoint (by hash) and settings, not the 3 GB of weights."""
        from bench.learned import META_CONFIG, META_METHOD, encode_text

        return {META_METHOD: encode_text(self.name),
                META_CONFIG: encode_text(json.dumps({**asdict(self.config), "checkpoint_sha256": self.checkpoint_sha256}))}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        from bench.learned import META_CONFIG, META_METHOD, CheckpointMismatch, decode_text

        maker = decode_text(state[META_METHOD]) if META_METHOD in state else None
        if maker != self.name:
            raise CheckpointMismatch(f"not a cyclegan-turbo cell record ({'written by ' + repr(maker) if maker else 'no metadata'}); "
                                     "give bench translate the authors' .pkl file")
        saved = json.loads(decode_text(state[META_CONFIG]))
        sha = saved.pop("checkpoint_sha256", "")
        self.config = replace(CycleGANTurboConfig(), **saved)
        self.fit(UnpairedData((), (), 0, 0), TrainBudget(), Path("."))
        if sha and sha != self.checkpoint_sha256:
            raise CheckpointMismatch(f"the cell was scored with checkpoint sha256 {sha[:12]}, the file found now is "
                                     f"{self.checkpoint_sha256[:12]}: run with --force to score it again")
