"""Figures, rendered with matplotlib (Agg) and written atomically as PNG."""

from __future__ import annotations

import io
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from bench.atomic import atomic_write_bytes  # noqa: E402
from bench.data.io import read_rgb  # noqa: E402


def save_figure(fig, path: Path, dpi: int = 150) -> None:
    buf = io.BytesIO()
    fig.savefig(buf, format=Path(path).suffix.lstrip(".") or "png", dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())


def qualitative_grid(rows: list[dict[str, Path]], columns: list[str], path: Path) -> None:
    """One row per test image; columns in ``columns`` order (e.g. input, each method, day twin)."""
    if not rows:
        return
    first = read_rgb(next(iter(rows[0].values())))
    aspect = first.shape[1] / first.shape[0]
    cell_w = 2.2
    fig, axes = plt.subplots(len(rows), len(columns), figsize=(cell_w * len(columns), cell_w / aspect * len(rows) + 0.4),
                             squeeze=False)
    for i, row in enumerate(rows):
        for j, col in enumerate(columns):
            ax = axes[i][j]
            ax.set_xticks([])
            ax.set_yticks([])
            if col in row:
                ax.imshow(read_rgb(row[col]), interpolation="nearest")
            else:
                ax.text(0.5, 0.5, "n/a", ha="center", va="center", transform=ax.transAxes)
            if i == 0:
                ax.set_title(col, fontsize=9)
    fig.subplots_adjust(wspace=0.03, hspace=0.03)
    save_figure(fig, path)
