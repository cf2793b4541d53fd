"""The board as static HTML: ``index.html`` (a tab per protocol, sortable columns) and a page per submission.

Every page is self-contained (inline CSS and JS, no CDN, no font or script fetched): a board hosted from a git
repository's pages, or opened from disk, shows the same thing offline. URLs that submitters give are printed as
text, never linked, so the pages make no request to anywhere.
"""

from __future__ import annotations

import html
import math
from pathlib import Path

from bench.atomic import atomic_write_text
from bench.leaderboard.board import PROVENANCE_MARKS, Row, Tab, page_path, to_csv, to_json
from bench.leaderboard.files import dump
from bench.metrics import METRICS, metric_label
from bench.report.tables import DECIMALS, higher_is_better
from bench.results import REFERENCE_ROW

STYLE = """
body{font-family:system-ui,sans-serif;margin:1.5em;color:#222;max-width:90em}
h1{font-size:1.4em}h2{font-size:1.15em}
.tabs button{border:1px solid #888;background:#f4f4f4;padding:.4em .8em;margin:0 .3em .3em 0;cursor:pointer}
.tabs button.active{background:#234;color:#fff}
.tab{display:none}.tab.active{display:block}
table{border-collapse:collapse;margin:.5em 0 1em}
th,td{border-bottom:1px solid #ddd;padding:.3em .6em;text-align:right;white-space:nowrap}
th:first-child,td:first-child,td.text{text-align:left}
th{cursor:pointer;background:#f7f7f7;position:sticky;top:0}
th.sorted-asc::after{content:" ▲"}th.sorted-desc::after{content:" ▼"}
.ci{color:#666;font-size:.85em}.rank{color:#a33;font-size:.85em}
.mark{font-size:.75em;border:1px solid #999;border-radius:.3em;padding:0 .3em;color:#444}
.reported{color:#555;font-style:italic}.note{color:#555;font-size:.9em}
"""

SCRIPT = """
function showTab(id){
  document.querySelectorAll('.tab').forEach(t=>t.classList.toggle('active',t.id==='tab-'+id));
  document.querySelectorAll('.tabs button').forEach(b=>b.classList.toggle('active',b.dataset.tab===id));
}
function sortTable(table,col){
  const th=table.tHead.rows[0].cells[col];
  const desc=th.classList.contains('sorted-asc');
  table.tHead.querySelectorAll('th').forEach(h=>h.classList.remove('sorted-asc','sorted-desc'));
  th.classList.add(desc?'sorted-desc':'sorted-asc');
  const rows=Array.from(table.tBodies[0].rows);
  const key=r=>{const v=r.cells[col].dataset.v;return v===undefined?r.cells[col].textContent:parseFloat(v);};
  rows.sort((a,b)=>{const x=key(a),y=key(b);
    const nx=typeof x==='number'&&isNaN(x),ny=typeof y==='number'&&isNaN(y);
    if(nx||ny)return nx-ny;  // rows without a number last, either way
    const c=x<y?-1:x>y?1:0;return desc?-c:c;});
  rows.forEach(r=>table.tBodies[0].appendChild(r));
}
document.addEventListener('DOMContentLoaded',()=>{
  document.querySelectorAll('.tabs button').forEach(b=>b.addEventListener('click',()=>showTab(b.dataset.tab)));
  document.querySelectorAll('table.board').forEach(t=>Array.from(t.tHead.rows[0].cells).forEach((th,i)=>
    th.addEventListener('click',()=>sortTable(t,i))));
  const first=document.querySelector('.tabs button');if(first)showTab(first.dataset.tab);
});
"""


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _fmt(metric: str, v: float) -> str:
    if not math.isfinite(v):
        return "–"
    return f"{v:.{DECIMALS.get(metric.split('/')[0], DECIMALS.get(metric, 2))}f}"


def _page(title: str, body: str, script: str = "") -> str:
    js = f"<script>{script}</script>" if script else ""
    return (f"<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{_e(title)}</title>"
            f"<style>{STYLE}</style>{js}</head><body>{body}</body></html>\n")


def _header(metric: str) -> str:
    arrow = "↑" if higher_is_better(metric) else "↓"
    return f"<th title=\"{_e(METRICS[metric].description if metric in METRICS else metric)}\">{_e(metric_label(metric))} {arrow}</th>"


def _cell(row: Row, metric: str) -> str:
    if metric not in row.values:
        return "<td data-v=\"NaN\">–</td>"
    v, lo, hi = row.values[metric]
    text = _fmt(metric, v) + ("†" if metric in row.substitute else "")
    rank = row.ranks.get(metric)
    if rank is not None and rank[1]:
        text = f"<b>{text}</b>"
    if rank is not None:
        text += f" <span class=\"rank\">#{rank[0]}</span>"
    elif metric in row.unranked:
        text += f" <span class=\"rank\" title=\"{_e(row.unranked[metric])}\">(unranked)</span>"
    if math.isfinite(lo) and math.isfinite(hi):
        text += f"<br><span class=\"ci\">[{_fmt(metric, lo)}, {_fmt(metric, hi)}]</span>"
    return f"<td data-v=\"{v!r}\">{text}</td>"


def _mark(provenance: str) -> str:
    short = {"bench run": "run", "bench score": "score", "paper": "paper"}.get(provenance, provenance)
    return f"<span class=\"mark\" title=\"{_e(PROVENANCE_MARKS.get(provenance, provenance))}\">{_e(short)}</span>"


def _tab_body(tab: Tab) -> str:
    head = "<tr><th>method</th><th>source</th>" + "".join(_header(m) for m in tab.metrics) + "</tr>"
    rows = []
    for r in tab.rows:
        bound = " (upper bound)" if r.method == REFERENCE_ROW else ""
        name = f"<a href=\"{_e(page_path(tab, r))}\">{_e(r.method)}</a>{bound}"
        seeds = f" <span class=\"ci\">({len(r.seeds)} seeds)</span>" if len(r.seeds) > 1 else ""
        rows.append(f"<tr><td class=\"text\">{name}{seeds}</td><td class=\"text\">{_mark(r.provenance)}</td>"
                    + "".join(_cell(r, m) for m in tab.metrics) + "</tr>")
    for rep in tab.reported:
        cells = "".join(f"<td data-v=\"{rep['values'][m]!r}\">{_fmt(m, rep['values'][m])}</td>" if m in rep["values"]
                        else "<td data-v=\"NaN\">–</td>" for m in tab.metrics)
        rows.append(f"<tr class=\"reported\"><td class=\"text\" title=\"{_e(rep['source'])}\">{_e(rep['method'])}</td>"
                    f"<td class=\"text\">{_mark('paper')} {_e(rep['paper'])}</td>{cells}</tr>")
    size = "x".join(map(str, tab.image_size)) if any(tab.image_size) else "native size"
    notes = "".join(f"<li>{_e(metric_label(m))}: {_e(why)}</li>" for m, why in tab.notes.items())
    substitute = any(r.substitute for r in tab.rows)
    return (f"<h2>{_e(tab.label)}</h2><p class=\"note\">Protocol <code>{_e(tab.id)}</code>: {tab.n_test} test images, "
            f"{tab.n_reference} reference images, {size}. Bold: the best and every submission not significantly worse "
            "(paired bootstrap on the protocol's shared resamples, Holm-corrected over every pair, 0.05); #k = 1 + "
            "the submissions significantly better; [low, high]: 95% CI. Rows marked <i>paper</i> are published "
            "numbers on the paper's own protocol: shown, never ranked.</p>"
            f"<table class=\"board\"><thead>{head}</thead><tbody>{''.join(rows)}</tbody></table>"
            + (f"<ul class=\"note\">{notes}</ul>" if notes else "")
            + ("<p class=\"note\">† computed with SUBSTITUTE weights: not the real metric (an offline trial).</p>"
               if substitute else ""))


def index_page(tabs: list[Tab]) -> str:
    buttons = "".join(f"<button data-tab=\"{_e(t.id)}\">{_e(t.label)}</button>" for t in tabs)
    sections = "".join(f"<section class=\"tab\" id=\"tab-{_e(t.id)}\">{_tab_body(t)}</section>" for t in tabs)
    legend = " ".join(f"{_mark(p)} {_e(text)}" for p, text in PROVENANCE_MARKS.items())
    empty = "" if tabs else "<p>No submissions yet: `bench pack RUN --out DIR` makes some.</p>"
    body = (f"<h1>Adverse-condition translation leaderboard</h1><p class=\"note\">{legend}. Data: "
            "<a href=\"leaderboard.json\">leaderboard.json</a>, <a href=\"leaderboard.csv\">leaderboard.csv</a>.</p>"
            f"<div class=\"tabs\">{buttons}</div>{sections}{empty}")
    return _page("Leaderboard", body, SCRIPT)


def submission_page(tab: Tab, row: Row) -> str:
    rows = []
    for m in [x for x in METRICS if x in row.values] + sorted(x for x in row.values if x not in METRICS):
        v, lo, hi = row.values[m]
        rank = row.ranks.get(m)
        rows.append(f"<tr><td class=\"text\">{_e(metric_label(m) if m in METRICS else m)}</td><td>{_fmt(m, v)}"
                    f"{'†' if m in row.substitute else ''}</td><td>{_fmt(m, lo)}</td><td>{_fmt(m, hi)}</td>"
                    f"<td>{'#' + str(rank[0]) if rank else ''}</td></tr>")
    worst = "".join(f"<h3>{_e(metric_label(m))}: the ten worst images</h3><ol>"
                    + "".join(f"<li><code>{_e(name)}</code></li>" for name in names) + "</ol>"
                    for m, names in row.worst.items())
    depth = "../" * page_path(tab, row).count("/")
    body = (f"<p><a href=\"{depth}index.html\">← the board</a></p><h1>{_e(row.method)}</h1>"
            f"<p>{_mark(row.provenance)} {_e(PROVENANCE_MARKS.get(row.provenance, row.provenance))}; protocol "
            f"<code>{_e(tab.id)}</code> ({_e(tab.label)}); seeds {_e(', '.join(map(str, row.seeds)))}; file "
            f"<code>{_e(row.file)}</code></p>"
            + (f"<p>{_e(row.description)}</p>" if row.description else "")
            + (f"<p>Code or paper: <code>{_e(row.url)}</code></p>" if row.url else "")
            + "<table><thead><tr><th>metric</th><th>value</th><th>95% CI low</th><th>high</th><th>rank</th></tr>"
            f"</thead><tbody>{''.join(rows)}</tbody></table>{worst}")
    return _page(f"{row.method} on {tab.label}", body)


def write_board(tabs: list[Tab], out: Path) -> None:
    """leaderboard.json, leaderboard.csv, index.html and a page per submission in ``out``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "leaderboard.json", dump(to_json(tabs)))
    atomic_write_text(out / "leaderboard.csv", to_csv(tabs))
    atomic_write_text(out / "index.html", index_page(tabs))
    for t in tabs:
        for r in t.rows:
            page = out / page_path(t, r)
            page.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_text(page, submission_page(t, r))
