"""``bench report RUN``: one self-contained HTML file (figures embedded) from a run folder.

Sections: summary table with CIs; a bar chart per metric; fidelity vs. downstream scatter;
qualitative grid; AU-GAN uncertainty maps; per-class IoU (and AP) heat maps; training curves;
the manifest. Figures are also left in ``<run>/figures/`` as PNG and PDF for papers. Numbers
come only from ``metrics.csv``: the report never recomputes a metric.
"""

from __future__ import annotations

import base64
import json
import math
from dataclasses import dataclass, field
from html import escape
from pathlib import Path

import numpy as np

from bench.atomic import atomic_write_text
from bench.metrics import METRICS, metric_label
from bench.report import figures
from bench.report.compare import compare_table
from bench.report.render import to_html
from bench.report.tables import task_of, weak_tasks
from bench.report.runs import RunResults, load_run
from bench.results import REFERENCE_ROW

FIDELITY_ORDER = ("fid", "fd-dinov2", "kid", "fd-synthseg", "lpips", "psnr")  # x axis of the scatter: first present
DOWNSTREAM_ORDER = ("miou", "map")


@dataclass
class Section:
    title: str
    body: str = ""
    grid: bool = False  # small figures side by side
    images: list[tuple[Path, str]] = field(default_factory=list)  # (png, caption)


def build_report(run_dir: Path, out: Path | None = None, uncertainty_rows: int = 3, device: str = "cpu") -> Path:
    run = load_run(run_dir)
    fig_dir = run.path / "figures"
    sections = [
        Section("Summary", to_html(compare_table([run]))),
        _bars(run, fig_dir),
        _scatter(run, fig_dir),
        _qualitative(run, fig_dir),
        _uncertainty(run, fig_dir, uncertainty_rows, device),
        _heatmaps(run, fig_dir),
        _curves(run, fig_dir),
        Section("Manifest", _manifest_html(run)),
    ]
    target = Path(out) if out is not None else run.path / "report.html"
    atomic_write_text(target, _page(run, sections))
    return target


def _compared(run: RunResults) -> list[str]:
    return [m for m in run.methods if m != REFERENCE_ROW]


def _bars(run: RunResults, fig_dir: Path) -> Section:
    sec = Section("Metrics per method", grid=True)
    weak = weak_tasks(run.agg)
    for metric in run.metrics():
        methods = run.methods if METRICS[metric].needs in ("labels", "boxes") else _compared(run)
        if not any(not math.isnan(run.value(m, metric)) for m in methods):
            continue
        png = fig_dir / f"bars_{metric}.png"
        title = f"{run.suite}: {metric_label(metric)}"
        if any(run.is_substitute(m, metric) for m in methods):
            title += " [SUBSTITUTE weights: not the real metric]"
        if task_of(metric) in weak:
            title += "\n[too weak to rank methods: see the table's notes]"
        figures.metric_bars(run.agg, methods, metric, png, title=title)
        sec.images.append((png, f"{METRICS[metric].description}. Error bars: std over seeds (several seeds) or "
                                f"95% bootstrap CI over test images (one seed)."))
    if not sec.images:
        sec.body = "<p>No metric has a value in this run.</p>"
    return sec


def _first_with_values(run: RunResults, order: tuple[str, ...]) -> str | None:
    return next((m for m in order if any(not math.isnan(run.value(x, m)) for x in _compared(run))), None)


def _scatter(run: RunResults, fig_dir: Path) -> Section:
    sec = Section("Fidelity vs. downstream accuracy")
    x, y = _first_with_values(run, FIDELITY_ORDER), _first_with_values(run, DOWNSTREAM_ORDER)
    if x is None or y is None:
        missing = "a fidelity metric" if x is None else "a downstream metric"
        sec.body = f"<p>No scatter: this run has no values for {missing}.</p>"
        return sec
    png = fig_dir / f"scatter_{x}_vs_{y}.png"
    substitute = any(run.is_substitute(m, metric) for m in _compared(run) for metric in (x, y))
    notes = ["SUBSTITUTE weights: not the real metric"] if substitute else []
    if task_of(y) in weak_tasks(run.agg):
        notes.append(f"{metric_label(y)}: too weak to rank methods")
    figures.fidelity_vs_downstream(run.agg, _compared(run), x, y, png, note="; ".join(notes))
    sec.images.append((png, f"Each method's {metric_label(x)} against its {metric_label(y)}; error bars as in the "
                            "bar charts. Does better image statistics mean better downstream accuracy?"))
    return sec


def _qualitative(run: RunResults, fig_dir: Path) -> Section:
    sec = Section("Qualitative results")
    png = fig_dir / "qualitative.png"
    if png.is_file():
        sec.images.append((png, "Test images: the adverse input, each method's translation (first seed), the day "
                                "image where the suite has one."))
    else:
        sec.body = "<p>The run has no qualitative grid yet (it is written when `bench run` finishes).</p>"
    return sec


def _uncertainty(run: RunResults, fig_dir: Path, n_rows: int, device: str) -> Section:
    """Sigma maps of every method that offers ``uncertainty`` (AU-GAN), from its saved checkpoint."""
    import torch
    from bench.data.io import read_rgb, to_tensor, to_uint8
    from bench.translator import build_translator, load_checkpoint, method_info

    sec = Section("Uncertainty maps")
    inputs = [Path(p) for p in run.manifest.qualitative.get("inputs", [])]
    if not inputs and run.manifest.suite_root:  # runs written before the manifest named them
        inputs = sorted((Path(run.manifest.suite_root) / "testA").glob("*.png"))
    inputs = [p for p in inputs if p.is_file()][:n_rows]
    skipped = []
    rows: list[dict] = [{"input": p} for p in inputs]
    columns = ["input"]
    for method in _compared(run):
        try:
            learned = method_info(method).learned
        except LookupError:
            continue
        cells = run.cell_dirs(method)
        if not learned or not cells or not inputs:
            continue
        ckpt = cells[0] / "checkpoint.safetensors"
        try:
            translator = build_translator(method, preset=run.manifest.preset or "quick",
                                          device=device)
        except Exception as exc:  # a method that cannot be built here is reported, not fatal to the report
            skipped.append(f"{method}: cannot be built here ({exc})")
            continue
        if not callable(getattr(translator, "uncertainty", None)) or not ckpt.is_file():
            continue
        load_checkpoint(translator, ckpt)
        with torch.no_grad():
            try:
                for row, path in zip(rows, inputs):
                    x = to_tensor(read_rgb(path)).unsqueeze(0).to(device)
                    row[method] = to_uint8(translator.translate(x)[0])
                    row[f"{method} σ"] = translator.uncertainty(x)[0, 0].float().cpu().numpy()
            except ValueError as exc:  # e.g. the no-uncertainty ablation
                skipped.append(f"{method}: {exc}")
                continue
        columns += [method, f"{method} σ"]
    if len(columns) == 1:
        why = "no method of this run offers uncertainty maps" if inputs else "the run's test inputs are not on disk"
        sec.body = f"<p>None: {escape(why)}.</p>"
    else:
        png = fig_dir / "uncertainty.png"
        figures.image_grid(rows, columns, png, cmaps={c: "viridis" for c in columns if c.endswith("σ")})
        sec.images.append((png, "Per-pixel σ of the uncertainty-aware cycle loss (bright = the model expects its "
                                "A→B→A cycle to fail there), scaled to each image's range, beside the translation."))
    if skipped:
        sec.body += "<ul>" + "".join(f"<li>{escape(s)}</li>" for s in skipped) + "</ul>"
    return sec


def _heatmaps(run: RunResults, fig_dir: Path) -> Section:
    sec = Section("Per-class accuracy")
    for prefix, name, measure in (("iou/", "class_iou", "IoU"), ("ap/", "class_ap", "AP")):
        title = f"Per-class {measure} (%)"
        classes = list(dict.fromkeys(r.metric[len(prefix):] for r in run.records if r.metric.startswith(prefix)))
        methods = [m for m in run.methods if any((m, prefix + c) in run.agg for c in classes)]
        if not classes or not methods:
            continue
        values = np.array([[run.value(m, prefix + c) for c in classes] for m in methods], dtype=float)
        png = fig_dir / f"{name}.png"
        figures.class_heatmap(values, methods, classes, png, measure, title=f"{run.suite}: {title}")
        sec.images.append((png, f"{title} of the downstream model on each method's translations (mean over seeds)."))
    if not sec.images:
        sec.body = "<p>This run has no per-class scores (the suite has no labels or boxes).</p>"
    return sec


def _curves(run: RunResults, fig_dir: Path) -> Section:
    sec = Section("Training curves")
    logs = {}
    for method in _compared(run):
        for cell in run.cell_dirs(method)[:1]:
            log = cell / "train" / "train_log.jsonl"
            if log.is_file():
                logs[method] = figures.read_train_log(log)
    logs = {m: s for m, s in logs.items() if s}
    if not logs:
        sec.body = "<p>No training logs: no learned method was trained in this run (loaded checkpoints log nothing).</p>"
        return sec
    png = fig_dir / "training_curves.png"
    figures.training_curves(logs, png)
    sec.images.append((png, "Loss terms per logged step (first seed); faint: as logged, solid: running mean."))
    curves, chosen = {}, {}
    for method in logs:
        cell = run.cell_dirs(method)[0]
        val = cell / "train" / "validation.jsonl"
        if val.is_file() and (series := figures.read_train_log(val)):
            curves[method] = series
        selection = cell / "train" / "selection.json"
        if selection.is_file():
            s = json.loads(selection.read_text())
            chosen[method] = (s["metric"], s["step"])
    if curves:
        png = fig_dir / "validation_curves.png"
        figures.validation_curves(curves, chosen, png)
        sec.images.append((png, "Scores on the validation split during training (first seed; never the test split); "
                                "a ring marks the checkpoint a --select rule chose and the tables score."))
    return sec


def _manifest_html(run: RunResults) -> str:
    m = run.manifest
    facts = [("suite", m.suite or run.suite), ("preset", m.preset), ("seeds", ", ".join(map(str, m.seeds))),
             ("device", m.device_name), ("image size", "x".join(map(str, m.image_size))),
             ("test images", "" if m.n_test is None else m.n_test), ("git commit", m.git_commit or "unknown"),
             ("started", m.started), ("finished", m.finished)]
    facts += [(f"version: {k}", v) for k, v in m.versions.items()]
    facts += [(f"weights: {k}", v) for k, v in m.weights.items()]
    rows = "".join(f"<tr><th>{escape(str(k))}</th><td>{escape(str(v))}</td></tr>" for k, v in facts)
    full = escape(json.dumps(m.to_dict(), indent=2, sort_keys=True))
    return (f'<table class="manifest"><caption>Manifest</caption><tbody>{rows}</tbody></table>'
            f"<details><summary>manifest.json</summary><pre>{full}</pre></details>")


_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;color:#222}
h1{font-size:1.5em} h2{font-size:1.2em;border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:2em}
table{border-collapse:collapse;margin:1em 0;font-size:.85em} caption{text-align:left;font-weight:600;padding:.3em 0}
th,td{border-bottom:1px solid #ddd;padding:.25em .6em;text-align:right} td:first-child,th:first-child{text-align:left}
thead th{border-bottom:2px solid #333} .notes{font-size:.8em;color:#555}
figure{margin:1.5em 0} figure img{max-width:100%;border:1px solid #eee} figcaption{font-size:.85em;color:#444}
.grid figure{display:inline-block;vertical-align:top;width:48%;margin:1em 1% 1em 0}
pre{font-size:.75em;background:#f6f6f6;padding:1em;overflow:auto}
"""


def _img(path: Path, alt: str) -> str:
    data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
    return f'<img src="data:image/png;base64,{data}" alt="{escape(alt)}">'


def _page(run: RunResults, sections: list[Section]) -> str:
    toc = "".join(f'<li><a href="#s{i}">{escape(s.title)}</a></li>' for i, s in enumerate(sections))
    parts = [f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>augan-bench report: "
             f"{escape(run.label)}</title><style>{_CSS}</style></head><body>",
             f"<h1>augan-bench report: {escape(run.label)}</h1>",
             f"<p>Run folder <code>{escape(str(run.path))}</code>. Figures also as PNG and PDF in "
             f"<code>figures/</code>.</p><ol>{toc}</ol>"]
    for i, s in enumerate(sections):
        parts.append(f'<section id="s{i}"{" class=grid" if s.grid else ""}><h2>{escape(s.title)}</h2>{s.body}')
        for png, caption in s.images:
            parts.append(f"<figure>{_img(png, png.stem)}<figcaption>{escape(caption)}</figcaption></figure>")
        parts.append("</section>")
    parts.append("</body></html>")
    return "\n".join(parts)
