"""Statistics for comparing methods: a leaf beside the metrics, importing nothing of ``bench``.

``paired``: the paired bootstrap of two cells' replicates on shared draws (a difference, its CI, a p-value),
Holm's correction, rank groups. ``across_suites``: mean ranks over suites, Friedman's test, pairwise Wilcoxon
signed-rank tests with Holm's correction (Benavoli, Corani & Mangili, JMLR 2016).
"""
