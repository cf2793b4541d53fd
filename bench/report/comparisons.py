"""Tables of differences: one method against a baseline (``bench tables --vs``), one pair on every metric
(``bench compare``), and methods ranked over suites (``bench tables --aggregate``)."""

from __future__ import annotations

import math

from bench.metrics import metric_label
from bench.report.render import Cell, Table
from bench.report.runs import RunResults
from bench.report.significance import ComparisonError, compare_cells, ranked, versus
from bench.report.tables import DECIMALS, higher_is_better, rank_exclusions, task_of, weak_task
from bench.results import REFERENCE_ROW
from bench.stats.across_suites import SuiteRanking, rank_over_suites
from bench.stats.paired import ALPHA, PairedDifference


def arrow(metric: str) -> str:
    """↑ or ↓, per-class entries (``iou/car``) included."""
    return "↑" if higher_is_better(metric) else "↓"


def format_p(p: float) -> str:
    return "–" if not math.isfinite(p) else f"{p:.4f}" if p >= 0.0001 else f"{p:.1e}"


def difference_text(metric: str, d: PairedDifference) -> str:
    n = DECIMALS.get(metric.split("/")[0], 2)
    lo, hi = d.ci
    return f"{d.difference:+.{n}f} [{lo:+.{n}f}, {hi:+.{n}f}] (p = {format_p(d.p_holm)})"


def comparable_metrics(run: RunResults, methods: list[str], metrics: list[str] | None) -> list[str]:
    """The headline metrics (or ``metrics``) that every one of ``methods`` has a number for."""
    chosen = metrics or run.metrics()
    return [m for m in chosen if all(math.isfinite(run.value(x, m)) for x in methods)]


def versus_table(run: RunResults, baseline: str, metrics: list[str] | None = None) -> Table:
    """sacreBLEU's layout: each method's value and its paired difference to ``baseline``, per metric."""
    methods = [m for m in run.methods if m != REFERENCE_ROW]
    if baseline not in methods:
        raise ComparisonError(f"--vs {baseline}: not a method of {run.path}; it has {', '.join(methods)}")
    chosen = [m for m in comparable_metrics(run, [baseline], metrics)
              if run.replicates(baseline, m) is not None]
    if not chosen:
        raise ComparisonError(f"{run.path}: {baseline} has no metric with replicates to compare against "
                              "(cells scored before replicates were kept: score them again with --force)")
    table = Table(title=f"{run.label}: each method against {baseline} (paired bootstrap)", columns=["method"])
    for metric in chosen:
        table.groups.append((f"{metric_label(metric)} {arrow(metric)}", 2))
        table.columns += ["value", f"Δ vs {baseline} [95% CI] (p)"]
    diffs = {}
    for metric in chosen:
        others = [m for m in methods if m != baseline and math.isfinite(run.value(m, metric))
                  and run.replicates(m, metric) is not None]
        diffs[metric] = versus(run, baseline, others, metric)
    for method in methods:
        row = [Cell(method)]
        for metric in chosen:
            v = run.value(method, metric)
            n = DECIMALS.get(metric, 4)
            row.append(Cell(f"{v:.{n}f}" if math.isfinite(v) else "–", value=v if math.isfinite(v) else None))
            d = diffs[metric].get(method)
            if method == baseline:
                row.append(Cell("(baseline)"))
            elif d is None:
                row.append(Cell("–"))
            else:
                good = d.p_holm < ALPHA and (d.difference > 0) == higher_is_better(metric)
                row.append(Cell(difference_text(metric, d), bold=good, value=d.difference))
        table.rows.append(row)
    table.notes.append(f"Δ = method − {baseline}, with the 95% interval of the paired bootstrap differences (every "
                       "method resampled on the same test images) and the two-sided p = (c + 1) / (B + 1) of "
                       "sacreBLEU's paired bootstrap (Koehn, EMNLP 2004), Holm-corrected over the methods of each "
                       f"metric; bold: significantly better than {baseline} at {ALPHA}.")
    return table


def compare_pair(run_a: RunResults, a: str, run_b: RunResults, b: str, metrics: list[str] | None = None
                 ) -> list[tuple[str, PairedDifference]]:
    """(metric, value(a) - value(b)) for every metric both cells have, or for ``metrics``."""
    if metrics:
        return [(m, compare_cells(run_a, a, run_b, b, m)) for m in metrics]
    shared = [m for m in run_a.metrics() if m in run_b.metrics()
              and math.isfinite(run_a.value(a, m)) and math.isfinite(run_b.value(b, m))]
    if not shared:
        raise ComparisonError(f"{a} and {b} have no computed metric in common")
    return [(m, compare_cells(run_a, a, run_b, b, m)) for m in shared]


def pair_lines(a: str, b: str, results: list[tuple[str, PairedDifference]]) -> list[str]:
    lines = []
    for metric, d in results:
        if not math.isfinite(d.p):
            verdict = "no resample defines both"
        elif d.p >= ALPHA:
            verdict = "no significant difference"
        else:
            verdict = f"{a if (d.difference > 0) == higher_is_better(metric) else b} better"
        lines.append(f"{metric_label(metric)} {arrow(metric)}: {a} − {b} = {difference_text(metric, d)}, "
                     f"{d.resamples:,} paired resamples: {verdict}")
    return lines


def aggregate_rankings(runs: list[RunResults], metrics: list[str] | None = None) -> tuple[list[SuiteRanking], list[str]]:
    """Per metric, the methods every run has a number for, ranked over the runs (suites); and notes on what was
    left out."""
    if len(runs) < 2:
        raise ComparisonError("--aggregate ranks methods over suites: give two or more --run folders")
    labels = [run.label for run in runs]
    if len(set(labels)) < len(labels):
        labels = [str(run.path) for run in runs]
    chosen = metrics or list(dict.fromkeys(m for run in runs for m in run.metrics()))
    out, notes = [], []
    for metric in chosen:
        if not ranked(metric):
            continue
        headline = task_of(metric)
        weak = [label for label, run in zip(labels, runs) if headline and weak_task(run.agg, headline)]
        if weak:
            notes.append(f"{metric_label(metric)}: not ranked, its task is too weak to rank methods on "
                         f"{', '.join(weak)} (see that run's table).")
            continue
        excluded = {m for run in runs for m in rank_exclusions(run.agg, metric, run.methods)}
        methods = [m for m in runs[0].methods if m != REFERENCE_ROW and m not in excluded
                   and all(math.isfinite(run.value(m, metric)) for run in runs)]
        if len(methods) < 2:
            if any(math.isfinite(run.value(m, metric)) for run in runs for m in run.methods):
                notes.append(f"{metric_label(metric)}: fewer than two methods have a ranked number on every run; "
                             "not ranked.")
            continue
        if excluded & set(runs[0].methods):
            notes.append(f"{metric_label(metric)}: {', '.join(sorted(excluded & set(runs[0].methods)))} left out "
                         "(not ranked on it in some run; see that run's table).")
        values = {label: {m: run.value(m, metric) for m in methods} for label, run in zip(labels, runs)}
        out.append(rank_over_suites(values, metric, higher_is_better(metric)))
    return out, notes


def aggregate_table(runs: list[RunResults], metrics: list[str] | None = None) -> tuple[Table, list[SuiteRanking]]:
    rankings, notes = aggregate_rankings(runs, metrics)
    if not rankings:
        raise ComparisonError("no metric has two or more methods with a number on every run: " + " ".join(notes))
    methods = list(dict.fromkeys(m for r in rankings for m in r.methods))
    table = Table(title=f"Mean rank over {len(runs)} suites (1 = best; ties averaged)",
                  columns=["method"] + [f"{metric_label(r.metric)} {arrow(r.metric)}" for r in rankings])
    for method in methods:
        row = [Cell(method)]
        for r in rankings:
            if method not in r.mean_rank:
                row.append(Cell("–"))
                continue
            best = r.methods[0]
            tied = method == best or not r.different(best, method)
            row.append(Cell(f"{r.mean_rank[method]:.2f}", bold=tied, value=r.mean_rank[method]))
        table.rows.append(row)
    for r in rankings:
        found = [f"{a} vs {b} (p_Holm = {format_p(v['p_holm'])})" for (a, b), v in r.pairs.items() if v["different"]]
        table.notes.append(
            f"{metric_label(r.metric)}: Friedman chi² = {r.friedman_statistic:.3f}, p = {format_p(r.friedman_p)} over "
            f"{len(r.suites)} suites and {len(r.methods)} methods; Wilcoxon signed-rank pairs different after Holm: "
            + (", ".join(found) if found else "none"))
    table.notes += notes
    table.notes.append("Bold: the best mean rank and every method no Wilcoxon-Holm test separates from it. Ranks per "
                       "suite from each run's mean over seeds; Friedman's test and pairwise Wilcoxon signed-rank tests "
                       "with Holm's correction, as Benavoli, Corani & Mangili (JMLR 2016) recommend over Nemenyi's "
                       "test. With few suites no pair can reach significance (Wilcoxon's smallest two-sided p with "
                       "n suites is 2 / 2^n).")
    return table, rankings
