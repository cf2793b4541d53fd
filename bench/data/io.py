"""Image input and output, with the protocol written down.

- Images are decoded with Pillow and converted to 8-bit RGB; a file that is not a readable
  image raises :class:`ImageReadError` naming the file.
- Float images in [0, 1] are rounded to uint8 (never truncated) before they are written,
  and written as PNG (lossless), atomically.
- Nothing is cropped or squashed: images keep their size and aspect ratio.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image, UnidentifiedImageError

from bench.atomic import atomic_write_bytes
from bench.errors import BenchError

if TYPE_CHECKING:  # torch is imported where tensors are made: decoding, writing and rendering never need it
    import torch

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff")


class ImageReadError(BenchError, ValueError):
    pass


def read_rgb(path: Path) -> np.ndarray:
    """H x W x 3 uint8 RGB from any common mode: grayscale, palette, CMYK and RGBA (alpha dropped) are converted,
    16-bit grayscale is scaled to 8 bits (PIL's own conversion would clip it to white)."""
    try:
        with Image.open(path) as im:
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
