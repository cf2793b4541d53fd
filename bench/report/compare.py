"""The summary table of one run, or several runs side by side: methods aligned by name, one column per (metric, run).

``tables/summary.md``, ``bench tables`` and the HTML report all show this table, so a run reads the same
everywhere: its header names the run and preset, the last columns give the gap recovered per downstream task,
and the notes say why a cell is skipped, which weights made the numbers and which checkpoint was scored.
"""

from __future__ import annotations

import math

from bench.metrics import METRICS, metric_label
from bench.metrics.bootstrap import LARGE_SET_RESAMPLES, N_RESAMPLES
from bench.report.render import Cell, Table
from bench.report.significance import MetricRanks, metric_ranks
from bench.report.runs import SUBSTITUTE_MARK, SUBSTITUTE_NOTE, RunResults
from bench.report.tables import (
    GAP_METRICS,
    LOWER_BOUND,
    external_notes,
    fid_size_note,
    format_value,
    gap_recovered,
    weak_tasks,
)
from bench.results import REFERENCE_ROW
from bench.errors import BenchError


class CompareError(BenchError, ValueError):
    pass


def compare_table(runs: list[RunResults], metrics: list[str] | None = None) -> Table:
    """Rows: every method of any run (identity first, upper bound last); a run lacking a method shows '–'.

    Cells are the mean over the run's seeds, ± the std over seeds when it has several, else the bootstrap
    CI over test images in brackets. The best compared method of each (metric, run) column is bold; the
    upper-bound row never is, nor any column of a downstream task too weak to rank methods. Gap recovered
    (per task, per run) is (method - identity) / (upper bound - identity).
    """
    if not runs:
        raise CompareError("give at least one run folder: bench tables --run results/<suite>/<name>")
    labels = _unique_labels(runs)
    present = list(dict.fromkeys(m for run in runs for m in run.metrics()))
    if metrics:
        unknown = [m for m in metrics if m not in present]
        if unknown:
            raise CompareError(f"metric(s) {', '.join(unknown)} in none of the runs; present: {', '.join(present)}")
    chosen = metrics or present
    methods = list(dict.fromkeys(m for run in runs for m in run.methods if m != REFERENCE_ROW))
    methods.sort(key=lambda m: m != "identity")
    if any(REFERENCE_ROW in run.methods for run in runs):
        methods.append(REFERENCE_ROW)
    weak = [weak_tasks(run.agg) for run in runs]
    # A task's gap column exists where some run has both bounds and can rank methods on it.
    gaps = [m for m in GAP_METRICS if m in chosen and any(_gap_defined(run, m, w) for run, w in zip(runs, weak))]

    single = len(runs) == 1
    if single:
        m = runs[0].manifest
        title = f"{labels[0]}: summary (preset {m.preset or '?'})"
    else:
        title = "Runs compared: " + ", ".join(labels)
    table = Table(title=title, columns=["method"])
    heads = [f"{metric_label(metric)} {METRICS[metric].arrow}" for metric in chosen]
    heads += [f"{GAP_METRICS[metric]} gap recovered ↑" for metric in gaps]
    for head in heads:
        if single:  # one run: the metric is the column, no run names in the header
            table.columns.append(head)
        else:
            table.groups.append((head, len(runs)))
            table.columns += labels
    ranks = {(metric, k): metric_ranks(run, metric, run.methods) for metric in chosen for k, run in enumerate(runs)}
    substitutes = False
    for method in methods:
        row = [Cell(f"{method} (upper bound)" if method == REFERENCE_ROW else method)]
        for metric in chosen:
            for k, run in enumerate(runs):
                cell = run.agg.get((method, metric))
                if cell is None:
                    row.append(Cell("–"))
                elif math.isnan(cell["mean"]):
                    row.append(Cell("skipped"))
                else:
                    flag = SUBSTITUTE_MARK if run.is_substitute(method, metric) else ""
                    substitutes |= bool(flag)
                    place = ranks[(metric, k)].ranks.get(method)
                    text = format_value(metric, cell) + flag + (f" #{place.rank}" if place and place.rank else "")
                    row.append(Cell(text, bool(place and place.bold), cell["mean"], place.rank if place else None))
        for metric in gaps:
            for run, w in zip(runs, weak):
                g = gap_recovered(run.agg, method, metric, REFERENCE_ROW) if _gap_defined(run, metric, w) else math.nan
                row.append(Cell("–") if math.isnan(g) else Cell(f"{g:.2f}", value=g))
        table.rows.append(row)
    for k, (label, run, run_weak) in enumerate(zip(labels, runs, weak)):
        table.notes += [(f"{label}: " if not single else "") + n for n in run_notes(run, chosen, run_weak)]
        table.notes += [(f"{label}: " if not single else "") + n
                        for n in rank_notes({metric: ranks[(metric, k)] for metric in chosen})]
    if substitutes:
        table.notes.append(SUBSTITUTE_NOTE)
    table.notes.append("↑ higher is better, ↓ lower is better. Mean over seeds ± std over seeds where a run has several, "
                       "else [95% bootstrap CI over test images]; '–' = not in that run, 'skipped' = not computed (the "
                       "reason is in the notes).")
    table.notes.append(RANK_NOTE)
    if gaps:
        table.notes.append(f"Gap recovered = (method − {LOWER_BOUND}) / ({REFERENCE_ROW} − {LOWER_BOUND}) in "
                           f"{' and '.join(GAP_METRICS[m] for m in gaps)}: 0 is the raw adverse input, 1 the day image.")
    return table


RANK_NOTE = (f"Bold: the best method and every method not significantly worse than it; #k: its rank, 1 + the number of "
             f"methods significantly better (ties share a rank). Significance: a paired bootstrap on the same "
             f"{N_RESAMPLES:,} resamples of the test images for every method (the metric recomputed on each; "
             f"{LARGE_SET_RESAMPLES} for FID-type metrics above 2,048 images), two-sided p = (c + 1) / (B + 1), "
             "Holm-corrected over every pair of methods in the column, at 0.05; with several seeds the resamples draw "
             "seeds too. `bench tables --vs METHOD` and `bench compare` print the differences and p-values.")


def rank_notes(ranks: dict[str, MetricRanks]) -> list[str]:
    """Why a column ranks nothing, or ranks some methods not, or falls back to the best mean."""
    notes, old, info = [], [], []
    for metric, r in ranks.items():
        if r.why == "information only":
            info.append(metric_label(metric))
        elif r.why == "no replicates":
            old.append(metric_label(metric))
        elif r.why == "cells of different protocols":
            notes.append(f"{metric_label(metric)}: cells scored on different protocols; nothing is ranked.")
        for method, why in (r.unranked or {}).items():
            notes.append(f"{metric_label(metric)}: {method} not ranked ({why}: a translation that shows the detector "
                         "less has fewer objects to invent, so its low share is no achievement).")
    if info:
        notes.append(f"{', '.join(info)}: information only, never bold or ranked (a translation that shows the detector "
                     "nothing would win it); hallucination share ranks invented objects per object reported.")
    if old:
        notes.append(f"{', '.join(old)}: some cells were scored before replicates were kept: bold is the best mean "
                     "alone, without a test (score them again with --force for rank groups).")
    return notes


def _gap_defined(run: RunResults, metric: str, weak: dict[str, str]) -> bool:
    return metric not in weak and not math.isnan(run.value(LOWER_BOUND, metric)) \
        and not math.isnan(run.value(REFERENCE_ROW, metric))


def run_notes(run: RunResults, metrics: list[str], weak: dict[str, str]) -> list[str]:
    """What a reader needs besides the cells: where the run is, its size, skip reasons, weights, scored checkpoints."""
    m = run.manifest
    seeds = sorted({r.seed for r in run.records if r.method != REFERENCE_ROW})
    if not m.image_size:
        size = "? images"
    elif all(m.image_size):
        size = "x".join(map(str, m.image_size)) + " images"
    else:  # 0 x 0: a folder suite at native size
        size = "images at their own sizes"
    notes = [f"Run folder {run.path}: preset {m.preset or '?'}, {size}, "
             f"{m.n_test if m.n_test is not None else '?'} test images, seeds {','.join(map(str, seeds)) or '?'}."]
    skipped: dict[str, list[str]] = {}
    for metric in metrics:
        for why in dict.fromkeys(run.skip_note(method, metric) for method in run.methods):
            if why:
                skipped.setdefault(why, []).append(metric_label(metric))
    notes += [f"{', '.join(names)} skipped: {why}" for why, names in skipped.items()]
    notes += [f"Data: {note}." for note in m.data_notes]
    extractors = sorted({r.extractor for r in run.records if r.extractor and r.metric in metrics})
    if extractors:
        notes.append("Weights: " + "; ".join(extractors) + ".")
    final = [method for method in run.methods if str(m.scored_checkpoint.get(method, "")).startswith("final")]
    if final:
        notes.append(f"{', '.join(final)}: scored at the final checkpoint (the last training step of the preset); "
                     "no checkpoint is chosen by a score on the test images.")
    for method in run.methods:
        rule = str(m.scored_checkpoint.get(method, ""))
        if rule.startswith("val:"):
            notes.append(f"{method}: scored at the checkpoint chosen by {rule}.")
    notes += external_notes(m.external)
    notes += [why + "." for why in weak.values()]
    if (fid_note := fid_size_note(run.records)) is not None:
        notes.append(fid_note)
    return notes


def _unique_labels(runs: list[RunResults]) -> list[str]:
    labels = [run.label for run in runs]
    if len(set(labels)) == len(labels):
        return labels
    return [str(run.path) for run in runs]
