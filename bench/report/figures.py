"""Figures for papers: matplotlib (Agg), every figure written atomically as PNG and PDF.

Print rules kept by every function here: a colour-blind-safe palette (Okabe-Ito, then Paul Tol's
"muted"), one colour per method everywhere (fixed by the method's place in the registry, so two
figures, or two runs, never swap colours), axis labels with units and an arrow with the better
direction, no information carried by colour alone (bars and points are labelled).
"""

from __future__ import annotations

import io
import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from bench.atomic import atomic_write_bytes  # noqa: E402
from bench.data.io import read_rgb  # noqa: E402
from bench.metrics import METRICS, metric_label  # noqa: E402

FIGURE_FORMATS = ("png", "pdf")
# Okabe & Ito (2008) without yellow (too light on white paper), then Paul Tol's muted scheme.
PALETTE = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#56B4E9", "#E69F00", "#000000",
           "#332288", "#882255", "#44AA99", "#999933", "#AA4499", "#117733", "#CC6677", "#88CCEE", "#DDCC77"]
FIXED_COLOURS = {"identity": "#9E9E9E", "day-twin": "#4D4D4D"}  # the two bounds: greys
HATCHES = ["", "//", "..", "xx"]  # beyond the palette, colours repeat with a hatch

plt.rcParams.update({"font.size": 9, "axes.titlesize": 10, "axes.labelsize": 9, "legend.fontsize": 8,
                     "xtick.labelsize": 8, "ytick.labelsize": 8, "pdf.fonttype": 42})


def save_figure(fig, path: Path, dpi: int = 200) -> list[Path]:
    """Write ``path`` with each suffix of FIGURE_FORMATS (``path``'s own suffix is replaced)."""
    written = []
    for fmt in FIGURE_FORMATS:
        buf = io.BytesIO()
        fig.savefig(buf, format=fmt, dpi=dpi, bbox_inches="tight", metadata=_metadata(fmt))
        target = Path(path).with_suffix("." + fmt)
        atomic_write_bytes(target, buf.getvalue())
        written.append(target)
    plt.close(fig)
    return written


def _metadata(fmt: str) -> dict:
    # No creation date: the same run gives byte-identical PDFs.
    return {"CreationDate": None} if fmt == "pdf" else {}


def method_style(method: str) -> tuple[str, str]:
    """(colour, hatch) of a method: fixed for the bounds, else by its rank in the registry."""
    if method in FIXED_COLOURS:
        return FIXED_COLOURS[method], ""
    from bench.translator import available_methods

    order = [m for m in available_methods() if m not in FIXED_COLOURS]
    if method in order:
        k = order.index(method)
    else:  # not registered here (a plugin absent on this machine): a stable slot after the registered ones
        k = len(order) + sum(map(ord, method))
    return PALETTE[k % len(PALETTE)], HATCHES[(k // len(PALETTE)) % len(HATCHES)]


def axis_label(metric: str) -> str:
    info = METRICS[metric]
    better = "higher is better" if info.higher_is_better else "lower is better"
    return f"{metric_label(metric, unit=True)}  {info.arrow} {better}"


def _error(cell: dict) -> tuple[float, float]:
    """(below, above) the mean: std over seeds where there are several, else the bootstrap CI, else none."""
    if cell["n_seeds"] > 1 and not math.isnan(cell["std"]):
        return cell["std"], cell["std"]
    lo, hi = cell["ci"]
    if math.isnan(lo) or math.isnan(hi):
        return 0.0, 0.0
    return max(cell["mean"] - lo, 0.0), max(hi - cell["mean"], 0.0)


def metric_bars(agg: dict, methods: list[str], metric: str, path: Path, title: str = "") -> list[Path]:
    """One bar per method (named on the axis) with its error bar."""
    cells = [(m, agg[(m, metric)]) for m in methods if (m, metric) in agg and not math.isnan(agg[(m, metric)]["mean"])]
    fig, ax = plt.subplots(figsize=(max(3.2, 0.42 * len(cells) + 1.2), 2.8))
    x = np.arange(len(cells))
    for i, (m, cell) in enumerate(cells):
        colour, hatch = method_style(m)
        below, above = _error(cell)
        ax.bar(i, cell["mean"], color=colour, hatch=hatch, edgecolor="black", linewidth=0.4,
               yerr=[[below], [above]], capsize=2.5, error_kw={"linewidth": 0.8})
    ax.set_xticks(x, [m for m, _ in cells], rotation=45, ha="right")
    ax.set_ylabel(axis_label(metric))
    ax.set_title(title or metric_label(metric))
    ax.spines[["top", "right"]].set_visible(False)
    ax.grid(axis="y", linewidth=0.3, alpha=0.6)
    ax.set_axisbelow(True)
    return save_figure(fig, path)


def fidelity_vs_downstream(agg: dict, methods: list[str], x_metric: str, y_metric: str, path: Path,
                           note: str = "") -> list[Path]:
    """Each method a labelled point with its error bars; the title names the better corner."""
    fig, ax = plt.subplots(figsize=(4.2, 3.4))
    for m in methods:
        cx, cy = agg.get((m, x_metric)), agg.get((m, y_metric))
        if cx is None or cy is None or math.isnan(cx["mean"]) or math.isnan(cy["mean"]):
            continue
        colour, _ = method_style(m)
        ex, ey = _error(cx), _error(cy)
        ax.errorbar(cx["mean"], cy["mean"], xerr=[[ex[0]], [ex[1]]], yerr=[[ey[0]], [ey[1]]], fmt="o",
                    color=colour, markeredgecolor="black", markeredgewidth=0.4, capsize=2, linewidth=0.8)
        ax.annotate(m, (cx["mean"], cy["mean"]), textcoords="offset points", xytext=(4, 3), fontsize=7)
    ax.set_xlabel(axis_label(x_metric))
    ax.set_ylabel(axis_label(y_metric))
    corner = ("top" if METRICS[y_metric].higher_is_better else "bottom") + " " + (
        "right" if METRICS[x_metric].higher_is_better else "left")
    ax.set_title(f"{metric_label(x_metric)} vs. {metric_label(y_metric)} (better: {corner})"
                 + (f"\n[{note}]" if note else ""))
    ax.spines[["top", "right"]].set_visible(False)
    ax.grid(linewidth=0.3, alpha=0.6)
    return save_figure(fig, path)


def class_heatmap(values: np.ndarray, methods: list[str], classes: list[str], path: Path, measure: str = "IoU",
                  title: str | None = None) -> list[Path]:
    """Methods x classes of ``measure`` (IoU or AP, in %), cividis (perceptually uniform, readable in greyscale),
    each value printed."""
    fig, ax = plt.subplots(figsize=(0.55 * len(classes) + 2.2, 0.32 * len(methods) + 1.4))
    im = ax.imshow(values, cmap="cividis", vmin=0, vmax=max(100.0, float(np.nanmax(values)) if values.size else 100),
                   aspect="auto")
    ax.set_xticks(range(len(classes)), classes, rotation=45, ha="right")
    ax.set_yticks(range(len(methods)), methods)
    for i in range(len(methods)):
        for j in range(len(classes)):
            v = values[i, j]
            text = "–" if math.isnan(v) else f"{v:.0f}"
            ax.text(j, i, text, ha="center", va="center", fontsize=6.5, color="black" if v > 55 else "white")
    fig.colorbar(im, ax=ax, label=f"{measure} (%)  ↑ higher is better", fraction=0.04)
    ax.set_title(title or f"Per-class {measure} (%)")
    return save_figure(fig, path)


def read_train_log(path: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """``train_log.jsonl`` (or ``validation.jsonl``) -> {loss or metric name: (steps, values)}; the learning rate,
    speed and memory columns are left out; unreadable lines (a killed write) are skipped."""
    from bench.training_log import NOT_LOSSES, read_jsonl

    series: dict[str, list[tuple[int, float]]] = {}
    for entry in read_jsonl(path):
        step = entry.get("step")
        for key, v in entry.items():
            if key != "step" and key not in NOT_LOSSES and isinstance(v, (int, float)) and step is not None:
                series.setdefault(key, []).append((int(step), float(v)))
    return {k: (np.array([s for s, _ in pts]), np.array([v for _, v in pts])) for k, pts in series.items()}


def _smooth(v: np.ndarray, window: int) -> np.ndarray:
    if window <= 1 or len(v) < window:
        return v
    kernel = np.ones(window) / window
    return np.convolve(np.pad(v, (window - 1, 0), mode="edge"), kernel, mode="valid")


def training_curves(logs: dict[str, dict[str, tuple[np.ndarray, np.ndarray]]], path: Path) -> list[Path]:
    """One panel per method: every logged loss term over steps (faint: raw, solid: running mean)."""
    names = [m for m, s in logs.items() if s]
    cols = min(3, max(1, len(names)))
    rows = math.ceil(len(names) / cols) if names else 1
    fig, axes = plt.subplots(rows, cols, figsize=(3.4 * cols, 2.4 * rows), squeeze=False)
    cmap = PALETTE
    for ax, method in zip(axes.flat, names):
        for k, (term, (steps, vals)) in enumerate(sorted(logs[method].items())):
            colour = cmap[k % len(cmap)]
            window = max(1, len(vals) // 25)
            ax.plot(steps, vals, color=colour, alpha=0.25, linewidth=0.6)
            ax.plot(steps, _smooth(vals, window), color=colour, linewidth=1.1, label=term)
        ax.set_title(method)
        ax.set_xlabel("training step")
        ax.set_ylabel("loss  ↓")
        ax.spines[["top", "right"]].set_visible(False)
        ax.legend(fontsize=6, ncol=2, frameon=False)
    for ax in list(axes.flat)[len(names):]:
        ax.axis("off")
    fig.tight_layout()
    return save_figure(fig, path)


def validation_curves(curves: dict[str, dict[str, tuple[np.ndarray, np.ndarray]]],
                      chosen: dict[str, tuple[str, int]], path: Path) -> list[Path]:
    """One panel per validation metric, a line per method; a ring marks the step a selection rule chose."""
    metrics = sorted({k for c in curves.values() for k in c})
    fig, axes = plt.subplots(1, len(metrics), figsize=(3.6 * len(metrics), 2.6), squeeze=False)
    for ax, metric in zip(axes.flat, metrics):
        for k, (method, series) in enumerate(curves.items()):
            if metric not in series:
                continue
            steps, vals = series[metric]
            colour = PALETTE[k % len(PALETTE)]
            ax.plot(steps, vals, color=colour, linewidth=1.1, marker=".", label=method)
            if chosen.get(method, ("", -1))[0] == metric.removeprefix("val/"):
                at = np.flatnonzero(steps == chosen[method][1])
                if at.size:
                    ax.plot(steps[at], vals[at], "o", markersize=9, markerfacecolor="none", color=colour)
        name = metric.removeprefix("val/")
        ax.set_title(f"validation {name}")
        ax.set_xlabel("training step")
        ax.set_ylabel(f"{name}  {'↑' if name == 'miou' else '↓'}")
        ax.spines[["top", "right"]].set_visible(False)
        ax.legend(fontsize=6, frameon=False)
    fig.tight_layout()
    return save_figure(fig, path)


def image_grid(rows: list[dict[str, Path | np.ndarray]], columns: list[str], path: Path,
               cmaps: dict[str, str] | None = None) -> list[Path]:
    """One row per test image, columns in ``columns`` order; a cell is a file or an array (maps get ``cmaps``)."""
    if not rows:
        return []
    cmaps = cmaps or {}

    def load(v):
        return read_rgb(v) if isinstance(v, (str, Path)) else v

    first = load(next(iter(rows[0].values())))
    aspect = first.shape[1] / first.shape[0]
    cell_w = 2.0
    fig, axes = plt.subplots(len(rows), len(columns), squeeze=False,
                             figsize=(cell_w * len(columns), cell_w / aspect * len(rows) + 0.4))
    for i, row in enumerate(rows):
        for j, col in enumerate(columns):
            ax = axes[i][j]
            ax.set_xticks([])
            ax.set_yticks([])
            if col in row:
                ax.imshow(load(row[col]), interpolation="nearest", cmap=cmaps.get(col))
            else:
                ax.text(0.5, 0.5, "n/a", ha="center", va="center", transform=ax.transAxes)
            if i == 0:
                ax.set_title(col, fontsize=8)
    fig.subplots_adjust(wspace=0.03, hspace=0.03)
    return save_figure(fig, path)


def critical_difference(ranking, path: Path) -> list[Path]:
    """A critical-difference diagram: methods on an axis of mean rank (best on the left), with a bar joining each
    run of methods that no Wilcoxon-Holm test tells apart (``bench.stats.across_suites.cliques``)."""
    from bench.stats.across_suites import cliques

    order = ranking.methods
    k = len(order)
    groups = cliques(ranking)
    height = 1.2 + 0.28 * (k + len(groups))
    fig, ax = plt.subplots(figsize=(6.4, height))
    ax.set_xlim(0.5, k + 0.5)
    ax.set_ylim(-(len(groups) + 1) * 0.25 - 0.3, (k + 1) * 0.28 + 0.3)
    ax.axhline(0, color="black", lw=1)
    for r in range(1, k + 1):
        ax.plot([r, r], [0, 0.08], color="black", lw=1)
        ax.text(r, 0.12, str(r), ha="center", va="bottom", fontsize=8)
    half = (k + 1) // 2
    for i, m in enumerate(order):
        x = ranking.mean_rank[m]
        left = i < half
        y = (i + 1) * 0.28 + 0.3 if left else (k - i) * 0.28 + 0.3
        end = 0.45 if left else k + 0.55
        colour, _ = method_style(m)
        ax.plot([x, x, end], [0, y, y], color=colour, lw=1.2)
        ax.text(end + (0.05 if left else -0.05), y, f"{m} ({x:.2f})", ha="right" if left else "left", va="center",
                fontsize=8)
    for g, group in enumerate(groups):
        xs = [ranking.mean_rank[m] for m in group]
        y = -(g + 1) * 0.25
        ax.plot([min(xs) - 0.03, max(xs) + 0.03], [y, y], color="black", lw=3, solid_capstyle="round")
    ax.axis("off")
    ax.set_title(f"{axis_label(ranking.metric)}: mean rank over {len(ranking.suites)} suites "
                 f"(Friedman p = {ranking.friedman_p:.3g}; bars: no Wilcoxon-Holm difference)", fontsize=9)
    return save_figure(fig, path)
