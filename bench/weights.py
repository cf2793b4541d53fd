"""Where pretrained weights come from, and how they are checked.

Lookup order for a file: ``$AUGAN_BENCH_WEIGHTS/<file>``, then the torch hub cache
(``$TORCH_HOME/hub/checkpoints/<file>``, default ``~/.cache/torch/hub/checkpoints``), then a
download into the hub cache (skipped when ``AUGAN_BENCH_OFFLINE=1``). Every file is hashed;
a file whose SHA-256 does not start with the published prefix is still usable but every
number computed with it is labelled as coming from substitute weights.
Files are always loaded with ``torch.load(..., weights_only=True)``: nothing is unpickled.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import torch
from bench.errors import BenchError
from bench.registry import Registry


@dataclass(frozen=True)
class WeightsFile:
    key: str
    filename: str
    url: str
    sha256_prefix: str  # "" when the publisher gives no checksum: then size_bytes identifies the file
    used_by: str
    size_bytes: int | None = None
    optional: bool = False  # metrics that need it are skipped without failing `bench weights check`

    @property
    def pinned(self) -> bool:
        """Whether the publisher gives something to check the file against (a hash, or at least its size)."""
        return bool(self.sha256_prefix) or self.size_bytes is not None

    @property
    def expected(self) -> str:
        """The published identity of the file, as users can check it."""
        if self.sha256_prefix:
            return f"sha256 {self.sha256_prefix}..."
        if self.size_bytes is not None:
            return f"{self.size_bytes:,} bytes (no published hash)"
        return "no published hash or size: its sha256 is recorded with every number"


INCEPTION_V3 = WeightsFile(
    key="inception-v3-2015-12-05",
    filename="weights-inception-2015-12-05-6726825d.pth",
    url="https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/weights-inception-2015-12-05-6726825d.pth",
    sha256_prefix="6726825d",
    used_by="fid, kid (torch-fidelity's Inception-v3 port of the TF 2015-12-05 graph)",
)
ALEXNET = WeightsFile(
    key="alexnet-torchvision",
    filename="alexnet-owt-7be5be79.pth",
    url="https://download.pytorch.org/models/alexnet-owt-7be5be79.pth",
    sha256_prefix="7be5be79",
    used_by="lpips (AlexNet trunk; the linear layers v0.1 ship inside the lpips package)",
)
DINOV2_VITL14 = WeightsFile(
    key="dinov2-vitl14",
    filename="dinov2_vitl14_pretrain.pth",
    url="https://dl.fbaipublicfiles.com/dinov2/dinov2_vitl14/dinov2_vitl14_pretrain.pth",
    sha256_prefix="",  # Meta publishes no checksum; the file's size (304.4M float32 parameters) is checked instead
    used_by="fd-dinov2 (DINOv2 ViT-L/14, the torch hub dinov2_vitl14 backbone; optional, never auto-downloaded)",
    size_bytes=1_217_586_395,
    optional=True,
)
CLEANFID_INCEPTION = WeightsFile(
    key="cleanfid-inception-2015-12-05",
    filename="inception-2015-12-05.pt",
    url="https://nvlabs-fi-cdn.nvidia.com/stylegan2-ada-pytorch/pretrained/metrics/inception-2015-12-05.pt",
    sha256_prefix="",  # NVIDIA publishes no checksum; clean-fid checks none either
    used_by="fid-clean, kid-clean (clean-fid's Inception-v3: NVIDIA's TorchScript export of the TF 2015-12-05 graph)",
    optional=True,
)
# Pinned downstream models for the real-data suites (`--segmenter default`, `--detector default`): everyone who
# names them scores with the same bytes. The hash prefixes are the publishers' own (in the file names).
MMSEG_DEEPLABV3_R18 = WeightsFile(
    key="mmseg-deeplabv3-r18-d8-cityscapes",
    filename="deeplabv3_r18-d8_512x1024_80k_cityscapes_20201225_021506-23dffbe2.pth",
    url="https://download.openmmlab.com/mmsegmentation/v0.5/deeplabv3/deeplabv3_r18-d8_512x1024_80k_cityscapes/"
        "deeplabv3_r18-d8_512x1024_80k_cityscapes_20201225_021506-23dffbe2.pth",
    sha256_prefix="23dffbe2",
    used_by="--segmenter default (mmsegmentation DeepLabV3 R-18-D8, Cityscapes 512x1024, 80k iterations: the "
            "published BDD100K night mIoU protocol; needs the mmseg extra and mmcv)",
    optional=True,
)
TORCHVISION_FRCNN_V2_COCO = WeightsFile(
    key="fasterrcnn-resnet50-fpn-v2-coco",
    filename="fasterrcnn_resnet50_fpn_v2_coco-dd69338a.pth",
    url="https://download.pytorch.org/models/fasterrcnn_resnet50_fpn_v2_coco-dd69338a.pth",
    sha256_prefix="dd69338a",
    used_by="--detector default (torchvision Faster R-CNN ResNet-50 FPN v2, COCO box AP 46.7)",
    optional=True,
)
# Every file `bench weights list|where|check` knows; a module that adds a weights file registers it here.
WEIGHTS: Registry[WeightsFile] = Registry("weights file")
for _wf in (INCEPTION_V3, ALEXNET, DINOV2_VITL14, CLEANFID_INCEPTION, MMSEG_DEEPLABV3_R18, TORCHVISION_FRCNN_V2_COCO):
    WEIGHTS.add(_wf.key, _wf, __name__)


class WeightsMissing(BenchError, FileNotFoundError):
    def __init__(self, wf: WeightsFile, searched: list[Path], reason: str) -> None:
        self.weights = wf
        self.fix = f"download {wf.url} and put it at {searched[-1]} (or in $AUGAN_BENCH_WEIGHTS)"
        self.summary = f"weights file {wf.filename} ({wf.key}, {wf.expected}) is not available: {reason}."
        where = "\n  ".join(str(p) for p in searched)
        super().__init__(f"{self.summary}\nSearched:\n  {where}\nFix: {self.fix}")

    @property
    def one_line(self) -> str:
        return f"{self.summary} Fix: {self.fix}"


@dataclass(frozen=True)
class ResolvedWeights:
    spec: WeightsFile
    path: Path
    sha256: str

    @property
    def verified(self) -> bool:
        """The file is the published one, as far as the publisher lets us check (a file nobody pinned passes)."""
        if self.spec.sha256_prefix:
            return self.sha256.startswith(self.spec.sha256_prefix)
        if self.spec.size_bytes is not None:
            return self.path.stat().st_size == self.spec.size_bytes
        return True

    @property
    def label(self) -> str:
        """What the results say produced a number: the weights id (with the file's own hash where nothing published
        pins it, so two machines can still tell whether they used the same bytes), or a loud substitute marker."""
        if not self.verified:
            return f"{self.spec.key}[SUBSTITUTE sha256 {self.sha256[:8]}: not the published weights]"
        return self.spec.key if self.spec.pinned else f"{self.spec.key}[sha256 {self.sha256[:12]}]"

    def load_state_dict(self) -> dict[str, torch.Tensor]:
        try:
            state = torch.load(self.path, map_location="cpu", weights_only=True)
        except Exception as exc:
            raise ValueError(
                f"{self.path}: cannot load as a weights-only state dict ({type(exc).__name__}: {exc}). "
                f"Replace it with the file from {self.spec.url}"
            ) from exc
        if not isinstance(state, dict):
            raise ValueError(f"{self.path}: expected a state dict, found {type(state).__name__}")
        return state


def hub_checkpoints_dir() -> Path:
    return Path(torch.hub.get_dir()) / "checkpoints"


def offline() -> bool:
    return os.environ.get("AUGAN_BENCH_OFFLINE", "") not in ("", "0") or os.environ.get("HF_HUB_OFFLINE", "") == "1"


def candidate_paths(wf: WeightsFile) -> list[Path]:
    paths = []
    if os.environ.get("AUGAN_BENCH_WEIGHTS"):
        paths.append(Path(os.environ["AUGAN_BENCH_WEIGHTS"]) / wf.filename)
    paths.append(hub_checkpoints_dir() / wf.filename)
    return paths


@lru_cache(maxsize=32)
def _sha256(path: Path, mtime_ns: int, size: int) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def file_sha256(path: Path) -> str:
    st = path.stat()
    return _sha256(path, st.st_mtime_ns, st.st_size)


def file_id(path: Path) -> str:
    """``name:sha256=<12 hex>``: which file, and which bytes (how downstream models name their weights)."""
    return f"{Path(path).name}:sha256={file_sha256(Path(path))[:12]}"


def find(wf: WeightsFile) -> Path | None:
    for p in candidate_paths(wf):
        if p.is_file():
            return p
    return None


def resolve(wf: WeightsFile, download: bool = True) -> ResolvedWeights:
    """Locate (or download, unless offline) ``wf`` and hash it; raises :class:`WeightsMissing`."""
    searched = candidate_paths(wf)
    path = find(wf)
    if path is None:
        if not download or offline():
            raise WeightsMissing(wf, searched, "offline (AUGAN_BENCH_OFFLINE is set)" if offline() else "not found")
        dst = searched[-1]
        dst.parent.mkdir(parents=True, exist_ok=True)
        try:
            # hash_prefix makes torch verify the download before it is moved into place.
            torch.hub.download_url_to_file(wf.url, str(dst), hash_prefix=wf.sha256_prefix or None, progress=True)
        except Exception as exc:  # noqa: BLE001 - any network failure means "not available"
            raise WeightsMissing(wf, searched, f"download failed ({type(exc).__name__}: {exc})") from None
        path = dst
    return ResolvedWeights(wf, path, file_sha256(path))
