"""Paired comparisons of methods scored on the same test images, from their bootstrap replicates.

Every cell of one protocol keeps its metric's value on the same B resampled test sets (``bench.metrics.bootstrap``),
so the difference of two cells' replicates is a paired bootstrap of the difference of their metrics (Koehn,
EMNLP 2004; sacreBLEU's ``--paired-bs``): images that are hard for one method are hard for the other, and the
pairing removes that shared variance, which two overlapping CIs cannot. The metric is recomputed on each resample
(FID and mIoU included), so set-level metrics are compared as they are defined.

The p-value is sacreBLEU's: the replicated differences, shifted to mean zero (the null hypothesis of no
difference), are compared with the observed difference, p = (c + 1) / (B + 1) with c the number of shifted
differences at least as large in magnitude (two-sided). The smallest p a comparison can reach is 1 / (B + 1).
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from itertools import combinations

import numpy as np

ALPHA = 0.05


@dataclass(frozen=True)
class PairedDifference:
    """value(a) - value(b) with its 95% CI and two-sided p from the paired replicates; ``p_holm`` after Holm's
    correction over the comparisons it was tested with (equal to ``p`` for a single comparison)."""

    a: str
    b: str
    difference: float
    ci: tuple[float, float]
    p: float
    resamples: int
    p_holm: float = math.nan


def paired_difference(value_a: float, value_b: float, replicates_a: np.ndarray, replicates_b: np.ndarray,
                      a: str = "a", b: str = "b") -> PairedDifference:
    """The paired bootstrap of ``value_a - value_b`` on the replicates' common resamples (their shared prefix;
    a resample where either is undefined is left out)."""
    n = min(len(replicates_a), len(replicates_b))
    d = np.asarray(replicates_a[:n], np.float64) - np.asarray(replicates_b[:n], np.float64)
    d = d[np.isfinite(d)]
    observed = float(value_a) - float(value_b)
    if d.size == 0 or not math.isfinite(observed):
        return PairedDifference(a, b, observed, (math.nan, math.nan), math.nan, int(d.size), math.nan)
    lo, hi = np.quantile(d, [0.025, 0.975])
    # Exceedances counted with a relative tolerance: identical methods give d == 0 exactly and p = 1, and float noise
    # in a resample's recomputation must not count as evidence.
    tol = 1e-12 * max(1.0, abs(observed))
    c = int((np.abs(d - d.mean()) >= abs(observed) - tol).sum())
    p = (c + 1) / (d.size + 1)
    return PairedDifference(a, b, observed, (float(lo), float(hi)), p, int(d.size), p)


def holm(pvalues: list[float]) -> list[float]:
    """Holm's step-down adjusted p-values (NaN stays NaN and does not count as a test)."""
    idx = [i for i, p in enumerate(pvalues) if math.isfinite(p)]
    order = sorted(idx, key=lambda i: pvalues[i])
    m = len(order)
    out = [math.nan] * len(pvalues)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * pvalues[i]))
        out[i] = running
    return out


def pairwise(values: dict[str, float], replicates: dict[str, np.ndarray]) -> dict[tuple[str, str], PairedDifference]:
    """Every pair of methods (in the given order), with Holm's correction over all the pairs."""
    names = [m for m in values if m in replicates and math.isfinite(values[m])]
    pairs = {(a, b): paired_difference(values[a], values[b], replicates[a], replicates[b], a, b)
             for a, b in combinations(names, 2)}
    adjusted = holm([d.p for d in pairs.values()])
    return {k: PairedDifference(d.a, d.b, d.difference, d.ci, d.p, d.resamples, q)
            for (k, d), q in zip(pairs.items(), adjusted)}


@dataclass(frozen=True)
class Rank:
    """A method's place on one metric: ``rank`` is 1 + the number of methods significantly better (ties share a
    rank: 1, 1, 3); ``bold`` when it is the best or not significantly worse than the best; ``p_vs_best`` is the
    Holm-adjusted p of its difference to the best (NaN for the best itself)."""

    rank: int
    bold: bool
    p_vs_best: float


def rank_groups(values: dict[str, float], replicates: dict[str, np.ndarray], higher_is_better: bool,
                alpha: float = ALPHA) -> dict[str, Rank]:
    """Ranks and the bold group of the methods that have a value and replicates (Holm over every pair)."""
    names = [m for m in values if m in replicates and math.isfinite(values[m])]
    if not names:
        return {}
    raw = pair_pvalues([values[m] for m in names], [replicates[m] for m in names])
    pairs = list(raw)
    p_holm = dict(zip(pairs, holm([raw[k] for k in pairs])))
    sign = 1.0 if higher_is_better else -1.0
    index = {m: i for i, m in enumerate(names)}
    best = max(names, key=lambda m: sign * values[m])

    def adjusted(x: str, y: str) -> float:
        i, j = sorted((index[x], index[y]))
        return p_holm[(i, j)]

    def better(x: str, y: str) -> bool:  # x significantly better than y
        return adjusted(x, y) < alpha and sign * (values[x] - values[y]) > 0

    return {m: Rank(1 + sum(better(o, m) for o in names if o != m), m == best or not better(best, m),
                    math.nan if m == best else adjusted(m, best)) for m in names}


def pair_pvalues(values: list[float], replicates: list[np.ndarray]) -> dict[tuple[int, int], float]:
    """``paired_difference``'s p of every pair (i, j), i < j, without the CIs: one array operation per method for
    the common case (replicates of one length, all finite), which a board of hundreds of submissions needs; pairs
    with undefined resamples take ``paired_difference`` itself."""
    k = len(values)
    lengths = {len(r) for r in replicates}
    stack = np.stack([np.asarray(r, np.float64) for r in replicates]) if len(lengths) == 1 else None
    finite = stack is not None and bool(np.isfinite(stack).all())
    out: dict[tuple[int, int], float] = {}
    for i in range(k - 1):
        if not finite:
            for j in range(i + 1, k):
                out[(i, j)] = paired_difference(values[i], values[j], replicates[i], replicates[j]).p
            continue
        assert stack is not None
        d = stack[i] - stack[i + 1:]  # (k - i - 1) x B: row r is the pair (i, i + 1 + r)
        observed = np.abs(float(values[i]) - np.asarray(values[i + 1:], np.float64))
        tol = 1e-12 * np.maximum(1.0, observed)  # as paired_difference: float noise is no evidence
        c = (np.abs(d - d.mean(axis=1, keepdims=True)) >= (observed - tol)[:, None]).sum(axis=1)
        p = (c + 1) / (d.shape[1] + 1)
        for r, j in enumerate(range(i + 1, k)):
            out[(i, j)] = float(p[r]) if math.isfinite(observed[r]) and d.shape[1] else math.nan
    return out


def seed_key(*parts: object) -> np.random.Generator:
    """A generator seeded by the SHA-256 of ``parts`` (the same draws on every machine and run)."""
    digest = hashlib.sha256("|".join(map(str, parts)).encode()).digest()
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(int.from_bytes(digest, "big"))))


def over_seeds(replicates_by_seed: list[np.ndarray], key: str) -> np.ndarray:
    """One method's replicates when it was trained with several seeds: resample b draws the seeds with replacement
    (from a stream keyed by ``key``: the protocol and the method, so two methods' seeds are drawn independently)
    and averages their replicate b. The interval then covers both the choice of training seeds and of test images:
    seeds first, then images on the protocol's shared draws. One seed: its replicates unchanged."""
    if len(replicates_by_seed) == 1:
        return np.asarray(replicates_by_seed[0], np.float64)
    n = min(len(r) for r in replicates_by_seed)
    stack = np.stack([np.asarray(r[:n], np.float64) for r in replicates_by_seed])  # seeds x B
    k = len(stack)
    choice = seed_key(key, "seeds", k).integers(0, k, size=(n, k))
    return stack[choice, np.arange(n)[:, None]].mean(axis=1)
