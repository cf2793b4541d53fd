"""The one configuration precedence (bench.config): defaults < preset < --config FILE < flags, --set checked against
the method's config dataclass, --print-config round trips, and the settings reach what they configure."""

from __future__ import annotations

import json

import pytest
import torch
from click.testing import CliRunner

from bench.cli import main
from bench.config import ConfigError, apply, parse_set, parse_value
from bench.runner import RunConfig, resolved_method_configs
from bench.translator import build_translator


def _printed(*args: str) -> str:
    res = CliRunner().invoke(main, ["run", "--print-config", *args])
    assert res.exit_code == 0, res.output
    return res.output


def test_flags_override_the_file_which_overrides_defaults(tmp_path):
    f = tmp_path / "run.toml"
    f.write_text('suite = "synthetic-fog"\nseeds = [1, 2]\nbatch_size = 4\n[engine]\nprecision = "bf16"\n'
                 '[method.cyclegan]\nlambda_cycle = 3\n')
    # The file sets cyclegan's settings: the run must run cyclegan (print-config refuses what bench run would).
    out = _printed("--config", str(f), "--seeds", "5", "--set", "cyclegan.lambda_identity=0.25",
                   "--methods", "identity,cyclegan")
    assert 'suite = "synthetic-fog"' in out and "seeds = [5]" in out and "batch_size = 4" in out
    assert 'precision = "bf16"' in out  # from the file's [engine] table
    assert "lambda_cycle = 3" in out and "lambda_identity = 0.25" in out
    # A flag left at its default does not override the file (batch_size 16 is --batch-size's default).
    assert "batch_size = 16" not in out
    assert 'preset = "quick"' in out  # the suite's default preset where neither file nor flag names one


def test_print_config_fed_back_reproduces_itself(tmp_path):
    first = _printed("--methods", "identity,cyclegan", "--preset", "smoke", "--size", "64x128", "--max-steps", "3",
                     "--set", "cyclegan.n_blocks=3", "--no-channels-last")
    f = tmp_path / "again.toml"
    f.write_text(first)
    assert _printed("--config", str(f)) == first
    assert "max_steps = 3" in first and "size = [64, 128]" in first and "channels_last = false" in first


def test_unknown_keys_and_wrong_types_are_clear_errors(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("batch_sise = 4\n")
    res = CliRunner().invoke(main, ["run", "--print-config", "--config", str(bad)])
    assert res.exit_code == 2 and "has no setting 'batch_sise'" in res.output and "batch_size" in res.output
    bad.write_text('seeds = "0-2"\n')
    res = CliRunner().invoke(main, ["run", "--print-config", "--config", str(bad)])
    assert res.exit_code == 2 and "seeds: '0-2' is not" in res.output
    res = CliRunner().invoke(main, ["run", "--print-config", "--config", str(tmp_path / "none.toml")])
    assert res.exit_code == 2 and "does not exist" in res.output
    with pytest.raises(ConfigError, match="use METHOD.KEY=VALUE"):
        parse_set(["lambda_cycle=5"])


def test_method_overrides_are_checked_against_the_method_config():
    with pytest.raises(ConfigError) as err:
        build_translator("cyclegan", "smoke", overrides={"lambda_cylce": 5})
    assert "has no setting 'lambda_cylce'" in str(err.value) and "lambda_cycle" in str(err.value)
    with pytest.raises(ConfigError, match="lambda_cycle: 'five' is not float"):
        build_translator("cyclegan", "smoke", overrides={"lambda_cycle": "five"})
    with pytest.raises(ConfigError, match="n_blocks: 2.5 is not int"):
        build_translator("cyclegan", "smoke", overrides={"n_blocks": 2.5})
    with pytest.raises(ConfigError, match="no settable hyperparameters"):
        build_translator("clahe", "smoke", overrides={"clip": 3})


def test_overrides_reach_the_model_without_moving_its_initial_weights():
    torch.manual_seed(0)
    plain = build_translator("cyclegan", "smoke")
    torch.manual_seed(0)
    tuned = build_translator("cyclegan", "smoke", overrides={"lambda_cycle": 5, "pool_size": 0})
    assert tuned.config.lambda_cycle == 5.0 and isinstance(tuned.config.lambda_cycle, float)
    assert tuned.config.pool_size == 0 and plain.config.lambda_cycle == 10.0
    for k, v in plain.state_dict().items():
        if not k.startswith("_meta"):
            assert torch.equal(v, tuned.state_dict()[k]), k
    deeper = build_translator("cyclegan", "smoke", overrides={"n_blocks": 3})
    assert sum(v.numel() for v in deeper.state_dict().values()) > sum(v.numel() for v in plain.state_dict().values())


def test_run_refuses_settings_for_a_method_it_does_not_run():
    cfg = RunConfig(methods=("identity",), method_options={"cyclegan": {"lambda_cycle": 5}})
    with pytest.raises(Exception, match="settings for cyclegan, which this run does not run"):
        resolved_method_configs(cfg, ["identity"])
    configs = resolved_method_configs(RunConfig(preset="smoke", method_options={"zero-dce": {"w_tv": 50}}),
                                      ["identity", "zero-dce"])
    assert "identity" not in configs and configs["zero-dce"]["w_tv"] == 50.0


def test_max_steps_and_set_reach_training_and_the_manifest(tmp_path):
    """`bench run --max-steps 2 --set zero-dce.w_tv=50` on a folder suite: two training steps, both recorded."""
    data = tmp_path / "data"
    res = CliRunner().invoke(main, ["data", "synth", "--out", str(data), "--n-train", "4", "--n-test", "2",
                                    "--size", "64x128"])
    assert res.exit_code == 0, res.output
    res = CliRunner().invoke(main, ["run", "--suite", f"folder:{data}", "--methods", "zero-dce", "--preset", "smoke",
                                    "--device", "cpu", "--out", str(tmp_path / "out"), "--max-steps", "2",
                                    "--set", "zero-dce.w_tv=50"])
    assert res.exit_code == 0, res.output
    run_dir = next((tmp_path / "out").glob("*/smoke"))
    log = (run_dir / "cells" / "zero-dce" / "seed0" / "train" / "train_log.jsonl").read_text().splitlines()
    assert [json.loads(line)["step"] for line in log][-1] == 2
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["config"]["max_steps"] == 2 and manifest["config"]["method_options"] == {"zero-dce": {"w_tv": 50}}
    assert manifest["method_configs"]["zero-dce"]["w_tv"] == 50.0
    assert manifest["suite_config"]["preset"] == "smoke"


def test_values_and_layers():
    assert parse_value("5") == 5 and parse_value("0.5") == 0.5 and parse_value("true") is True
    assert parse_value("[1, 2]") == [1, 2] and parse_value("cuda:1") == "cuda:1"
    cfg = apply(RunConfig(), {"size": [64, 128], "engine": {"workers": 2}}, "config")
    assert cfg.size == (64, 128) and cfg.engine.workers == 2 and cfg.engine.precision == "fp32"
