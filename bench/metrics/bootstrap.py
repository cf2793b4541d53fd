"""Percentile bootstrap confidence intervals over test images."""

from __future__ import annotations

import numpy as np

N_BOOTSTRAP = 1000
CI_LEVEL = 0.95


def bootstrap_mean_ci(values: np.ndarray, seed: int = 0, n_boot: int = N_BOOTSTRAP) -> tuple[float, float]:
    """95% percentile-bootstrap CI of the mean of per-image ``values`` (resampling images with replacement)."""
    values = np.asarray(values, dtype=np.float64)
    if len(values) < 2:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(values), size=(n_boot, len(values)))
    means = values[idx].mean(axis=1)
    alpha = (1 - CI_LEVEL) / 2
    lo, hi = np.quantile(means, [alpha, 1 - alpha])
    return float(lo), float(hi)


def column_cis(values: np.ndarray) -> np.ndarray:
    """Percentile CIs of each column of resampled statistics (resamples x columns), NaN ignored: columns x 2,
    NaN for a column with no number (e.g. a class absent from every resample)."""
    alpha = (1 - CI_LEVEL) / 2
    out = np.full((values.shape[1], 2), np.nan)
    for k in range(values.shape[1]):
        col = values[:, k][np.isfinite(values[:, k])]
        if col.size:
            out[k] = np.quantile(col, [alpha, 1 - alpha])
    return out
