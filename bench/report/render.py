"""One table model, several renderings: Markdown, LaTeX (booktabs), CSV and HTML.

Builders (paper tables, run comparisons) fill a ``Table``; nothing else formats output, so every
rendering holds the same cells.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field

FORMATS = ("md", "tex", "csv", "json")  # what `bench tables` writes; to_html is for the report


@dataclass
class Cell:
    text: str
    bold: bool = False
    value: float | None = None  # the number behind the text, for CSV (None: no number)
    rank: int | None = None  # the method's rank on the column's metric, where the table ranks it


@dataclass
class Table:
    title: str
    columns: list[str]  # first column = row labels
    groups: list[tuple[str, int]] = field(default_factory=list)  # optional header spans: (label, n columns)
    rows: list[list[Cell]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def render(table: Table, fmt: str) -> str:
    if fmt == "md":
        return to_markdown(table)
    if fmt == "tex":
        return to_latex(table)
    if fmt == "csv":
        return to_csv(table)
    if fmt == "json":
        return to_json(table)
    raise ValueError(f"unknown table format {fmt!r}; choose one of {', '.join(FORMATS)}")


def _group_prefixes(table: Table) -> list[str]:
    """Each column's group label (Markdown and CSV have one header row, so groups prefix the column)."""
    prefixes = [""]
    for label, span in table.groups:
        prefixes += [label] * span
    return prefixes + [""] * (len(table.columns) - len(prefixes))


def to_markdown(table: Table) -> str:
    prefixes = _group_prefixes(table)
    head = [f"{p} {c}".strip() for p, c in zip(prefixes, table.columns)]
    lines = [f"### {table.title}", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in table.rows:
        lines.append("| " + " | ".join(f"**{c.text}**" if c.bold else c.text for c in row) + " |")
    if table.notes:
        lines.append("")
        lines += [f"- {n}" for n in table.notes]
    return "\n".join(lines) + "\n"


_TEX_ESCAPES = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
                "↑": r"$\uparrow$", "↓": r"$\downarrow$", "±": r"$\pm$", "–": "--", "−": "$-$", "→": r"$\to$",
                "×": r"$\times$", "†": r"$^\dagger$"}


def tex_escape(text: str) -> str:
    return "".join(_TEX_ESCAPES.get(ch, ch) for ch in text)


def to_latex(table: Table) -> str:
    """A booktabs tabular inside a table float; needs ``\\usepackage{booktabs}``."""
    n = len(table.columns)
    lines = [r"\begin{table}[t]", r"\centering", rf"\caption{{{tex_escape(table.title)}}}",
             rf"\begin{{tabular}}{{l{'r' * (n - 1)}}}", r"\toprule"]
    if table.groups:
        spans, rules, col = [""], [], 2
        for label, span in table.groups:
            spans.append(rf"\multicolumn{{{span}}}{{c}}{{{tex_escape(label)}}}")
            rules.append(rf"\cmidrule(lr){{{col}-{col + span - 1}}}")
            col += span
        lines += [" & ".join(spans) + r" \\", " ".join(rules)]
    lines.append(" & ".join(tex_escape(c) for c in table.columns) + r" \\")
    lines.append(r"\midrule")
    for row in table.rows:
        cells = [rf"\textbf{{{tex_escape(c.text)}}}" if c.bold else tex_escape(c.text) for c in row]
        lines.append(" & ".join(cells) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}"]
    if table.notes:
        lines.append(r"\par\smallskip\footnotesize")
        lines += [tex_escape(n) + r"\par" for n in table.notes]
    lines.append(r"\end{table}")
    return "\n".join(lines) + "\n"


def to_csv(table: Table) -> str:
    """Numbers as numbers (full precision) where a cell has one, its text otherwise; notes are not rows."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    prefixes = _group_prefixes(table)
    w.writerow([f"{p} {c}".strip() for p, c in zip(prefixes, table.columns)])
    for row in table.rows:
        w.writerow([repr(c.value) if c.value is not None else c.text for c in row])
    return buf.getvalue()


def to_json(table: Table) -> str:
    """Strict JSON: each row an object keyed by the CSV header, numbers as numbers (``null`` where none), the
    shown text and bold flags beside them, and the notes."""
    from bench.atomic import json_text

    prefixes = _group_prefixes(table)
    head = [f"{p} {c}".strip() for p, c in zip(prefixes, table.columns)]
    rows = [{"label": row[0].text,
             "values": {h: c.value for h, c in zip(head[1:], row[1:])},
             "text": {h: c.text for h, c in zip(head[1:], row[1:])},
             "bold": [h for h, c in zip(head[1:], row[1:]) if c.bold],
             "rank": {h: c.rank for h, c in zip(head[1:], row[1:]) if c.rank}} for row in table.rows]
    return json_text({"title": table.title, "columns": head, "rows": rows, "notes": table.notes}) + "\n"


def to_html(table: Table) -> str:
    """An HTML table (escaped text, ``<strong>`` for bold) with its notes; styled by the report's CSS."""
    from html import escape

    out = [f"<table><caption>{escape(table.title)}</caption><thead>"]
    if table.groups:
        out.append("<tr><th></th>" + "".join(f'<th colspan="{n}">{escape(label)}</th>' for label, n in table.groups)
                   + "</tr>")
    out.append("<tr>" + "".join(f"<th>{escape(c)}</th>" for c in table.columns) + "</tr></thead><tbody>")
    for row in table.rows:
        cells = [f"<td><strong>{escape(c.text)}</strong></td>" if c.bold else f"<td>{escape(c.text)}</td>" for c in row]
        out.append("<tr>" + "".join(cells) + "</tr>")
    out.append("</tbody></table>")
    if table.notes:
        out.append('<ul class="notes">' + "".join(f"<li>{escape(n)}</li>" for n in table.notes) + "</ul>")
    return "\n".join(out)
