"""The typed manifest (bench.results.Manifest): written by the runner, read back by tables and the report,
older manifests readable, a damaged one rebuilt by the next `bench run` and refused clearly by `bench tables`."""

from __future__ import annotations

import json

from click.testing import CliRunner

from bench.cli import main
from bench.results import MANIFEST_SCHEMA, Manifest, read_manifest, write_manifest


def test_round_trip_keeps_unknown_keys_and_fills_missing_ones(tmp_path):
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps({"schema": 1, "suite": "synthetic-night", "config": {"preset": "quick"},
                                "from_a_newer_version": [1, 2]}))
    m = read_manifest(path)
    assert m.suite == "synthetic-night" and m.preset == "quick" and m.schema == 1
    assert m.method_configs == {} and m.n_test is None and m.extra == {"from_a_newer_version": [1, 2]}
    write_manifest(path, m)
    assert json.loads(path.read_text())["from_a_newer_version"] == [1, 2]
    assert Manifest().schema == MANIFEST_SCHEMA and read_manifest(tmp_path / "absent.json") == Manifest()


def test_damaged_manifest_is_refused_by_tables_and_rebuilt_by_run(tmp_path):
    data, out = tmp_path / "data", tmp_path / "out"
    assert CliRunner().invoke(main, ["data", "synth", "--out", str(data), "--n-train", "2", "--n-test", "2",
                                     "--size", "32x64"]).exit_code == 0
    args = ["run", "--suite", f"folder:{data}", "--methods", "identity", "--preset", "smoke", "--device", "cpu",
            "--out", str(out)]
    assert CliRunner().invoke(main, args).exit_code == 0
    run_dir = next(out.glob("*/smoke"))
    manifest = read_manifest(run_dir / "manifest.json")
    assert manifest.schema == MANIFEST_SCHEMA and manifest.n_test == 2
    assert manifest.config["methods"] == ["identity"] and manifest.suite_config["preset"] == "smoke"
    (run_dir / "manifest.json").write_text('{"suite": "x", ')  # truncated
    res = CliRunner().invoke(main, ["tables", "--run", str(run_dir)])
    assert res.exit_code == 2 and "manifest.json: not a valid manifest" in res.output and "re-run `bench run`" in res.output
    res = CliRunner().invoke(main, args)
    assert res.exit_code == 0 and "was unreadable" in res.output
    assert read_manifest(run_dir / "manifest.json").n_test == 2
    assert CliRunner().invoke(main, ["tables", "--run", str(run_dir)]).exit_code == 0
