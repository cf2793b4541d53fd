"""Tables, paper tables, figures and the HTML report, rendered from a small real run and checked by content."""

from __future__ import annotations

import csv
import io
import math
import shutil
import tomllib
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from bench.cli import main
from bench.report import figures
from bench.report.compare import compare_table
from bench.report.html import build_report
from bench.report.paper import PAPERS, PaperError, available_papers, load_paper, paper_table
from bench.report.render import render
from bench.report.runs import RunFolderError, load_run
from bench.results import read_metrics_csv
from bench.runner import RunConfig
from conftest import ARTIFACTS, headless_chromium

METHODS = ("identity", "gamma", "augan")  # a classical pair and a learned method with uncertainty maps


@pytest.fixture(scope="module")
def fixture_run(tmp_path_factory, run_with_test_weights):
    """synthetic-night smoke, AU-GAN over two seeds, with test weights (so FID exists, labelled SUBSTITUTE)."""
    out = tmp_path_factory.mktemp("results")
    summary = run_with_test_weights(RunConfig(preset="smoke", methods=METHODS, seeds=(0, 1), out=out, device="cpu"))
    other = run_with_test_weights(RunConfig(preset="smoke", methods=("identity", "clahe"), out=out, name="other",
                                            device="cpu"))
    return summary.run_dir, other.run_dir


def _means(run_dir: Path) -> dict[tuple[str, str], float]:
    groups: dict[tuple[str, str], list[float]] = {}
    for r in read_metrics_csv(run_dir / "metrics.csv"):
        groups.setdefault((r.method, r.metric), []).append(r.value)
    return {k: float(np.mean(v)) for k, v in groups.items()}


def _csv_rows(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text)))


# --- run tables ------------------------------------------------------------------------------------------------

def test_run_table_equals_metrics_csv_and_bolds_the_true_best(fixture_run):
    run_dir, _ = fixture_run
    loaded = load_run(run_dir)
    table = compare_table([loaded])
    means = _means(run_dir)
    rows = _csv_rows(render(table, "csv"))
    head, body = rows[0], {r[0]: r[1:] for r in rows[1:]}
    assert set(body) == {"identity", "gamma", "augan", "day-twin (upper bound)"}
    metric_of = {h: m for m in loaded.metrics() for h in head
                 if h.startswith(figures.metric_label(m) + " ") and "gap recovered" not in h}
    assert {"fid", "psnr", "miou", "map", "sift"} <= set(metric_of.values())
    for j, h in enumerate(head[1:]):
        if h not in metric_of:  # the gap-recovered columns, checked where the gaps are
            continue
        metric = metric_of[h]
        for method, cells in body.items():
            key = ("day-twin" if method.startswith("day-twin") else method, metric)
            if key in means and math.isnan(means[key]):  # no detector at smoke: a skipped record
                assert cells[j] == "skipped", (method, metric)
            elif key in means:
                assert float(cells[j]) == pytest.approx(means[key], rel=1e-12), (method, metric)
            else:
                assert cells[j] == "–"
    # AU-GAN ran two seeds: mean ± std over seeds, std equal to numpy's (ddof 1)
    md = render(table, "md")
    fid_cells = [ln.split("|")[2] for ln in md.splitlines() if ln.startswith("| ") and "---" not in ln][1:4]
    assert all("†" in c for c in fid_cells) and "SUBSTITUTE weights" in md
    augan_psnr = [r.value for r in read_metrics_csv(run_dir / "metrics.csv") if r.method == "augan" and r.metric == "psnr"]
    assert len(augan_psnr) == 2 and f"{np.mean(augan_psnr):.2f} ± {np.std(augan_psnr, ddof=1):.2f}" in md
    # the true best of the compared methods is bold and ranked first (never the upper bound; which others share
    # the bold is recomputed from the replicates in test_runner)
    lines = {ln.split("|")[1].strip(): [c.strip() for c in ln.split("|")[2:-1]]
             for ln in md.splitlines() if ln.startswith("| ") and "---" not in ln}
    for metric in ("psnr", "fid", "miou"):
        col = [h for h in head[1:] if metric_of.get(h) == metric][0]
        j = head[1:].index(col)
        vals = {m: means[(m, metric)] for m in METHODS}
        best = (max if figures.METRICS[metric].higher_is_better else min)(vals, key=vals.get)
        assert lines[best][j].startswith("**") and lines[best][j].rstrip("*").endswith("#1")
        assert not lines["day-twin (upper bound)"][j].startswith("**")


def test_the_scored_checkpoint_is_stated_in_the_manifest_and_the_table(fixture_run):
    """Learned methods are scored at their final checkpoint; the run says so (deterministic ones have none)."""
    from bench.results import read_manifest

    run_dir, other = fixture_run
    manifest = read_manifest(run_dir / "manifest.json")
    assert set(manifest.scored_checkpoint) == {"augan"} and manifest.scored_checkpoint["augan"].startswith("final")
    assert "- augan: scored at the final checkpoint" in (run_dir / "tables" / "summary.md").read_text()
    assert not read_manifest(other / "manifest.json").scored_checkpoint
    assert "final checkpoint" not in (other / "tables" / "summary.md").read_text()


def test_fid_on_fewer_images_than_its_dimensions_is_noted(fixture_run):
    """Smoke scores FID on 12 images: the run's table and bench tables both say the covariance is rank-deficient."""
    run_dir, _ = fixture_run
    says = "FID on 12 images, fewer than its 2048 feature dimensions: the covariance is rank-deficient"
    table = (run_dir / "tables" / "summary.md").read_text()
    assert says in table and "prefer KID" in table
    assert any(says in n for n in compare_table([load_run(run_dir)]).notes)


def test_comparing_runs_aligns_methods_and_marks_the_missing(fixture_run):
    a, b = fixture_run
    table = compare_table([load_run(a), load_run(b)], ["psnr", "miou"])
    rows = _csv_rows(render(table, "csv"))
    head = rows[0]
    assert head == ["method", f"PSNR ↑ synthetic-night/{a.name}", f"PSNR ↑ synthetic-night/{b.name}",
                    f"mIoU ↑ synthetic-night/{a.name}", f"mIoU ↑ synthetic-night/{b.name}",
                    f"mIoU gap recovered ↑ synthetic-night/{a.name}", f"mIoU gap recovered ↑ synthetic-night/{b.name}"]
    body = {r[0]: r[1:] for r in rows[1:]}
    assert list(body) == ["identity", "gamma", "augan", "clahe", "day-twin (upper bound)"]
    ma, mb = _means(a), _means(b)
    assert float(body["identity"][0]) == pytest.approx(ma[("identity", "psnr")])
    assert float(body["identity"][1]) == pytest.approx(mb[("identity", "psnr")])
    assert body["augan"][1] == "–" and body["clahe"][0] == "–"
    assert float(body["clahe"][3]) == pytest.approx(mb[("clahe", "miou")])
    # Each run's gap from its own bounds: (method - identity) / (day twin - identity).
    gap = (mb[("clahe", "miou")] - mb[("identity", "miou")]) / (mb[("day-twin", "miou")] - mb[("identity", "miou")])
    assert float(body["clahe"][5]) == pytest.approx(gap) and body["clahe"][4] == "–"
    tex = render(table, "tex")
    assert r"\toprule" in tex and r"\cmidrule(lr){2-3}" in tex and r"\multicolumn{2}{c}{PSNR $\uparrow$}" in tex
    with pytest.raises(ValueError, match="in none of the runs"):
        compare_table([load_run(a)], ["nonsense"])


def test_tables_cli_writes_three_formats(fixture_run, tmp_path):
    a, b = fixture_run
    res = CliRunner().invoke(main, ["tables", "--run", str(a), "--run", str(b), "--metrics", "psnr",
                                    "--format", "tex", "--out", str(tmp_path)])
    assert res.exit_code == 0, res.output
    assert res.stdout.startswith(r"\begin{table}")
    for fmt in ("md", "tex", "csv"):
        assert (tmp_path / f"comparison.{fmt}").is_file()
    assert (tmp_path / "comparison.tex").read_text() == res.stdout


def test_one_table_everywhere_summary_md_bench_tables_and_the_report(fixture_run, report):
    """The run's summary.md is what `bench tables --run` prints, and the report shows the same cells and notes:
    run and preset in the header, gap recovered, the skip reasons."""
    run_dir, _ = fixture_run
    summary = (run_dir / "tables" / "summary.md").read_text()
    res = CliRunner().invoke(main, ["tables", "--run", str(run_dir)])
    assert res.exit_code == 0, res.output
    assert res.stdout == summary
    assert summary.startswith(f"### synthetic-night/{run_dir.name}: summary (preset smoke)")
    assert "mIoU gap recovered ↑" in summary and "skipped: " in summary
    html = report[0].read_text()
    import html as html_lib

    table = compare_table([load_run(run_dir)])
    for row in table.rows:
        for cell in row:
            assert html_lib.escape(cell.text) in html, cell.text
    assert all(html_lib.escape(note) in html for note in table.notes)


def test_a_folder_that_is_not_a_run_gets_a_clear_error(fixture_run, tmp_path):
    res = CliRunner().invoke(main, ["tables", "--run", str(tmp_path)])
    assert res.exit_code == 2 and "not a run folder: metrics.csv is missing" in res.output
    res = CliRunner().invoke(main, ["report", str(fixture_run[0].parent)])
    assert res.exit_code == 2 and "it holds run folders" in res.output and "Traceback" not in res.output
    with pytest.raises(RunFolderError, match="no such run folder"):
        load_run(tmp_path / "nowhere")


def test_a_truncated_metrics_file_is_refused_not_shown_in_part(fixture_run, tmp_path):
    """Before: a metrics.csv cut short rendered as a partial table with exit 0 (or a TypeError traceback)."""
    run = tmp_path / "run"
    shutil.copytree(fixture_run[1], run)
    text = (run / "metrics.csv").read_text()
    (run / "metrics.csv").write_text(text[: len(text) // 2])  # cut inside a row
    res = CliRunner().invoke(main, ["tables", "--run", str(run)])
    assert res.exit_code == 2 and "metrics.csv: damaged" in res.output and "cut short" in res.output
    assert "re-create it with `bench run`" in res.output and "Traceback" not in res.output
    lines = text.splitlines()
    (run / "metrics.csv").write_text("\n".join([*lines[:3], lines[3].rsplit(",", 4)[0], *lines[4:]]) + "\n")
    res = CliRunner().invoke(main, ["tables", "--run", str(run)])
    assert res.exit_code == 2 and "line 4 has fewer fields than the header" in res.output


# --- paper tables ----------------------------------------------------------------------------------------------

def test_published_tables_are_on_file_as_printed():
    n2d3 = load_paper("n2d3-table1")
    assert len(n2d3.rows) == 19 and len(n2d3.columns) == 6
    row = {r.method: r for r in n2d3.rows}
    assert row["N2D3"].values[("bdd100k", "fid")] == 31.5 and row["CUT"].values[("alderley", "sift")] == 6.78
    assert row["ForkGAN"].values[("alderley", "lpips")] == 0.759 and ("alderley", "lpips") not in row["AU-GAN"].values
    assert row["Original (no translation)"].ours == "identity" and row["StarGAN"].ours is None
    assert row["MoNCE"].ours == "monce"
    from bench.translator import available_methods

    assert {r.ours for r in n2d3.rows if r.ours} <= set(available_methods())
    augan = load_paper("augan-bmvc21")
    (only,) = augan.rows
    # the AU-GAN file and N2D3's reprint agree
    assert only.values == {k: v for k, v in row["AU-GAN"].values.items()}
    assert set(available_papers()) >= {"n2d3-table1", "augan-bmvc21"}


def _write_paper(path: Path, fid_reported: float = 50.0) -> Path:
    path.write_text(f"""
id = "toy"
title = "A toy table"
source = "made up in the test"
[suites.syn]
label = "Synthetic night"
suite = "synthetic-night"
protocol = "the source's protocol text"
[suites.real]
label = "BDD"
suite = "bdd100k-night"
protocol = "another protocol"
[[columns]]
suite = "syn"
metric = "psnr"
[[columns]]
suite = "syn"
metric = "fid"
[[columns]]
suite = "real"
metric = "fid"
[[rows]]
method = "Identity"
ours = "identity"
syn = {{ psnr = 10.0, fid = {fid_reported} }}
real = {{ fid = 101 }}
[[rows]]
method = "AU-GAN"
ours = "augan"
syn = {{ psnr = 30.0 }}
[[rows]]
method = "CycleGAN"
ours = "cyclegan"
syn = {{ psnr = 20.0 }}
[[rows]]
method = "Nobody"
syn = {{ psnr = 5.0 }}
""")
    return path


def test_paper_table_sets_reported_beside_reproduced_and_says_why_cells_are_empty(fixture_run, tmp_path):
    run_dir, _ = fixture_run
    paper = load_paper(str(_write_paper(tmp_path / "toy.toml")))
    table = paper_table(paper, [load_run(run_dir)])
    means = _means(run_dir)
    rows = {r[0]: r[1:] for r in _csv_rows(render(table, "csv"))[1:]}
    # columns: (reported, ours, Δ) for syn psnr, syn fid, real fid
    ident = rows["Identity"]
    assert float(ident[0]) == 10.0 and float(ident[1]) == pytest.approx(means[("identity", "psnr")])
    assert float(ident[2]) == pytest.approx(means[("identity", "psnr")] - 10.0)
    assert float(ident[4]) == pytest.approx(means[("identity", "fid")])  # substitute weights: still the number...
    assert ident[6] == "101.0" and ident[7] == "suite not run"
    assert rows["AU-GAN (augan)"][1] != "" and float(rows["AU-GAN (augan)"][1]) == pytest.approx(means[("augan", "psnr")])
    assert rows["CycleGAN"][1] == "method not run" and rows["Nobody"][1] == "not implemented"
    md = render(table, "md")
    assert "†" in md and "SUBSTITUTE weights" in md  # ...but marked as not the real metric
    assert "Synthetic night, source protocol: the source's protocol text." in md
    assert "BDD, reproduced: suite bdd100k-night not run" in md
    assert "Synthetic night, reproduced: run synthetic-night/smoke, 64x128 images, 12 test images, preset smoke, " \
        "seeds 0,1, FID: " in md
    # bold: best reported (AU-GAN's 30) and best reproduced psnr
    line = next(ln for ln in md.splitlines() if ln.startswith("| AU-GAN"))
    assert "**30**" in line
    best = max(("identity", "augan"), key=lambda m: means[(m, "psnr")])
    bold_row = next(ln for ln in md.splitlines() if ln.startswith("| ") and f"**{means[(best, 'psnr')]:.2f}**" in ln)
    assert bold_row.split("|")[1].strip().lower().startswith({"identity": "identity", "augan": "au-gan"}[best])
    assert r"\textbf{30}" in render(table, "tex")


def test_a_run_without_weights_says_weights_missing(fixture_run, tmp_path):
    run_dir, _ = fixture_run
    copy = tmp_path / "synthetic-night" / "noweights"
    shutil.copytree(run_dir, copy, ignore=shutil.ignore_patterns("cells", "figures"))
    text = (copy / "metrics.csv").read_text().splitlines()
    cols = text[0].split(",")
    out = [text[0]]
    for ln in text[1:]:  # the row a run without Inception weights writes: empty value, the note says why
        cells = next(csv.reader([ln]))
        if cells[cols.index("metric")] == "fid":
            cells[cols.index("value")] = ""
            cells[cols.index("note")] = "Inception weights missing: pt_inception-2015-12-05-6726825d.pth"
        buf = io.StringIO()
        csv.writer(buf, lineterminator="").writerow(cells)
        out.append(buf.getvalue())
    (copy / "metrics.csv").write_text("\n".join(out) + "\n")
    table = paper_table(load_paper(str(_write_paper(tmp_path / "toy.toml"))), [load_run(copy)])
    rows = {r[0]: r[1:] for r in _csv_rows(render(table, "csv"))[1:]}
    assert rows["Identity"][4] == "weights missing"


def test_paper_cli_and_malformed_paper_files(fixture_run, tmp_path):
    res = CliRunner().invoke(main, ["tables", "--paper", "n2d3-table1", "--run", str(fixture_run[0])])
    assert res.exit_code == 0, res.output
    assert "| N2D3 | **50.9** | not implemented | – |" in res.stdout
    assert "matches no column of this table" in res.stdout  # a synthetic run is not Alderley or BDD100K
    res = CliRunner().invoke(main, ["tables", "--paper", "list"])
    assert "augan-bmvc21" in res.stdout and "n2d3-table1" in res.stdout
    res = CliRunner().invoke(main, ["tables", "--paper", "nope", "--run", str(fixture_run[0])])
    assert res.exit_code == 2 and "unknown paper 'nope'" in res.output and "n2d3-table1" in res.output
    bad = tmp_path / "bad.toml"
    bad.write_text(_write_paper(tmp_path / "x.toml").read_text().replace('metric = "fid"', 'metric = "fidd"', 1))
    with pytest.raises(PaperError, match=r"bad.toml: \[\[columns\]\] #2 names metric 'fidd'"):
        load_paper(str(bad))
    bad.write_text(_write_paper(tmp_path / "x.toml").read_text().replace("psnr = 5.0", 'psnr = "five"'))
    with pytest.raises(PaperError, match=r"\[\[rows\]\] #4 syn.psnr should be a number"):
        load_paper(str(bad))
    two = [load_run(fixture_run[0]), load_run(fixture_run[1])]
    with pytest.raises(PaperError, match="two runs of suite synthetic-night"):
        paper_table(load_paper(str(_write_paper(tmp_path / "toy.toml"))), two)


def test_every_paper_file_parses():
    for name in available_papers():
        paper = load_paper(name)
        assert paper.id == name and paper.rows and paper.source
        tomllib.loads(PAPERS.joinpath(f"{name}.toml").read_text(encoding="utf-8"))


# --- figures ---------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def report(fixture_run):
    """Build the report once, keeping every matplotlib figure it saves for inspection."""
    run_dir, _ = fixture_run
    saved: dict[str, object] = {}
    original = figures.save_figure

    def keep(fig, path, dpi=200):
        saved[Path(path).stem] = fig
        return original(fig, path, dpi)

    mp = pytest.MonkeyPatch()
    mp.setattr(figures, "save_figure", keep)
    try:
        html = build_report(run_dir, uncertainty_rows=2, device="cpu")
    finally:
        mp.undo()
    return html, saved


def test_bar_charts_show_the_metrics_csv_numbers_with_their_error_bars(fixture_run, report):
    run_dir, _ = fixture_run
    _, saved = report
    means = _means(run_dir)
    records = read_metrics_csv(run_dir / "metrics.csv")
    for metric in ("psnr", "miou", "fid"):
        ax = saved[f"bars_{metric}"].axes[0]
        names = [t.get_text() for t in ax.get_xticklabels()]
        expected = ["identity", "gamma", "augan"] + (["day-twin"] if metric == "miou" else [])
        assert names == expected
        heights = [p.get_height() for p in ax.patches]
        assert heights == pytest.approx([means[(m, metric)] for m in expected], rel=1e-9)
        assert figures.metric_label(metric) in ax.get_ylabel() and ("↑" in ax.get_ylabel() or "↓" in ax.get_ylabel())
        # identity ran once: its error bar is the bootstrap CI; AU-GAN's is the std over its two seeds
        ident = next(r for r in records if r.method == "identity" and r.metric == metric)
        segs = [c for c in ax.containers if hasattr(c, "errorbar") and c.errorbar is not None]
        lo, hi = segs[0].errorbar.lines[2][0].get_segments()[0][:, 1]
        assert (lo, hi) == pytest.approx((ident.ci_low, ident.ci_high), rel=1e-9)
        vals = [r.value for r in records if r.method == "augan" and r.metric == metric]
        lo, hi = segs[2].errorbar.lines[2][0].get_segments()[0][:, 1]
        assert hi - lo == pytest.approx(2 * np.std(vals, ddof=1), rel=1e-9)
    assert "SUBSTITUTE" in saved["bars_fid"].axes[0].get_title()  # test weights: labelled, never the real FID
    assert "SUBSTITUTE" not in saved["bars_psnr"].axes[0].get_title()
    for stem in ("bars_psnr", "scatter_fid_vs_miou", "class_iou", "training_curves", "uncertainty", "qualitative"):
        assert (run_dir / "figures" / f"{stem}.png").is_file() and (run_dir / "figures" / f"{stem}.pdf").is_file()


def test_colours_are_the_same_method_for_method_across_figures(report):
    _, saved = report
    bars = {t.get_text(): p.get_facecolor() for t, p in zip(saved["bars_psnr"].axes[0].get_xticklabels(),
                                                            saved["bars_psnr"].axes[0].patches)}
    bars2 = {t.get_text(): p.get_facecolor() for t, p in zip(saved["bars_miou"].axes[0].get_xticklabels(),
                                                             saved["bars_miou"].axes[0].patches)}
    assert bars["augan"] == bars2["augan"] and bars["gamma"] == bars2["gamma"]
    assert len({bars[m] for m in bars}) == len(bars)  # distinct
    import matplotlib.colors as mcolors

    assert mcolors.to_hex(bars["augan"][:3]) in [c.lower() for c in figures.PALETTE]


def test_scatter_heatmap_curves_and_uncertainty_hold_the_run_data(fixture_run, report):
    run_dir, _ = fixture_run
    _, saved = report
    means = _means(run_dir)
    ax = saved["scatter_fid_vs_miou"].axes[0]
    points = {t.get_text(): t.xy for t in ax.texts}
    assert set(points) == {"identity", "gamma", "augan"}
    for m, (x, y) in points.items():
        assert (x, y) == pytest.approx((means[(m, "fid")], means[(m, "miou")]), rel=1e-9)
    assert "lower is better" in ax.get_xlabel() and "higher is better" in ax.get_ylabel() and "top left" in ax.get_title()

    ax = saved["class_iou"].axes[0]
    classes = [t.get_text() for t in ax.get_xticklabels()]
    methods = [t.get_text() for t in ax.get_yticklabels()]
    assert methods == ["identity", "gamma", "augan", "day-twin"]
    grid = ax.images[0].get_array()
    for i, m in enumerate(methods):
        for j, c in enumerate(classes):
            v = means[(m, f"iou/{c}")]
            assert (math.isnan(v) and np.ma.is_masked(grid[i, j])) or grid[i, j] == pytest.approx(v)
    assert saved["class_iou"].axes[1].get_ylabel().startswith("IoU (%)")  # the colour bar names the measure

    fig = saved["training_curves"]
    (ax,) = [a for a in fig.axes if a.get_title() == "augan"]
    log = figures.read_train_log(run_dir / "cells" / "augan" / "seed0" / "train" / "train_log.jsonl")
    raw = {ln.get_label(): ln for ln in ax.lines if not ln.get_label().startswith("_")}
    assert set(raw) == set(log)
    steps, vals = log["g_total"]
    faint = [ln for ln in ax.lines if ln.get_label().startswith("_") and np.array_equal(ln.get_ydata(), vals)]
    assert faint and np.array_equal(faint[0].get_xdata(), steps)

    fig = saved["uncertainty"]
    titles = [a.get_title() for a in fig.axes if a.get_title()]
    assert titles == ["input", "augan", "augan σ"] and len(fig.axes) == 2 * 3
    sigma = fig.axes[2].images[0].get_array()
    assert sigma.ndim == 2 and float(np.asarray(sigma).min()) > 0  # a softplus-positive sigma map


# --- the HTML report -------------------------------------------------------------------------------------------

def test_the_ap_heat_map_says_ap(tmp_path, monkeypatch):
    saved = []
    monkeypatch.setattr(figures, "save_figure", lambda fig, path, dpi=200: saved.append(fig) or [path])
    figures.class_heatmap(np.array([[10.0, 20.0]]), ["clahe"], ["car", "person"], tmp_path / "ap.png", "AP")
    colour_bar = saved[0].axes[1]
    assert colour_bar.get_ylabel().startswith("AP (%)") and saved[0].axes[0].get_title() == "Per-class AP (%)"


def test_report_html_is_self_contained_and_complete(fixture_run, report):
    run_dir, _ = fixture_run
    html_path, _ = report
    assert html_path == run_dir / "report.html"
    html = html_path.read_text()
    assert 'src="http' not in html and "src='http" not in html and 'href="http' not in html
    for title in ("Summary", "Metrics per method", "Fidelity vs. downstream accuracy", "Qualitative results",
                  "Uncertainty maps", "Per-class accuracy", "Training curves", "Manifest"):
        assert f"<h2>{title}</h2>" in html
    means = _means(run_dir)
    for method in METHODS:  # the summary table's numbers, as in metrics.csv
        assert f"{means[(method, 'psnr')]:.2f} [" in html or f"{means[(method, 'psnr')]:.2f} ± " in html
    assert "SUBSTITUTE" in html  # the manifest's weights ids show the test weights as substitutes


def test_report_opens_in_headless_chromium_with_every_table_and_image_loaded(report):
    html_path, saved = report
    browser = headless_chromium()
    try:
        browser.get(html_path.as_uri())
        state = browser.execute_script("""
            const imgs = Array.from(document.images);
            return {n_img: imgs.length,
                    loaded: imgs.filter(i => i.complete && i.naturalWidth > 0).length,
                    alts: imgs.map(i => i.alt),
                    n_tables: document.querySelectorAll('table').length,
                    rows: Array.from(document.querySelectorAll('table')[0].querySelectorAll('tbody tr'))
                               .map(r => r.cells[0].textContent)};""")
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        height = browser.execute_script("return document.body.scrollHeight")
        browser.set_window_size(1280, min(int(height) + 100, 16000))
        shot = ARTIFACTS / "report.png"
        assert browser.save_screenshot(str(shot))
    finally:
        browser.quit()
    assert state["n_img"] == state["loaded"] and state["n_img"] >= 10, state
    assert set(state["alts"]) >= {"bars_psnr", "scatter_fid_vs_miou", "qualitative", "uncertainty", "class_iou",
                                  "training_curves"}
    assert state["n_tables"] == 2  # the summary and the manifest
    assert state["rows"] == ["identity", "gamma", "augan", "day-twin (upper bound)"]
    assert shot.stat().st_size > 10_000


def test_report_cli_writes_where_asked_and_honours_uncertainty_rows(fixture_run, report, tmp_path):
    run_dir, _ = fixture_run
    out = tmp_path / "elsewhere.html"
    res = CliRunner().invoke(main, ["report", str(run_dir), "--out", str(out), "--uncertainty-rows", "0",
                                    "--device", "cpu"])
    assert res.exit_code == 0, res.output
    assert f"wrote {out}" in res.output
    html = out.read_text()
    assert "<h2>Uncertainty maps</h2><p>None: the run&#x27;s test inputs are not on disk.</p>" in html
    assert "alt=\"uncertainty\"" not in html and "alt=\"bars_psnr\"" in html


def test_a_task_whose_bounds_overlap_ranks_nothing_in_either_table():
    """The rule: day twins must beat the raw input by 1 point with non-overlapping CIs. Detection here fails it (CIs
    overlap), segmentation passes: map/ap50 lose their bold and their gap, with the reason in the notes."""
    from types import SimpleNamespace

    from bench.report.compare import compare_table
    from bench.report.render import render
    from bench.report.tables import aggregate, weak_tasks
    from bench.results import MetricRecord

    def rec(method, metric, value, lo, hi):
        return MetricRecord("s", method, 0, metric, value, lo, hi, 10, "x", "")

    records = [rec("identity", "miou", 5, 4, 6), rec("clahe", "miou", 12, 11, 13), rec("day-twin", "miou", 45, 44, 46),
               rec("identity", "map", 0.3, 0.0, 0.7), rec("clahe", "map", 0.9, 0.2, 1.5),
               rec("day-twin", "map", 1.6, 0.6, 2.5), rec("clahe", "ap/car", 2.0, math.nan, math.nan)]
    agg = aggregate(records)
    assert set(weak_tasks(agg)) == {"map"}
    # A clear gap whose CIs do not overlap is not weak; a gap under 1 point is, however tight the CIs.
    assert not weak_tasks(aggregate([rec("identity", "map", 0.3, 0.2, 0.4), rec("day-twin", "map", 1.6, 1.5, 1.7)]))
    assert weak_tasks(aggregate([rec("identity", "map", 0.3, 0.29, 0.31), rec("day-twin", "map", 1.2, 1.19, 1.21)]))

    run = SimpleNamespace(  # the parts of RunResults that compare_table reads
        label="r", path=Path("r"), agg=agg, records=records, methods=["identity", "clahe", "day-twin"],
        manifest=SimpleNamespace(preset="smoke", image_size=[64, 128], n_test=10, external={}, scored_checkpoint={},
                                 data_notes=[]),
        metrics=lambda: ["miou", "map"], is_substitute=lambda method, metric: False,
        value=lambda method, metric: agg[(method, metric)]["mean"] if (method, metric) in agg else math.nan,
        skip_note=lambda method, metric: "", replicates=lambda method, metric: None)
    table = compare_table([run])
    col = table.columns.index(f"{figures.metric_label('map')} ↑")
    assert not any(row[col].bold for row in table.rows)
    assert any("detection too weak to rank methods" in n for n in table.notes)
    md = render(table, "md")
    assert "**12.00" in md and "**0.90" not in md
    assert "mIoU gap recovered" in md and "mAP gap recovered" not in md
    assert "map 1.60 [0.60, 2.50] on the day twins and 0.30 [0.00, 0.70] on the raw adverse input" in md