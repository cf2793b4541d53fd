"""Percentile bootstrap over test images, with draws that belong to the protocol, not to the method.

Every metric's 95% CI comes from B resampled test sets (images drawn with replacement). The draws are a
function of the protocol key (suite, preset, size, the ordered test and reference sets: ``Draws.key``) and the
resample index alone, never of the method, the run or the machine, so resample b of any two cells of one protocol
used the same images: the difference of their replicates is a paired bootstrap of the difference (Koehn 2004;
sacreBLEU's ``--paired-bs``), on one machine, across runs and across users.

The indices come from PCG64's raw 64-bit output (a ``SeedSequence`` of the key's SHA-256), mapped to 0..n-1 by
an exact multiply-high, and not from ``Generator.integers``, whose transformation numpy does not promise to keep
across versions. Resample b's indices do not depend on B, so the first 200 resamples of a 2,000-resample cell are
those of a 200-resample one: cells with different B compare on their common prefix.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

N_RESAMPLES = 2000  # p-values reach 1/2001: enough for Holm's correction over the 66 pairs of 12 methods
CI_LEVEL = 0.95
# Above d images a resampled FID needs two d x d eigendecompositions (~1.6 s at d = 2048 on 2 cores), so FID-type
# metrics of large sets keep the first LARGE_SET_RESAMPLES of the protocol's draws (about 5 minutes per cell).
LARGE_SET_RESAMPLES = 200
DRAWS_FORMAT = "pcg64-raw-multiply-high/1"  # how indices are made from the key: a change here changes every replicate
TEST, REFERENCE = "test", "reference"


@lru_cache(maxsize=8)
def _indices(key: str, stream: str, n: int, resamples: int) -> np.ndarray:
    seed = int.from_bytes(hashlib.sha256(f"{key}|{stream}".encode()).digest(), "big")
    raw = np.random.PCG64(np.random.SeedSequence(seed)).random_raw(resamples * n).astype(np.uint64)
    # floor(raw * n / 2^64) in 64-bit arithmetic: (hi * n + floor(lo * n / 2^32)) / 2^32, exact for n < 2^32.
    m = np.uint64(n)
    hi, lo = raw >> np.uint64(32), raw & np.uint64(0xFFFFFFFF)
    out = ((hi * m + ((lo * m) >> np.uint64(32))) >> np.uint64(32)).astype(np.int64).reshape(resamples, n)
    out.setflags(write=False)
    return out


def draws_components(suite: str, preset: str, size: list[int], test: list[str], reference: list[str]) -> dict:
    """What a protocol's draws are a function of: suite, preset, size and the ordered test and reference sets' names
    (a digest of each; a subset is another protocol). Never the method, run or machine."""
    def digest(names: list[str]) -> str:
        return hashlib.sha256("\n".join(names).encode()).hexdigest()[:16]

    return {"suite": suite, "preset": preset, "size": list(size), "n_test": len(test), "test": digest(test),
            "n_reference": len(reference), "reference": digest(reference)}


def draws_key(components: dict) -> str:
    """The key of a protocol's draws: SHA-256 of its components (suite, preset, size, the ordered sets' digests)."""
    text = json.dumps({"draws": DRAWS_FORMAT, **components}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True)
class Draws:
    """The B resamples of one protocol: which test images (and reference images) resample b holds."""

    key: str  # the protocol key (hex); the same for every cell of one protocol
    n: int  # test images
    n_reference: int = 0  # reference images (FID/KID's target set), 0 where a metric has none
    resamples: int = N_RESAMPLES

    def indices(self, resamples: int | None = None) -> np.ndarray:
        """B x n indices of the test images of each resample (read-only)."""
        return _indices(self.key, TEST, self.n, resamples or self.resamples)

    def reference_indices(self, resamples: int | None = None) -> np.ndarray:
        if self.n_reference < 1:
            raise ValueError("these draws have no reference set")
        return _indices(self.key, REFERENCE, self.n_reference, resamples or self.resamples)

    def counts(self, resamples: int | None = None) -> np.ndarray:
        """B x n multiplicities: how often each test image occurs in each resample (float64, read-only)."""
        return _counts(self.key, self.n, resamples or self.resamples)


@lru_cache(maxsize=2)  # every per-image metric of a cell weights by the same multiplicities
def _counts(key: str, n: int, resamples: int) -> np.ndarray:
    out = multiplicities(_indices(key, TEST, n, resamples), n)
    out.setflags(write=False)
    return out


def multiplicities(indices: np.ndarray, n: int) -> np.ndarray:
    """R x n float64: how often each of n items occurs in each row of R x m ``indices`` (a resample's weights)."""
    r = len(indices)
    flat = np.bincount((indices + n * np.arange(r)[:, None]).ravel(), minlength=r * n)
    return flat.reshape(r, n).astype(np.float64)


def draws_for_seed(n: int, seed: int = 0, resamples: int = N_RESAMPLES, n_reference: int = 0) -> Draws:
    """Draws keyed by a plain seed: for callers outside a protocol (tests, plug-ins' own checks)."""
    return Draws(f"seed:{seed}", n, n_reference, resamples)


def percentile_ci(replicates: np.ndarray) -> tuple[float, float]:
    """The 95% percentile interval of resampled values (NaN ones, e.g. a class absent from a resample, left out)."""
    values = np.asarray(replicates, dtype=np.float64)
    values = values[np.isfinite(values)]
    if values.size == 0:
        return float("nan"), float("nan")
    alpha = (1 - CI_LEVEL) / 2
    lo, hi = np.quantile(values, [alpha, 1 - alpha])
    return float(lo), float(hi)


def mean_replicates(values: np.ndarray, draws: Draws) -> np.ndarray:
    """The mean of per-image ``values`` in each resample (B values)."""
    values = np.asarray(values, dtype=np.float64)
    return draws.counts() @ values / len(values)


def ratio_replicates(numerator: np.ndarray, denominator: np.ndarray, draws: Draws) -> np.ndarray:
    """sum(numerator) / sum(denominator) over each resample's images (NaN where the denominator sums to 0)."""
    counts = draws.counts()
    num, den = counts @ np.asarray(numerator, np.float64), counts @ np.asarray(denominator, np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / den, np.nan)


def bootstrap_mean_ci(values: np.ndarray, seed: int = 0, n_boot: int = N_RESAMPLES) -> tuple[float, float]:
    """95% percentile-bootstrap CI of the mean of per-image ``values`` (resampling images with replacement)."""
    values = np.asarray(values, dtype=np.float64)
    if len(values) < 2:
        return float("nan"), float("nan")
    return percentile_ci(mean_replicates(values, draws_for_seed(len(values), seed, n_boot)))


def column_cis(values: np.ndarray) -> np.ndarray:
    """Percentile CIs of each column of resampled statistics (resamples x columns), NaN ignored: columns x 2,
    NaN for a column with no number (e.g. a class absent from every resample). Columns without NaN take one
    quantile call together (``percentile_ci``'s numbers: the same quantile of the same values)."""
    values = np.asarray(values, dtype=np.float64)
    out = np.full((values.shape[1], 2), np.nan)
    finite = np.isfinite(values).all(axis=0) & (len(values) > 0)
    if finite.any():
        alpha = (1 - CI_LEVEL) / 2
        out[finite] = np.quantile(values[:, finite], [alpha, 1 - alpha], axis=0).T
    for k in np.flatnonzero(~finite):
        out[k] = percentile_ci(values[:, k])
    return out
