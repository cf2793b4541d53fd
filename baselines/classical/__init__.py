"""Classical, non-learned enhancement baselines: the lower bound every table shows.

They need no GPU and no training beyond statistics of the training images: ``gamma`` fits one
exponent so the adverse images' mean brightness matches the day images', ``histmatch`` maps
each channel's histogram onto the day training images' pooled histogram.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import torch

from bench.data.io import read_rgb, to_tensor, to_uint8
from bench.translator import TrainBudget, UnpairedData, register_translator

MAX_FIT_IMAGES = 200  # statistics of a few hundred images are stable to well under one grey level


class _PerImage:
    """Applies ``_apply`` (H x W x 3 uint8 -> same) to every image of a batch."""

    name = "classical"
    # What `bench translate` needs besides the method: None (identity, CLAHE: no state at all), or how the method
    # gets the state its checkpoint holds.
    checkpoint_needed: str | None = None

    def __init__(self, preset: str = "quick", device: str = "cpu") -> None:
        self.preset = preset

    def fit(self, data: UnpairedData, budget: TrainBudget, out_dir: Path) -> None:
        pass

    def _apply(self, img: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def translate(self, images: torch.Tensor) -> torch.Tensor:
        out = [to_tensor(self._apply(to_uint8(img))) for img in images]
        return torch.stack(out).to(images.device)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        self._check(state)

    def _check(self, state: dict[str, torch.Tensor], keys: tuple[str, ...] = ()) -> None:
        """A classical checkpoint holds exactly ``keys``; another method's file is refused, naming that method."""
        if set(state) == set(keys):
            return
        from bench.learned import META_METHOD, CheckpointMismatch, decode_text

        maker = decode_text(state[META_METHOD]) if META_METHOD in state else None
        held = f"a {maker} checkpoint" if maker else f"{len(state)} tensor(s) ({', '.join(list(state)[:3]) or 'none'})"
        wants = ", ".join(keys) or "nothing (its saved state is empty)"
        raise CheckpointMismatch(f"not a {self.name} checkpoint: it holds {held}, and {self.name} keeps {wants}"
                                 + (f"; use --method {maker}" if maker else ""))


def _histograms(files, channels: bool) -> np.ndarray:
    """Pooled 256-bin histogram(s) of up to MAX_FIT_IMAGES evenly spaced files."""
    idx = np.linspace(0, len(files) - 1, min(len(files), MAX_FIT_IMAGES)).round().astype(int)
    hist = np.zeros((3 if channels else 1, 256), np.float64)
    for i in sorted(set(idx.tolist())):
        img = read_rgb(files[i])
        if channels:
            for c in range(3):
                hist[c] += np.bincount(img[..., c].ravel(), minlength=256)
        else:
            hist[0] += np.bincount(img.ravel(), minlength=256)
    return hist


@register_translator("identity", description="no translation: the raw adverse image (lower bound)", learned=False)
class Identity(_PerImage):
    name = "identity"

    def translate(self, images: torch.Tensor) -> torch.Tensor:
        return images.clone()


@register_translator(
    "gamma", description="one gamma exponent fitted so mean brightness matches the day domain", learned=False
)
class Gamma(_PerImage):
    name = "gamma"
    checkpoint_needed = ("its exponent is fitted to the training images (adverse brightness to day brightness): "
                         "give --checkpoint, a gamma cell's checkpoint.safetensors from `bench run --methods gamma` "
                         "on your data")

    def __init__(self, preset: str = "quick", device: str = "cpu") -> None:
        super().__init__(preset, device)
        self.gamma = 1 / 2.2  # before fitting: a standard brightening curve

    def fit(self, data: UnpairedData, budget: TrainBudget, out_dir: Path) -> None:
        levels = np.arange(256) / 255.0
        ha, hb = _histograms(data.train_a, False)[0], _histograms(data.train_b, False)[0]
        target = (hb * levels).sum() / hb.sum()
        lo, hi = 0.02, 20.0  # mean(x ** g) decreases in g: bisection on log g
        for _ in range(60):
            mid = np.sqrt(lo * hi)
            if (ha * levels**mid).sum() / ha.sum() > target:
                lo = mid
            else:
                hi = mid
        self.gamma = float(np.sqrt(lo * hi))

    def _apply(self, img: np.ndarray) -> np.ndarray:
        lut = np.round(255.0 * (np.arange(256) / 255.0) ** self.gamma).astype(np.uint8)
        return lut[img]

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {"gamma": torch.tensor(self.gamma, dtype=torch.float64)}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        self._check(state, ("gamma",))
        self.gamma = float(state["gamma"])


@register_translator(
    "clahe", description="CLAHE on the L channel of CIE Lab (OpenCV, clip 2.0, 8x8 tiles)", learned=False
)
class Clahe(_PerImage):
    name = "clahe"
    clip_limit = 2.0
    tiles = (8, 8)

    def _apply(self, img: np.ndarray) -> np.ndarray:
        lab = cv2.cvtColor(img, cv2.COLOR_RGB2LAB)
        clahe = cv2.createCLAHE(clipLimit=self.clip_limit, tileGridSize=self.tiles)
        lab[..., 0] = clahe.apply(np.ascontiguousarray(lab[..., 0]))
        return cv2.cvtColor(lab, cv2.COLOR_LAB2RGB)


@register_translator(
    "histmatch", description="per-channel histogram matching to the day training images", learned=False
)
class HistMatch(_PerImage):
    name = "histmatch"
    checkpoint_needed = ("its target histograms are those of the day training images: give --checkpoint, a histmatch "
                         "cell's checkpoint.safetensors from `bench run --methods histmatch` on your data")

    def __init__(self, preset: str = "quick", device: str = "cpu") -> None:
        super().__init__(preset, device)
        self.target_cdf: np.ndarray | None = None

    def fit(self, data: UnpairedData, budget: TrainBudget, out_dir: Path) -> None:
        hist = _histograms(data.train_b, True)
        self.target_cdf = np.cumsum(hist, axis=1) / hist.sum(axis=1, keepdims=True)

    def _apply(self, img: np.ndarray) -> np.ndarray:
        if self.target_cdf is None:
            raise RuntimeError("histmatch must be fitted (or loaded) before it translates")
        out = np.empty_like(img)
        levels = np.arange(256, dtype=np.float64)
        for c in range(3):
            h = np.bincount(img[..., c].ravel(), minlength=256).astype(np.float64)
            cdf = np.cumsum(h) / h.sum()
            # Each source level goes to the target level of equal cumulative frequency.
            lut = np.interp(cdf, self.target_cdf[c], levels)
            out[..., c] = np.round(lut).astype(np.uint8)[img[..., c]]
        return out

    def state_dict(self) -> dict[str, torch.Tensor]:
        if self.target_cdf is None:
            return {}
        return {"target_cdf": torch.from_numpy(self.target_cdf.copy())}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        self._check(state, ("target_cdf",))
        self.target_cdf = state["target_cdf"].numpy().astype(np.float64)
