"""Image input and output, with the protocol written down.

- Images are decoded with Pillow and converted to 8-bit RGB; a file that is not a readable
  image raises :class:`ImageReadError` naming the file.
- Float images in [0, 1] are rounded to uint8 (never truncated) before they are written,
  and written as PNG (lossless), atomically.
- Nothing is cropped or squashed: images keep their size and aspect ratio.
"""

from __future__ import annotations

import io
import os
import re
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Iterator, Sequence

import numpy as np
from PIL import Image, UnidentifiedImageError

from bench.atomic import atomic_write_bytes
from bench.errors import BenchError

if TYPE_CHECKING:  # torch is imported where tensors are made: decoding, writing and rendering never need it
    import torch

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff")


class ImageReadError(BenchError, ValueError):
    pass


class ImageTooLarge(ImageReadError):
    """A file whose header declares more pixels than the limit: refused before anything is decoded."""


PIXEL_LIMIT_ENV = "AUGAN_BENCH_MAX_IMAGE_PIXELS"
# Pillow's own refusal threshold (twice its Image.MAX_IMAGE_PIXELS): about 13,400 x 13,400, far above any driving
# frame, far below what a 1 MB PNG claiming 30,000 x 30,000 would allocate (2.7 GB).
DEFAULT_PIXEL_LIMIT = 178_956_970
# Our limit is checked on every open; Pillow's warning between its two thresholds would only repeat it.
warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)


def pixel_limit() -> int:
    """The most pixels an image may declare: $AUGAN_BENCH_MAX_IMAGE_PIXELS, else DEFAULT_PIXEL_LIMIT."""
    raw = os.environ.get(PIXEL_LIMIT_ENV, "")
    if not raw:
        return DEFAULT_PIXEL_LIMIT
    try:
        value = int(raw.replace("_", ""))
    except ValueError:
        value = 0
    if value < 1:
        raise BenchError(f"{PIXEL_LIMIT_ENV}={raw!r}: give a whole number of pixels, e.g. {2 * DEFAULT_PIXEL_LIMIT}")
    return value


@contextmanager
def open_image(path: Path) -> Iterator[Image.Image]:
    """``Image.open`` (the header only) with the pixel limit checked before anything is decoded."""
    limit = pixel_limit()
    Image.MAX_IMAGE_PIXELS = limit  # Pillow refuses above twice this by itself; the check below refuses above it
    fix = (f"nothing was decoded. If your images really are this large, raise the limit: {PIXEL_LIMIT_ENV}=N "
           "(recorded in the run's manifest)")
    try:
        im = Image.open(path)
    except Image.DecompressionBombError as exc:
        found = re.search(r"\((\d+) pixels\)", str(exc))  # Pillow: "Image size (900000000 pixels) exceeds ..."
        declared = f"{int(found.group(1)):,} pixels" if found else "too many pixels"
        raise ImageTooLarge(f"{path}: the header declares {declared}, more than the limit of {limit:,} pixels (a "
                            f"decompression bomb, or a huge image): {fix}") from None
    with im:
        if im.width * im.height > limit:
            raise ImageTooLarge(f"{path}: the header declares {im.width}x{im.height} = {im.width * im.height:,} pixels, "
                                f"more than the limit of {limit:,} (a decompression bomb, or a huge image): {fix}")
        yield im


def read_rgb(path: Path) -> np.ndarray:
    """H x W x 3 uint8 RGB from any common mode: grayscale, palette, CMYK and RGBA (alpha dropped) are converted,
    16-bit grayscale is scaled to 8 bits (PIL's own conversion would clip it to white)."""
    try:
        with open_image(path) as im:
            im.load()
            if im.mode in ("I;16", "I;16B", "I;16L", "I"):
                arr = np.array(im).astype(np.float64)
                top = 65535.0 if im.mode.startswith("I;16") or arr.max() > 255 else 255.0
                gray = np.clip(np.round(arr / top * 255.0), 0, 255).astype(np.uint8)
                return np.repeat(gray[..., None], 3, axis=2)
            if im.mode not in ("RGB", "L", "LA", "RGBA", "P", "CMYK", "YCbCr"):
                raise ImageReadError(f"{path}: unsupported image mode {im.mode!r}; convert it to 8-bit RGB")
            return np.array(im.convert("RGB"))
    except (UnidentifiedImageError, OSError, SyntaxError) as exc:
        raise ImageReadError(f"{path}: cannot read image ({exc}); re-export or remove the file") from exc


CITYSCAPES_TRAIN_IDS = 19  # label maps hold train ids 0..18, and 255 where nothing is labelled
IGNORE_ID = 255


class LabelError(ImageReadError):
    """A label map that is not a single-channel map of Cityscapes train ids."""


def read_label(path: Path) -> np.ndarray:
    """H x W uint8 Cityscapes train ids (0..18, 255 = ignore) from a single-channel 8-bit PNG.

    A colour image, a 16-bit map, or ids outside that set (a Cityscapes labelIds map, 0..33) would give a
    wrong mIoU without a word, so each is refused with what to do.
    """
    try:
        with open_image(path) as im:
            im.load()
            mode = im.mode
            arr = np.array(im)
    except (UnidentifiedImageError, OSError, SyntaxError) as exc:
        raise LabelError(f"{path}: cannot read label map ({exc}); re-export or remove the file") from exc
    if mode not in ("L", "P"):
        raise LabelError(f"{path}: a {mode} image, not a label map: labels are single-channel 8-bit PNGs of Cityscapes "
                         f"train ids (0-{CITYSCAPES_TRAIN_IDS - 1}, {IGNORE_ID} = ignore); convert colour-coded or "
                         "16-bit labels to train ids first (cityscapesscripts' createTrainIdLabelImgs)")
    ids = np.unique(arr)
    bad = ids[(ids >= CITYSCAPES_TRAIN_IDS) & (ids != IGNORE_ID)]
    if bad.size:
        hint = (" It looks like a Cityscapes labelIds map (0-33): convert it to train ids (cityscapesscripts' "
                "createTrainIdLabelImgs, or mmseg's tools/dataset_converters/cityscapes.py).") if ids.max() <= 33 else ""
        raise LabelError(f"{path}: holds id(s) {', '.join(map(str, bad[:8].tolist()))} outside the Cityscapes train ids "
                         f"(0-{CITYSCAPES_TRAIN_IDS - 1}, {IGNORE_ID} = ignore).{hint}")
    return arr


def to_tensor(img: np.ndarray) -> torch.Tensor:
    """H x W x 3 uint8 -> 3 x H x W float in [0, 1]."""
    import torch

    return torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1).float().div_(255.0)


def to_uint8(img: torch.Tensor) -> np.ndarray:
    """3 x H x W float in [0, 1] -> H x W x 3 uint8, rounded."""
    import torch

    arr = img.detach().float().clamp(0, 1).mul(255.0).round().to(torch.uint8)
    return arr.permute(1, 2, 0).cpu().numpy()


def write_png(path: Path, img: np.ndarray) -> None:
    """Write an H x W (x 3) uint8 array as PNG, atomically."""
    if img.dtype != np.uint8:
        raise TypeError(f"write_png expects uint8, got {img.dtype}; round with to_uint8 first")
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="PNG", compress_level=1)
    atomic_write_bytes(path, buf.getvalue())


def list_images(folder: Path) -> list[Path]:
    return sorted(p for p in Path(folder).iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file())


def same_aspect(a: tuple[int, ...], b: tuple[int, ...], tolerance: float = 0.01) -> bool:
    """Whether two (H, W, ...) shapes have the same aspect ratio within ``tolerance``: a label map resized with its
    image keeps it; a label of another image usually does not."""
    (h, w), (bh, bw) = a[:2], b[:2]
    return abs(h * bw - w * bh) <= tolerance * w * bh


def links_leaving(root: Path, paths: Sequence[Path]) -> list[Path]:
    """The symbolic links among ``paths`` that lead outside ``root`` (followed by every command; worth saying)."""
    top = Path(root).resolve()
    return [Path(p) for p in paths if Path(p).is_symlink() and not Path(p).resolve().is_relative_to(top)]


def output_name_clashes(inputs: Sequence[Path]) -> dict[str, list[Path]]:
    """Translations are written as ``<stem>.png``: the inputs that would write the same file (a.jpg and a.png)."""
    by_name: dict[str, list[Path]] = {}
    for p in inputs:
        by_name.setdefault(Path(p).stem + ".png", []).append(Path(p))
    return {name: paths for name, paths in by_name.items() if len(paths) > 1}


def refuse_output_name_clashes(inputs: Sequence[Path]) -> None:
    """Raise when two inputs would overwrite each other's translation (the metric would count both)."""
    clashes = output_name_clashes(inputs)
    if clashes:
        shown = "; ".join(" and ".join(p.name for p in paths) + f" -> {name}" for name, paths in list(clashes.items())[:3])
        more = f" (and {len(clashes) - 3} more)" if len(clashes) > 3 else ""
        folder = next(iter(clashes.values()))[0].parent
        raise ImageReadError(f"{folder}: {len(clashes)} translation name(s) would be written by two inputs: {shown}{more}. "
                             "Translations are named <input stem>.png: rename one file of each pair")
