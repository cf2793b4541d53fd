"""Leaderboards from files: runs packed into submissions, checked from their own numbers, built into a page whose
ranks are the paired comparisons of the runs themselves."""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from bench.cli import main
from bench.leaderboard.files import SCHEMA_VERSION
from conftest import ARTIFACTS, headless_chromium



def _cli(*args: str) -> str:
    res = CliRunner().invoke(main, list(args))
    assert res.exit_code == 0, res.output
    return res.output


@pytest.fixture(scope="module")
def board(tmp_path_factory):
    """Two runs of one protocol made in two cache folders (as two machines would), a third method translated by
    outside code and scored with `bench score`, all packed into one results repository."""
    from bench.runner import RunConfig, run

    root = tmp_path_factory.mktemp("board")
    old = os.environ["AUGAN_BENCH_CACHE"]
    runs = []
    try:
        for k, methods in enumerate((("identity", "gamma"), ("identity", "clahe"))):
            os.environ["AUGAN_BENCH_CACHE"] = str(root / f"cache{k}")
            runs.append(run(RunConfig(suite="synthetic-night", methods=methods, preset="smoke", out=root / f"out{k}",
                                      device="cpu")).run_dir)
        export = root / "export"
        _cli("data", "export", "--suite", "synthetic-night", "--preset", "smoke", "--out", str(export))
        outside = root / "outside"
        outside.mkdir()
        for p in sorted((export / "testA").glob("*.png")):  # the outside method: a plain brightening
            arr = np.asarray(Image.open(p), dtype=np.float64)
            Image.fromarray(np.clip(arr * 1.8 + 10, 0, 255).astype(np.uint8)).save(outside / p.name)
        _cli("score", "--suite", "synthetic-night", "--preset", "smoke", "--translations", str(outside), "--method",
             "brighten", "--protocol", str(export / "protocol.json"), "--out", str(root / "scored"), "--no-bounds")
        scored = root / "scored" / "synthetic-night" / "smoke"
        repo = root / "repo"
        _cli("leaderboard", "init", str(repo))
        _cli("pack", str(runs[0]), "--out", str(repo), "--description", "two classical methods")
        _cli("pack", str(runs[1]), "--out", str(repo), "--method", "clahe")
        _cli("pack", str(scored), "--out", str(repo), "--method", "brighten", "--url", "https://example.org/brighten")
    finally:
        os.environ["AUGAN_BENCH_CACHE"] = old
    pid = json.loads((export / "protocol.json").read_text())["protocol_id"]
    return repo, runs, scored, pid


def test_packed_runs_check_and_the_board_ranks_as_bench_compare(board, tmp_path):
    repo, (a, b), scored, pid = board
    files = sorted(p.name for p in (repo / "submissions" / pid).iterdir())
    assert files == ["brighten.json", "clahe.json", "day-twin.json", "gamma.json", "identity.json"]
    sub = json.loads((repo / "submissions" / pid / "brighten.json").read_text())
    assert sub["method"]["provenance"] == "bench score" and sub["protocol"]["id"] == pid
    assert sub["schema_version"] == SCHEMA_VERSION and sub["cells"][0]["per_image"]["columns"]["psnr"]
    assert json.loads((repo / "submissions" / pid / "gamma.json").read_text())["method"]["provenance"] == "bench run"
    out = CliRunner().invoke(main, ["leaderboard", "check", str(repo)])
    assert out.exit_code == 0, out.output
    from bench.leaderboard.check import check

    alone, spread = check(repo), check(repo, workers=2)  # a large board is checked in one process per core
    assert alone.ok and spread.ok and alone.submissions == spread.submissions
    site = tmp_path / "site"
    _cli("leaderboard", "build", str(repo), "--out", str(site))
    data = json.loads((site / "leaderboard.json").read_text())
    (tab,) = data["protocols"]
    assert tab["id"] == pid and [r["method"] for r in tab["rows"]] == ["identity", "brighten", "clahe", "gamma",
                                                                     "day-twin"]
    # The board's paired result across submissions from three places equals bench compare on the runs themselves.
    for x, run_x, y, run_y in (("gamma", a, "clahe", b), ("brighten", scored, "gamma", a)):
        (cmp,) = json.loads(_cli("compare", str(run_x), "--a", x, "--b", y, "--run", str(run_y), "--metric", "psnr",
                                 "--json"))
        pair = next(p for p in tab["pairs"]["psnr"] if {p["a"], p["b"]} == {x, y})
        sign = 1 if pair["a"] == x else -1
        assert sign * pair["difference"] == pytest.approx(cmp["difference"], rel=1e-12)
        assert pair["p"] == cmp["p"]
    rows = {r["method"]: r["metrics"] for r in tab["rows"]}
    psnr = {m: v["psnr"]["value"] for m, v in rows.items() if "psnr" in v}
    best = max(psnr, key=psnr.get)
    assert rows[best]["psnr"]["rank"] == 1 and rows[best]["psnr"]["bold"]
    assert "psnr" not in rows["day-twin"] and rows["day-twin"]["miou"]["rank"] is None  # a bound, never ranked
    html = (site / "index.html").read_text()
    assert not re.search(r"""(src|href)\s*=\s*["']?https?:""", html)
    page = (site / "s" / pid / "brighten.html").read_text()
    assert "https://example.org/brighten" in page and not re.search(r"""(src|href)\s*=\s*["']?https?:""", page)
    assert "the ten worst images" in page
    worst = sub["cells"][0]["per_image"]
    order = np.argsort(worst["columns"]["psnr"], kind="stable")[:10]
    assert rows["brighten"]["psnr"]["value"] == pytest.approx(np.mean(worst["columns"]["psnr"]))
    listed = next(r for r in tab["rows"] if r["method"] == "brighten")["worst_images"]["psnr"]
    assert listed == [worst["images"][i] for i in order]
    csv_lines = (site / "leaderboard.csv").read_text().splitlines()
    assert csv_lines[0].startswith("protocol,suite,preset,method") and any(",brighten,bench score,psnr," in ln
                                                                          for ln in csv_lines)


def _edited(repo: Path, tmp_path: Path, pid: str, method: str, edit) -> Path:
    copy = tmp_path / "repo"
    shutil.copytree(repo, copy)
    path = copy / "submissions" / pid / f"{method}.json"
    data = json.loads(path.read_text())
    edit(data)
    path.write_text(json.dumps(data))
    return copy


def _problems(root: Path) -> str:
    res = CliRunner().invoke(main, ["leaderboard", "check", str(root)])
    assert res.exit_code == 1, res.output
    return res.output


@pytest.mark.parametrize("what, edit, expect", [
    ("a value", lambda d: d["cells"][0]["metrics"]["psnr"].__setitem__("value", d["cells"][0]["metrics"]["psnr"]["value"] + 0.01),
     "cells[0].metrics.psnr.value: "),
    ("the summary", lambda d: d["metrics"]["ssim"].__setitem__("value", d["metrics"]["ssim"]["value"] * 1.001),
     "metrics.ssim.value: "),
    ("a per-image value", lambda d: d["cells"][0]["per_image"]["columns"]["psnr"].__setitem__(0, 99.0),
     "cells[0].metrics.psnr.value: "),
    ("mIoU's statistics", lambda d: d["cells"][0]["per_image"]["columns"]["seg/tp/road"].__setitem__(0, 0),
     "cells[0].metrics.miou.value: "),
    ("a replicate", lambda d: d["cells"][0]["replicates"]["sift"].__setitem__(5, 1e3), "cells[0].replicates.sift: "),
    ("a CI", lambda d: d["cells"][0]["metrics"]["psnr"]["ci"].__setitem__(0, 0.0), "cells[0].metrics.psnr.ci: "),
    ("per-image values dropped", lambda d: d["cells"][0].__setitem__("per_image", {"images": [], "columns": {}}),
     "cells[0].per_image: no per-image values to recompute psnr from"),
    ("replicates dropped", lambda d: d["cells"][0]["replicates"].pop("fd-synthseg"),
     "cells[0].replicates: none of fd-synthseg"),
    ("n", lambda d: d["cells"][0]["metrics"]["psnr"].__setitem__("n", 3), "cells[0].metrics.psnr.n: 3 images"),
    ("the weights", lambda d: d["cells"][0]["metrics"]["miou"].__setitem__("extractor", "SUBSTITUTE:x"),
     "cells[0].metrics.miou.extractor: computed with SUBSTITUTE weights"),
    ("the protocol", lambda d: d["protocol"].__setitem__("id", "000000000000"), "protocol.id: unknown protocol"),
    ("the schema", lambda d: d.__setitem__("schema_version", 99), "schema_version: 99 is unknown"),
    ("the settings", lambda d: d["protocol"]["settings"]["ci"].__setitem__("resamples", 10), "protocol.settings: "),
])
def test_a_hand_edited_file_is_refused_naming_the_file_and_field(board, tmp_path, what, edit, expect):
    repo, _, _, pid = board
    out = _problems(_edited(repo, tmp_path, pid, "gamma", edit))
    assert f"submissions/{pid}/gamma.json: {expect}" in out, (what, out)
    assert "Traceback" not in out


def test_two_files_for_one_method_and_files_that_are_not_strict_json_are_refused(board, tmp_path):
    repo, _, _, pid = board
    copy = tmp_path / "repo"
    shutil.copytree(repo, copy)
    shutil.copy(copy / "submissions" / pid / "gamma.json", copy / "submissions" / pid / "gamma2.json")
    out = _problems(copy)
    assert f"submissions/{pid}/gamma2.json: method.name: the file of 'gamma'" in out
    (copy / "submissions" / pid / "gamma2.json").write_text('{"schema": NaN}')
    assert "gamma2.json: NaN is not strict JSON" in _problems(copy)
    (copy / "submissions" / pid / "gamma2.json").unlink()
    proto = copy / "protocols" / f"{pid}.json"
    data = json.loads(proto.read_text())
    data["settings"]["kid"]["subsets"] += 1
    proto.write_text(json.dumps(data))
    out = _problems(copy)
    assert f"protocols/{pid}.json: protocol_id: its id" in out and "unknown protocol" in out
    data["settings"]["kid"]["subsets"] -= 1
    data["n_test"] += 1  # not hashed (the files are), so counted
    proto.write_text(json.dumps(data))
    assert f"protocols/{pid}.json: n_test: 13, but it lists 12 test images" in _problems(copy)
    # The substitute weights are accepted only when asked for (offline trials), and marked on the board.
    def substitute(d):
        for rec in (d["cells"][0]["metrics"]["psnr"], d["metrics"]["psnr"]):
            rec["extractor"] = "SUBSTITUTE:x"

    sub = _edited(repo, tmp_path / "s", pid, "gamma", substitute)
    assert CliRunner().invoke(main, ["leaderboard", "check", str(sub), "--allow-substitute"]).exit_code == 0
    assert CliRunner().invoke(main, ["leaderboard", "build", str(sub), "--out", str(tmp_path / "site")]).exit_code == 1


def test_pack_refuses_to_overwrite_and_init_refuses_a_used_folder(board, tmp_path):
    repo, (a, _), _, _ = board
    res = CliRunner().invoke(main, ["pack", str(a), "--out", str(repo), "--method", "gamma"])
    assert res.exit_code == 2 and "gamma.json exists" in res.output and "--replace" in res.output
    copy = tmp_path / "repo"
    shutil.copytree(repo, copy)
    (pid,) = [p.name for p in (copy / "submissions").iterdir() if p.is_dir()]
    before = json.loads((copy / "submissions" / pid / "gamma.json").read_text())
    assert before["method"]["description"] == "two classical methods"
    _cli("pack", str(a), "--out", str(copy), "--method", "gamma", "--replace", "--description", "gamma, described again")
    after = json.loads((copy / "submissions" / pid / "gamma.json").read_text())
    assert after["method"]["description"] == "gamma, described again" and after["metrics"] == before["metrics"]
    res = CliRunner().invoke(main, ["leaderboard", "init", str(repo)])
    assert res.exit_code == 2 and "is not empty" in res.output
    readme = (repo / "README.md").read_text()
    assert "bench leaderboard check ." in readme and (repo / ".github" / "workflows" / "check.yml").is_file()
    res = CliRunner().invoke(main, ["pack", str(a), "--out", str(tmp_path / "x"), "--method", "nope"])
    assert res.exit_code == 2 and "no method 'nope' to pack" in res.output
    # A cell scored on other data than the suite gives now cannot be packed under today's protocol.
    moved = tmp_path / "moved"
    shutil.copytree(a, moved)
    cell = moved / "cells" / "gamma" / "seed0" / "metrics.json"
    data = json.loads(cell.read_text())
    data["draws"]["protocol"]["test"] = "0" * 16
    cell.write_text(json.dumps(data))
    res = CliRunner().invoke(main, ["pack", str(moved), "--out", str(tmp_path / "y")])
    assert res.exit_code == 2 and "cells/gamma/seed0 was scored on other data" in res.output
    assert not (tmp_path / "y").exists()  # nothing written


@pytest.mark.slow  # a second run (FID features) and a browser; CI runs it with the slow tests
def test_the_board_sorts_and_switches_tabs_in_headless_chromium(board, tmp_path, run_with_test_weights):
    """A second protocol (a folder suite) gives a second tab; clicking a header sorts, clicking a tab switches."""
    from bench.runner import RunConfig

    repo, _, _, pid = board
    copy = tmp_path / "repo"
    shutil.copytree(repo, copy)
    suite = tmp_path / "suite"
    rng = np.random.default_rng(0)
    for sub in ("trainA", "trainB", "testA", "testB"):
        (suite / sub).mkdir(parents=True)
        for k in range(6):
            Image.fromarray(rng.integers(0, 255, (24, 48, 3), dtype=np.uint8)).save(suite / sub / f"{k}.png")
    folder_run = run_with_test_weights(RunConfig(suite=f"folder:{suite}", methods=("identity", "gamma"),
                                                 preset="smoke", out=tmp_path / "o", device="cpu")).run_dir
    _cli("pack", str(folder_run), "--out", str(copy))
    site = tmp_path / "site"
    _cli("leaderboard", "build", str(copy), "--out", str(site), "--allow-substitute")
    from selenium.webdriver.common.by import By

    browser = headless_chromium(1400, 900)
    try:
        browser.get((site / "index.html").as_uri())
        visible = "return Array.from(document.querySelectorAll('.tab')).filter(t => t.offsetParent !== null).map(t => t.id)"
        first = browser.execute_script(visible)
        buttons = browser.find_elements(By.CSS_SELECTOR, ".tabs button")
        assert len(buttons) == 2 and len(first) == 1
        other = next(b for b in buttons if f"tab-{b.get_attribute('data-tab')}" not in first)
        other.click()
        assert browser.execute_script(visible) == [f"tab-{other.get_attribute('data-tab')}"]
        buttons[[b.get_attribute("data-tab") for b in buttons].index(pid)].click()
        headers = browser.find_elements(By.CSS_SELECTOR, f"#tab-{pid} table.board th")
        col = [h.text.split(" ")[0] for h in headers].index("PSNR")
        headers[col].click()
        cells = f"return Array.from(document.querySelectorAll('#tab-{pid} table.board tbody tr')).map(r => r.cells[{col}].dataset.v)"
        ascending = [float(v) for v in browser.execute_script(cells)]
        headers[col].click()
        descending = [float(v) for v in browser.execute_script(cells)]
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        shot = ARTIFACTS / "leaderboard.png"
        assert browser.save_screenshot(str(shot))
    finally:
        browser.quit()
    numbers = [v for v in ascending if not np.isnan(v)]
    assert numbers == sorted(numbers) and len(numbers) == 4  # the four methods with a PSNR, then the bound's dash
    assert [v for v in descending if not np.isnan(v)] == sorted(numbers, reverse=True)
    assert np.isnan(ascending[-1]) and np.isnan(descending[-1])
    assert shot.stat().st_size > 10_000


def test_papers_rows_are_shown_beside_measured_ones_and_never_ranked():
    from bench.leaderboard.board import Row, Tab, reported_rows, to_csv, to_json
    from bench.leaderboard.site import index_page

    reported = reported_rows("bdd100k-night")
    augan = next(r for r in reported if r["method"] == "AU-GAN" and r["paper"] == "n2d3-table1")
    assert augan["values"] == {"fid": 38.6} and "3,929 night val images" in augan["protocol"]
    assert reported_rows("synthetic-night") == []
    row = Row("mine", "bench score", values={"fid": (40.0, 38.0, 42.0)}, ranks={"fid": (1, True, float("nan"))})
    tab = Tab("abc123", "bdd100k-night", "paper", [256, 512], 3929, 3929, ["fid"], [row], reported)
    html = index_page([tab])
    assert "AU-GAN" in html and "38.60" in html and ">paper</span> n2d3-table1" in html
    (json_tab,) = to_json([tab])["protocols"]
    assert json_tab["reported"][0]["paper"] and "rank" not in json_tab["reported"][0]
    assert ",AU-GAN,paper:n2d3-table1,fid,38.6,,,,,0" in to_csv([tab])


def test_a_submission_of_several_seeds_is_checked_over_its_seeds(board, tmp_path):
    """Two seeds: each summary value is the seeds' mean and its CI the 95% interval of the replicates drawn over
    seeds then images (``over_seeds``), as tables and `bench compare` make them."""
    from bench.leaderboard.files import number
    from bench.metrics.bootstrap import percentile_ci
    from bench.stats.paired import over_seeds

    repo, _, _, pid = board
    # A second seed whose numbers differ but are consistent: another method's cell on the same protocol.
    other = json.loads((repo / "submissions" / pid / "clahe.json").read_text())["cells"][0]

    def two_seeds(d):
        d["cells"].append({**other, "seed": 1})
        d["seeds"] = [0, 1]
        key = f"{d['protocol']['draws']['key']}|{d['method']['name']}"
        for metric, rec in d["metrics"].items():
            if rec["value"] is None:  # skipped (no detector at smoke): no number, no replicates
                continue
            rec["value"] = sum(c["metrics"][metric]["value"] for c in d["cells"]) / 2
            reps = [np.array(c["replicates"][metric], dtype=np.float64) for c in d["cells"]]
            rec["ci"] = [number(v) for v in percentile_ci(over_seeds(reps, key))]

    ok = _edited(repo, tmp_path / "ok", pid, "gamma", two_seeds)
    res = CliRunner().invoke(main, ["leaderboard", "check", str(ok)])
    assert res.exit_code == 0, res.output

    def wrong_ci(d):
        two_seeds(d)
        d["metrics"]["psnr"]["ci"] = d["cells"][0]["metrics"]["psnr"]["ci"]  # one seed's interval: too narrow a claim

    out = _problems(_edited(repo, tmp_path / "bad", pid, "gamma", wrong_ci))
    assert f"submissions/{pid}/gamma.json: metrics.psnr.ci: " in out
