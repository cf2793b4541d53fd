"""Pretrained semantic segmenters for real suites, behind one seam.

A segmenter turns image files into Cityscapes train-id label maps (0..18) at each image's own
size. Specs name one on the command line (``bench run --segmenter SPEC``):

- ``torchvision:ARCH:CHECKPOINT``: a torchvision segmentation model (``deeplabv3_resnet50``,
  ``deeplabv3_mobilenet_v3_large``, ``fcn_resnet50``, ``lraspp_mobilenet_v3_large``, ...) built
  with 19 classes and loaded from a Cityscapes-trained state dict (.safetensors or .pth);
- ``segformer:DIR``: a Hugging Face SegFormer folder (``config.json`` + weights), e.g. a local copy of
  ``nvidia/segformer-b0-finetuned-cityscapes-1024-1024``; needs ``pip install augan-bench[hf]``;
- ``mmseg:CONFIG:CHECKPOINT``: an mmsegmentation config and model-zoo checkpoint, e.g. DeepLabV3
  R-18-D8 Cityscapes (the published BDD100K protocol); needs the ``mmseg`` extra and mmcv (README);
- ``default``: that DeepLabV3 R-18-D8 with its pinned model-zoo file (``bench weights list``), so two labs
  that both say ``default`` score with the same bytes.

Every segmenter's id names its weights file and the first 12 hex digits of its sha256: numbers from two
machines are comparable exactly when their ids agree.

Inputs are normalised with ImageNet statistics (what all three model families were trained with)
and run at ``size`` (H, W) when given, else at the image's own size; logits are upsampled
bilinearly to the image size before the argmax. mmseg models run their config's own test pipeline.
Checkpoints are never unpickled: safetensors, or ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from bench.data.io import read_rgb
from bench.metrics.segmentation import N_CLASSES
from bench.downstream.specs import ModelSpec, build_from_spec, pinned_weights
from bench.errors import BenchError
from bench.registry import Registry
from bench.weights import MMSEG_DEEPLABV3_R18, file_id

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class SegmenterError(BenchError, ValueError):
    """A segmenter spec, file or package problem, said in words the user can act on."""


class Segmenter(Protocol):
    id: str  # names the model and its weights in metrics.csv

    def predict(self, paths: Sequence[Path]) -> list[np.ndarray]:
        """Cityscapes train-id label map (uint8, H x W of each image) per image."""
        ...


def load_state_dict(path: Path) -> dict[str, torch.Tensor]:
    from bench.checkpoints import CheckpointError, load_tensor_dict

    try:
        return load_tensor_dict(path)
    except CheckpointError as exc:
        raise SegmenterError(str(exc)) from None


def _normalised(paths: Sequence[Path], device: str) -> list[torch.Tensor]:
    mean = torch.tensor(IMAGENET_MEAN, device=device).view(3, 1, 1)
    std = torch.tensor(IMAGENET_STD, device=device).view(3, 1, 1)
    return [(torch.from_numpy(read_rgb(p)).permute(2, 0, 1).to(device).float() / 255.0 - mean) / std for p in paths]


def _labels_from_logits(logits_fn, paths: Sequence[Path], device: str, size: tuple[int, int] | None) -> list[np.ndarray]:
    """Run ``logits_fn`` (N x C x h x w from a normalised batch) one image size at a time."""
    out = []
    with torch.no_grad():
        for x in _normalised(paths, device):
            h, w = x.shape[-2:]
            inp = x[None] if size is None else F.interpolate(x[None], size=size, mode="bilinear", align_corners=False)
            logits = logits_fn(inp)
            if logits.shape[1] != N_CLASSES:
                raise SegmenterError(f"the segmenter predicts {logits.shape[1]} classes; Cityscapes train ids need "
                                     f"{N_CLASSES}")
            logits = F.interpolate(logits, size=(h, w), mode="bilinear", align_corners=False)
            out.append(logits.argmax(1)[0].to(torch.uint8).cpu().numpy())
    return out


class TorchvisionSegmenter:
    def __init__(self, arch: str, checkpoint: Path, device: str = "cpu", size: tuple[int, int] | None = None) -> None:
        import torchvision.models.segmentation as tvseg

        from bench.downstream.torchvision_builders import find_builder

        try:
            builder = find_builder(tvseg, arch, "segmentation")
        except LookupError as exc:
            raise SegmenterError(str(exc.args[0])) from None
        state = load_state_dict(checkpoint)
        aux = any(k.startswith("aux_classifier.") for k in state)
        kwargs = {"aux_loss": aux} if "lraspp" not in arch else {}
        model = builder(weights=None, weights_backbone=None, num_classes=N_CLASSES, **kwargs)
        try:
            model.load_state_dict(state)
        except RuntimeError as exc:
            raise SegmenterError(f"{checkpoint} does not fit torchvision {arch} with {N_CLASSES} classes: "
                                 f"{str(exc).splitlines()[0]} ...") from None
        self.model = model.to(device).eval()
        self.device, self.size = device, size
        self.id = f"torchvision-{arch}:{file_id(checkpoint)}"

    def predict(self, paths: Sequence[Path]) -> list[np.ndarray]:
        return _labels_from_logits(lambda x: self.model(x)["out"], paths, self.device, self.size)


class SegformerSegmenter:
    def __init__(self, folder: Path, device: str = "cpu", size: tuple[int, int] | None = None) -> None:
        try:
            from transformers import SegformerForSemanticSegmentation
        except ImportError:
            raise SegmenterError("segformer segmenters need Hugging Face transformers: pip install 'augan-bench[hf]'") from None
        folder = Path(folder)
        if not (folder / "config.json").is_file():
            raise SegmenterError(f"{folder} is not a Hugging Face model folder (no config.json). Download one with "
                                 "`huggingface-cli download nvidia/segformer-b0-finetuned-cityscapes-1024-1024 "
                                 f"--local-dir {folder}`")
        model = SegformerForSemanticSegmentation.from_pretrained(str(folder), local_files_only=True, use_safetensors=None)
        if model.config.num_labels != N_CLASSES:
            raise SegmenterError(f"{folder} predicts {model.config.num_labels} classes; a Cityscapes model has {N_CLASSES}")
        self.model = model.to(device).eval()
        self.device, self.size = device, size
        weights = next((folder / n for n in ("model.safetensors", "pytorch_model.bin") if (folder / n).is_file()), None)
        self.id = f"segformer:{folder.name}" + (f":{file_id(weights)}" if weights is not None else "")

    def predict(self, paths: Sequence[Path]) -> list[np.ndarray]:
        return _labels_from_logits(lambda x: self.model(pixel_values=x).logits, paths, self.device, self.size)


class MmsegSegmenter:
    def __init__(self, config: Path, checkpoint: Path, device: str = "cpu") -> None:
        try:
            from mmseg.apis import init_model
        except ImportError as exc:
            raise SegmenterError(
                f"mmseg segmenters need mmsegmentation and mmcv with its compiled ops ({exc}); see the README's "
                "'mmsegmentation' section") from None
        if not Path(config).is_file():
            raise SegmenterError(f"mmseg config {config} does not exist")
        model = init_model(str(config), checkpoint=None, device=device)
        state = load_state_dict(checkpoint)
        missing, unexpected = model.load_state_dict(state, strict=False)
        if missing or unexpected:
            raise SegmenterError(f"{checkpoint} does not fit {Path(config).name}: missing {missing[:3]}, "
                                 f"unexpected {unexpected[:3]}")
        if model.decode_head.num_classes != N_CLASSES:
            raise SegmenterError(f"{config} predicts {model.decode_head.num_classes} classes; Cityscapes has {N_CLASSES}")
        self.model = model
        self.id = f"mmseg-{Path(config).stem}:{file_id(checkpoint)}"

    def predict(self, paths: Sequence[Path]) -> list[np.ndarray]:
        from mmseg.apis import inference_model

        # mmseg's pipelines expect BGR arrays, as mmcv.imread returns them.
        results = inference_model(self.model, [np.ascontiguousarray(read_rgb(p)[..., ::-1]) for p in paths])
        results = results if isinstance(results, list) else [results]
        return [r.pred_sem_seg.data[0].to(torch.uint8).cpu().numpy() for r in results]


DEFAULT_MMSEG_CONFIG = "deeplabv3/deeplabv3_r18-d8_4xb2-80k_cityscapes-512x1024.py"  # in mmseg's installed configs


def default_segmenter(device: str = "cpu", size: tuple[int, int] | None = None) -> MmsegSegmenter:
    """The published BDD100K protocol's segmenter: mmseg's DeepLabV3 R-18-D8 config with the pinned zoo file."""
    try:
        import mmseg
    except ImportError as exc:
        raise SegmenterError(
            f"--segmenter default is mmsegmentation's DeepLabV3 R-18-D8 and needs mmsegmentation and mmcv ({exc}): "
            "pip install -e '.[mmseg]' plus mmcv (README, 'mmsegmentation')") from None
    config = Path(mmseg.__file__).parent / ".mim" / "configs" / DEFAULT_MMSEG_CONFIG
    if not config.is_file():
        raise SegmenterError(f"--segmenter default: this mmsegmentation ({mmseg.__version__}) has no {config}; install "
                             "mmsegmentation 1.2 (pip install -e '.[mmseg]'), or name the config with mmseg:CONFIG:CKPT")
    path = pinned_weights(MMSEG_DEEPLABV3_R18, "--segmenter", "mmseg:CONFIG:CKPT", SegmenterError)
    return MmsegSegmenter(config, path, device)


SEGMENTERS: Registry[ModelSpec] = Registry("segmenter")
SEGMENTERS.add("torchvision", ModelSpec("torchvision:ARCH:CHECKPOINT", TorchvisionSegmenter, path_args=(1,)), __name__)
SEGMENTERS.add("segformer", ModelSpec("segformer:DIR", SegformerSegmenter, path_args=(0,)), __name__)
SEGMENTERS.add("mmseg", ModelSpec("mmseg:CONFIG:CHECKPOINT", lambda config, ckpt, device, size: MmsegSegmenter(
    config, ckpt, device), path_args=(0, 1)), __name__)  # mmseg runs its config's own test resolution
SEGMENTERS.add("default", ModelSpec("default", default_segmenter), __name__)
SPEC_HELP = " or ".join(SEGMENTERS[k].usage for k in SEGMENTERS)


def build_segmenter(spec: str, device: str = "cpu", size: tuple[int, int] | None = None) -> Segmenter:
    """A segmenter from its command-line spec (module docstring)."""
    return build_from_spec(SEGMENTERS, spec, SegmenterError, device=device, size=size)
