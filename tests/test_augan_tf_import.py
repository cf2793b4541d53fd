"""The TensorFlow checkpoint importer, against TensorFlow itself.

``tests/tf_reference.py`` (run in a child process) writes a checkpoint in the official variable
layout, with names enumerated there from models.py independently of the converter, and the outputs
of models.py's generators written in TF ops. Here we convert the checkpoint and compare.
"""

import importlib.util
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from augan import AUGAN
from augan.tf_import import TFImportError

HERE = Path(__file__).parent
if importlib.util.find_spec("tensorflow") is None:
    pytest.skip("needs TensorFlow (pip install tensorflow-cpu) to write and read TF checkpoints", allow_module_level=True)

spec = importlib.util.spec_from_file_location("tf_reference", HERE / "tf_reference.py")
tf_reference = importlib.util.module_from_spec(spec)
spec.loader.exec_module(tf_reference)  # numpy only at import; TensorFlow is imported in the child


@pytest.fixture(scope="module")
def official(tmp_path_factory):
    out = tmp_path_factory.mktemp("tf")
    subprocess.run([sys.executable, str(HERE / "tf_reference.py"), str(out)], check=True, capture_output=True)
    with np.load(out / "reference.npz", allow_pickle=False) as data:
        ref = {k: data[k] for k in data.files}
    return out / "ckpt", ref


@pytest.fixture(scope="module")
def imported(official):
    m = AUGAN("smoke")
    m.import_tf_checkpoint(official[0])
    return m


def test_every_official_variable_maps_to_exactly_one_parameter(official, imported):
    from augan.tf_import import convert, official_name, read_tf_checkpoint

    folder, ref = official
    m = imported
    assert m.config.ngf == tf_reference.NGF and m.config.use_tnet and m.config.use_uncertainty
    params = [k for k in m.state_dict() if not k.startswith("_meta")]
    names = [official_name(k) for k in params]
    assert sorted(names) == sorted(str(n) for n in ref["names"])  # a bijection with the official variables
    variables = read_tf_checkpoint(folder)
    converted = convert(variables, m.state_dict())
    for key in params:
        assert converted[key].shape == m.state_dict()[key].shape
    missing = dict(variables)
    missing.pop("generatorB2A/g_pred_c_rec/Conv/weights")
    with pytest.raises(TFImportError, match="lacks generatorB2A/g_pred_c_rec/Conv/weights"):
        convert(missing, m.state_dict())
    extra = {**variables, "generatorA2B/g_new_layer/Conv/weights": np.zeros((1,), np.float32)}
    with pytest.raises(TFImportError, match="no place in our model"):
        convert(extra, m.state_dict())


@pytest.mark.parametrize("size", tf_reference.SIZES)
def test_converted_generators_reproduce_tensorflow(official, imported, size):
    _, ref = official
    m = imported
    key = f"{size[0]}x{size[1]}"
    xt = torch.from_numpy(ref[f"x_{key}"]).permute(0, 3, 1, 2)
    with torch.no_grad():
        ours = m.g_a2b(xt, reconstruct=False)
        back = m.g_b2a(xt, reconstruct=False)
    to_nhwc = lambda t: t.permute(0, 2, 3, 1).numpy()  # noqa: E731
    np.testing.assert_allclose(to_nhwc(ours.image), ref[f"a2b_{key}"], atol=2e-5)
    np.testing.assert_allclose(to_nhwc(ours.sigma), ref[f"sigma_{key}"], atol=2e-5)
    np.testing.assert_allclose(to_nhwc(back.image), ref[f"b2a_{key}"], atol=2e-5)


@pytest.mark.slow
def test_import_checkpoint_cli_then_translate(official, imported, tmp_path):
    from click.testing import CliRunner
    from safetensors.torch import load_file

    from bench.cli import main

    folder, _ = official
    res = CliRunner().invoke(main, ["import-checkpoint", "augan", "--tf-checkpoint", str(folder),
                                    "--out", str(tmp_path / "augan.safetensors")])
    assert res.exit_code == 0, res.output
    direct = imported
    loaded = AUGAN("quick")
    state = load_file(str(tmp_path / "augan.safetensors"))
    loaded.configure_from_state(state)
    loaded.load_state_dict(state)
    x = torch.rand(1, 3, 24, 40)
    assert torch.equal(loaded.translate(x), direct.translate(x))
    res = CliRunner().invoke(main, ["import-checkpoint", "augan", "--tf-checkpoint", str(tmp_path),
                                    "--out", str(tmp_path / "x.safetensors")])
    assert res.exit_code == 2 and "no TensorFlow checkpoint found" in res.output
