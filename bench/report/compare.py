"""Several runs side by side: methods aligned by name, one column per (metric, run)."""

from __future__ import annotations

import math

from bench.metrics import METRICS, metric_label
from bench.report.render import Cell, Table
from bench.report.runs import SUBSTITUTE_MARK, SUBSTITUTE_NOTE, RunResults
from bench.report.tables import best_methods, external_notes, fid_size_note, format_value, weak_tasks
from bench.results import REFERENCE_ROW
from bench.errors import BenchError


class CompareError(BenchError, ValueError):
    pass


def compare_table(runs: list[RunResults], metrics: list[str] | None = None) -> Table:
    """Rows: every method of any run (identity first, upper bound last); a run lacking a method shows '–'.

    Cells are the mean over the run's seeds, ± the std over seeds when it has several, else the bootstrap
    CI over test images in brackets (as in the run's own summary). The best compared
    method of each (metric, run) column is bold; the upper-bound row never is.
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

    single = len(runs) == 1
    table = Table(title=f"{labels[0]}: summary" if single else "Runs compared: " + ", ".join(labels),
                  columns=["method"])
    for metric in chosen:
        head = f"{metric_label(metric)} {METRICS[metric].arrow}"
        if single:  # one run: the metric is the column, no run names in the header
            table.columns.append(head)
        else:
            table.groups.append((head, len(runs)))
            table.columns += labels
    best = {(metric, k): best_methods(run.agg, [m for m in run.methods if m != REFERENCE_ROW], metric)
            for metric in chosen for k, run in enumerate(runs)}
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
                    row.append(Cell(format_value(metric, cell) + flag, method in best[(metric, k)], cell["mean"]))
        table.rows.append(row)
    for label, run in zip(labels, runs):
        m = run.manifest
        seeds = sorted({r.seed for r in run.records if r.method != REFERENCE_ROW})
        size = "x".join(str(v) for v in m.image_size) or "?"
        table.notes.append(f"{label}: {run.path}, preset {m.preset or '?'}, {size} images, "
                           f"{m.n_test if m.n_test is not None else '?'} test images, "
                           f"seeds {','.join(map(str, seeds)) or '?'}.")
        prefix = "" if single else f"{label}: "
        table.notes += [prefix + n for n in external_notes(m.external)]
        table.notes += [prefix + why + "." for why in weak_tasks(run.agg).values()]
        if (fid_note := fid_size_note(run.records)) is not None:
            table.notes.append(prefix + fid_note)
    if substitutes:
        table.notes.append(SUBSTITUTE_NOTE)
    table.notes.append("Mean over seeds ± std over seeds where a run has several, else [95% bootstrap CI over test "
                       "images]; best per column in bold; "
                       "'–' = not in that run, 'skipped' = its weights were missing (see the run's summary).")
    return table


def _unique_labels(runs: list[RunResults]) -> list[str]:
    labels = [run.label for run in runs]
    if len(set(labels)) == len(labels):
        return labels
    return [str(run.path) for run in runs]
