"""The README's commands are the ones that work: CI runs the second, this test runs the first's job."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _quick_start_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    block = re.search(r"## Quick start.*?```bash\n(.*?)```", text, re.S)
    assert block, "README has no Quick start code block"
    return [line for line in block.group(1).splitlines() if line.strip()]


def test_readme_has_two_commands_and_ci_runs_the_second():
    setup_and_run, setup_and_test = _quick_start_commands()
    assert setup_and_run.endswith("bench run") and "pip install -e ." in setup_and_run
    assert "pytest" in setup_and_test
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert setup_and_test in ci


def test_readme_figure_exists():
    for ref in re.findall(r"!\[[^\]]*\]\(([^)]+)\)", (ROOT / "README.md").read_text()):
        assert (ROOT / ref).is_file(), ref


@pytest.mark.slow
def test_readme_first_command_produces_the_run_folder(tmp_path, with_weights):
    """`bench run` with no options: synthetic-night, quick preset, the default methods."""
    job = _quick_start_commands()[0].split("&&")[-1].strip()  # ".venv/bin/bench run"
    args = job.split()[1:]
    bench = Path(sys.executable).with_name("bench")
    res = subprocess.run([str(bench), *args], cwd=tmp_path, env=dict(os.environ), capture_output=True, text=True)
    assert res.returncode == 0, res.stderr[-3000:]
    run_dir = tmp_path / "results" / "synthetic-night" / "quick"
    for rel in ("manifest.json", "metrics.csv", "tables/summary.md", "figures/qualitative.png"):
        assert (run_dir / rel).is_file()
    table = (run_dir / "tables" / "summary.md").read_text()
    for method in ("identity", "gamma", "clahe", "histmatch"):
        assert f"| {method} |" in table
    assert "skipped" not in table.split("↑ higher")[0]  # with weights present, every metric is computed
    # The shipped evaluators score the default run, so its downstream columns are the README's, digit for digit.
    from bench.results import read_metrics_csv

    records = read_metrics_csv(run_dir / "metrics.csv")
    assert all(":shipped:" in r.extractor for r in records if r.metric in ("miou", "map", "ap50"))
    readme, ours = _table_cells((ROOT / "README.md").read_text()), _table_cells(table)
    for method in ("identity", "gamma", "clahe", "histmatch", "day-twin (upper bound)"):
        for col in ("mIoU ↑", "mAP ↑", "AP50 ↑", "hallucinated ↓", "hallucination share ↓", "removed ↓",
                    "mIoU gap recovered ↑", "mAP gap recovered ↑"):
            assert ours[method][col] == readme[method][col], (method, col)
    # Counted per 100 images, the raw night input would come first; by the share it is not ranked at all.
    assert "#" not in ours["identity"]["hallucination share ↓"] and "#1" in ours["clahe"]["hallucination share ↓"]


def test_readme_table_is_read_cell_by_cell():
    cells = _table_cells((ROOT / "README.md").read_text())
    assert set(cells) >= {"identity", "clahe", "day-twin (upper bound)"}
    assert re.fullmatch(r"\d+\.\d\d \[\d+\.\d\d, \d+\.\d\d\] #\d+", cells["clahe"]["mIoU ↑"])  # value [CI] rank


def _table_cells(markdown: str) -> dict[str, dict[str, str]]:
    """method -> column -> cell of the first Markdown summary table in ``markdown`` (bold marks dropped)."""
    lines = markdown.splitlines()
    start = next(i for i, ln in enumerate(lines) if ln.startswith("| method |"))
    rows = []
    for ln in lines[start:]:
        if not ln.startswith("|"):
            break
        rows.append([c.strip().replace("**", "") for c in ln.strip("|").split("|")])
    header = rows[0]
    return {r[0]: dict(zip(header, r)) for r in rows[2:]}
