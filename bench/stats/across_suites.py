"""Ranking methods over several suites (data sets): mean ranks, Friedman's test, pairwise Wilcoxon signed-rank tests.

Benavoli, Corani & Mangili (JMLR 2016, "Should we really use post-hoc tests based on mean-ranks?") show that the
Nemenyi post-hoc test's outcome for two methods depends on which other methods are in the comparison; they
recommend the Wilcoxon signed-rank test per pair with a correction for multiple tests, which is what this module
does (Holm's). Friedman's test says whether the methods differ at all. Both come from scipy.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from itertools import combinations

import numpy as np

from bench.stats.paired import ALPHA, holm


@dataclass
class SuiteRanking:
    """``methods`` in order of mean rank (best first) over ``suites``; ``ranks[s][m]`` is method m's rank on suite s
    (1 = best, ties averaged); ``pairs[(a, b)]`` holds the Wilcoxon p, its Holm-adjusted p and the decision."""

    metric: str
    suites: list[str]
    methods: list[str]
    mean_rank: dict[str, float]
    ranks: dict[str, dict[str, float]]
    friedman_statistic: float
    friedman_p: float
    pairs: dict[tuple[str, str], dict] = field(default_factory=dict)

    def different(self, a: str, b: str) -> bool:
        pair = self.pairs.get((a, b)) or self.pairs.get((b, a))
        return bool(pair and pair["different"])


def rank_over_suites(values: dict[str, dict[str, float]], metric: str, higher_is_better: bool,
                     alpha: float = ALPHA) -> SuiteRanking:
    """``values[suite][method]``: one number per suite and method (every method on every suite)."""
    from scipy.stats import friedmanchisquare, rankdata, wilcoxon

    suites = list(values)
    methods = list(values[suites[0]]) if suites else []
    table = np.array([[values[s][m] for m in methods] for s in suites], dtype=np.float64)  # suites x methods
    sign = -1.0 if higher_is_better else 1.0  # rank 1 = best
    ranks = np.vstack([rankdata(sign * row, method="average") for row in table])
    mean_rank = dict(zip(methods, ranks.mean(axis=0).tolist()))
    if len(methods) >= 3 and len(suites) >= 2:
        stat, p = friedmanchisquare(*table.T)
        stat, p = float(stat), float(p)
    else:
        stat, p = math.nan, math.nan
    pairs = {}
    for a, b in combinations(methods, 2):
        x, y = table[:, methods.index(a)], table[:, methods.index(b)]
        if np.all(x == y):  # no signed rank to test: no evidence of a difference
            pairs[(a, b)] = {"p": 1.0}
        else:
            pairs[(a, b)] = {"p": float(wilcoxon(x, y).pvalue)}
    for pair, q in zip(pairs, holm([v["p"] for v in pairs.values()])):
        pairs[pair]["p_holm"] = q
        pairs[pair]["different"] = bool(q < alpha)
    order = sorted(methods, key=lambda m: mean_rank[m])
    return SuiteRanking(metric, suites, order, {m: mean_rank[m] for m in order},
                        {s: dict(zip(methods, r.tolist())) for s, r in zip(suites, ranks)}, stat, p, pairs)


def cliques(ranking: SuiteRanking) -> list[list[str]]:
    """Maximal runs of methods, consecutive in mean rank, that no test tells apart (the bars of a critical-difference
    diagram); single methods are left out."""
    order = ranking.methods
    groups: list[list[str]] = []
    for i in range(len(order)):
        j = i
        while j + 1 < len(order) and all(not ranking.different(x, order[j + 1]) for x in order[i:j + 1]):
            j += 1
        group = order[i:j + 1]
        if len(group) > 1 and not any(set(group) <= set(g) for g in groups):
            groups.append(group)
    return groups
