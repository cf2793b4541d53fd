"""PSNR and SSIM against pixel-aligned references, per image, on 8-bit values.

SSIM follows Wang et al. (2004) as scikit-image computes it with ``gaussian_weights=True,
sigma=1.5, use_sample_covariance=False, data_range=255``: an 11 x 11 Gaussian window, the
map averaged over the pixels whose window lies inside the image and over the channels.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage

_SIGMA = 1.5
_RADIUS = int(3.5 * _SIGMA + 0.5)  # scikit-image's truncate=3.5 -> 11 x 11 window
_C1 = (0.01 * 255) ** 2
_C2 = (0.03 * 255) ** 2


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR in dB of two H x W x 3 uint8 images (inf when identical)."""
    _check_pair(a, b)
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else 10.0 * math.log10(255.0**2 / mse)


def _gaussian_1d() -> np.ndarray:
    x = np.arange(-_RADIUS, _RADIUS + 1, dtype=np.float64)
    g = np.exp(-(x**2) / (2 * _SIGMA**2))
    return g / g.sum()


_G = _gaussian_1d()


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    """Mean SSIM of two H x W x 3 uint8 images (each side at least 11 pixels)."""
    _check_pair(a, b)
    if min(a.shape[:2]) < 2 * _RADIUS + 1:
        raise ValueError(f"SSIM needs images of at least {2 * _RADIUS + 1} pixels per side, got {a.shape[:2]}")
    x, y = a.astype(np.float64), b.astype(np.float64)
    inner = (slice(_RADIUS, -_RADIUS), slice(_RADIUS, -_RADIUS))

    def filt(t: np.ndarray) -> np.ndarray:
        # Separable Gaussian, then keep only pixels whose window lies inside the image: exactly the
        # pixels scikit-image averages after cropping its border (so the border mode never matters).
        t = ndimage.correlate1d(t, _G, axis=0, mode="reflect")
        return ndimage.correlate1d(t, _G, axis=1, mode="reflect")[inner]

    ux, uy = filt(x), filt(y)
    vx = filt(x * x) - ux * ux
    vy = filt(y * y) - uy * uy
    vxy = filt(x * y) - ux * uy
    s = ((2 * ux * uy + _C1) * (2 * vxy + _C2)) / ((ux**2 + uy**2 + _C1) * (vx + vy + _C2))
    return float(s.mean())


def _check_pair(a: np.ndarray, b: np.ndarray) -> None:
    if a.shape != b.shape:
        raise ValueError(f"paired metrics need images of one size, got {a.shape} and {b.shape}")
