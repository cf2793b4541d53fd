"""Unpaired training batches as the official loader makes them (utils.load_train_data).

Each epoch shuffles A and B independently; batch k pairs the k-th slices. Each pair is resized to
load x 2*load, cropped at one random offset to fine x 2*fine and flipped together with probability
1/2, then scaled to [-1, 1]. With ``load_size=None`` the images keep their native size and only the
crop applies. Every random draw is a function of (seed, step), so a resumed run sees exactly the
batches an uninterrupted one would.

The resize is the official loader's: AU-GAN and ForkGAN call ``scipy.misc.imresize`` on the float
image ``scipy.misc.imread`` gives, which (1) stretches each image to span 0..255 (``bytescale``:
``(x - min) * 255 / (max - min)``, rounded half up; an image that already spans 0..255 is unchanged)
and (2) resizes the 8-bit result with PIL's bilinear filter, which widens with the scale factor, so
a downscale is anti-aliased. We always do (2) on the 8-bit image; (1) only with ``stretch=True``
(their ``paper`` presets), since it changes the brightness of a night image that does not reach
white. A plain ``F.interpolate`` (no anti-aliasing) differs from (2) by ~12 levels on average on a
720x1280 frame brought to 286x572. Images are decoded by ``read_rgb`` (16-bit, palette, CMYK, and a
clear error naming an undecodable file).

Under data-parallel training (``rank``/``world``) ``batch_size`` is per process: the global batch is
``batch_size * world`` images, drawn exactly as one process with that batch would draw them, and each
rank loads its own contiguous slice. ``StepBatches`` serves the same batches from DataLoader workers.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from PIL import Image


def bytescale(img: np.ndarray) -> np.ndarray:
    """scipy.misc.bytescale of a float image with its defaults: stretched so its minimum is 0 and maximum 255."""
    x = img.astype(np.float64)
    low, high = float(x.min()), float(x.max())
    scale = 255.0 / ((high - low) or 1.0)
    return (np.clip((x - low) * scale, 0, 255) + 0.5).astype(np.uint8)


def official_resize(img: np.ndarray, h: int, w: int, stretch: bool = False) -> np.ndarray:
    """H x W x 3 uint8 -> h x w x 3 uint8 as ``scipy.misc.imresize(img, [h, w])`` (PIL bilinear, anti-aliased on
    a downscale); with ``stretch`` also its bytescale of a float input first."""
    if stretch:
        img = bytescale(img)
    if img.shape[:2] == (h, w):
        return img
    return np.asarray(Image.fromarray(img).resize((w, h), Image.BILINEAR))


def _load(path: Path) -> np.ndarray:
    from bench.data.io import read_rgb

    return read_rgb(path)


class UnpairedBatches:
    def __init__(self, files_a: Sequence[Path], files_b: Sequence[Path], batch_size: int, load_size: int | None,
                 fine_size: int, seed: int, rank: int = 0, world: int = 1, stretch: bool = False) -> None:
        if not files_a or not files_b:
            raise ValueError("training needs images of both domains (trainA and trainB must not be empty)")
        self.files_a, self.files_b = list(files_a), list(files_b)
        smallest = min(len(self.files_a), len(self.files_b))
        if smallest < world:
            raise ValueError(f"{world} processes need at least {world} training images per domain; "
                             f"this suite has {smallest}")
        self.batch_size = min(batch_size, smallest // world)  # per rank
        self.rank, self.world = rank, world
        self.global_batch = self.batch_size * world
        self.load_size, self.fine_size, self.seed, self.stretch = load_size, fine_size, seed, stretch
        self.steps_per_epoch = max(1, smallest // self.global_batch)
        self._perm_epoch = -1

    def _permutations(self, epoch: int) -> None:
        if epoch != self._perm_epoch:
            ga = torch.Generator().manual_seed(self.seed * 7919 + 2 * epoch)
            gb = torch.Generator().manual_seed(self.seed * 7919 + 2 * epoch + 1)
            self._perm_a = torch.randperm(len(self.files_a), generator=ga).tolist()
            self._perm_b = torch.randperm(len(self.files_b), generator=gb).tolist()
            self._perm_epoch = epoch

    def _prepare(self, arr: np.ndarray, fy: float, fx: float, flip: bool) -> torch.Tensor:
        fine_h, fine_w = self.fine_size, 2 * self.fine_size
        h, w = arr.shape[:2]
        if self.load_size is not None:
            h, w = self.load_size, 2 * self.load_size
        elif h < fine_h or w < fine_w:  # too small to crop: scale up just enough
            scale = max(fine_h / h, fine_w / w)
            h, w = int(np.ceil(h * scale)), int(np.ceil(w * scale))
        arr = official_resize(arr, h, w, self.stretch)
        top, left = int(fy * (h - fine_h + 1)), int(fx * (w - fine_w + 1))
        img = torch.from_numpy(np.ascontiguousarray(arr[top:top + fine_h, left:left + fine_w]))
        img = img.permute(2, 0, 1).float().div_(127.5).sub_(1.0)
        return img.flip(-1) if flip else img

    def batch(self, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        a, b = self._draw(step, with_b=True)
        return a, b

    def batch_a(self, step: int) -> torch.Tensor:
        """Domain A only: a method's further, independent batch of A (``LearnedTranslator.A_BATCHES``)."""
        return self._draw(step, with_b=False)[0]

    def _draw(self, step: int, with_b: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
        epoch, k = divmod(step, self.steps_per_epoch)
        self._permutations(epoch)
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + step)
        first = k * self.global_batch
        mine = range(first + self.rank * self.batch_size, first + (self.rank + 1) * self.batch_size)
        a, b = [], []
        for j in range(first, first + self.global_batch):
            fy, fx, flip = torch.rand(3, generator=g).tolist()  # drawn for every image: the same for any world
            if j in mine:
                a.append(self._prepare(_load(self.files_a[self._perm_a[j]]), fy, fx, flip > 0.5))
                if with_b:
                    b.append(self._prepare(_load(self.files_b[self._perm_b[j]]), fy, fx, flip > 0.5))
        return torch.stack(a), (torch.stack(b) if with_b else None)


class StepBatches(torch.utils.data.Dataset):
    """Item i = the batch of step ``start + i``: lets a DataLoader decode and crop ahead in worker processes. With
    ``extra_a``, further independent draws of domain A follow the first in the batch's A half."""

    def __init__(self, batches: UnpairedBatches, start: int, total: int,
                 extra_a: Sequence[UnpairedBatches] = ()) -> None:
        self.batches, self.start, self.total, self.extra_a = batches, start, total, list(extra_a)

    def __len__(self) -> int:
        return self.total - self.start

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        a, b = self.batches.batch(self.start + i)
        if self.extra_a:
            a = torch.cat([a, *(extra.batch_a(self.start + i) for extra in self.extra_a)])
        return a, b
