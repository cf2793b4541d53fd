"""The registry, the protocol, and the classical baselines."""

import subprocess
import sys

import numpy as np
import pytest
import torch

from bench.data.io import read_rgb, to_tensor
from bench.translator import (
    RegistryError,
    TrainBudget,
    available_methods,
    build_translator,
    register_translator,
)

CLASSICAL = ["identity", "gamma", "clahe", "histmatch"]


def test_classical_methods_are_registered_with_metadata():
    methods = available_methods()
    for name in CLASSICAL:
        assert name in methods and not methods[name].learned and methods[name].description


def test_unknown_method_lists_valid_names_and_suggests():
    with pytest.raises(RegistryError) as err:
        build_translator("histmach")
    msg = str(err.value)
    assert "Did you mean 'histmatch'" in msg and all(n in msg for n in CLASSICAL)


def test_duplicate_registration_is_an_error():
    class Other:
        pass

    with pytest.raises(RegistryError, match="registered twice"):
        register_translator("identity", description="x")(Other)


def test_identity_is_exact():
    x = torch.rand(1, 3, 20, 30)
    assert torch.equal(build_translator("identity").translate(x), x)


def _hist_mean(files):
    return np.mean([read_rgb(f).mean() for f in files]) / 255


def test_gamma_matches_mean_brightness_of_the_day_domain(smoke_suite, tmp_path):
    t = build_translator("gamma")
    t.fit(smoke_suite.unpaired(), TrainBudget(), tmp_path)
    assert 0.1 < t.gamma < 1.0  # night must be brightened
    out = t.translate(torch.stack([to_tensor(read_rgb(p)) for p in smoke_suite.train_a]))
    assert out.mean().item() == pytest.approx(_hist_mean(smoke_suite.train_b), abs=0.02)


def test_histmatch_maps_onto_the_target_histogram(smoke_suite, tmp_path):
    t = build_translator("histmatch")
    t.fit(smoke_suite.unpaired(), TrainBudget(), tmp_path)
    img = read_rgb(smoke_suite.test_a[0])
    out = (t.translate(to_tensor(img)[None])[0] * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()
    # Quartiles land where the day histogram has them (a spike of black pixels cannot be split,
    # so the CDFs cannot agree everywhere; the quartiles above it can).
    for c in range(3):
        for q in (0.25, 0.5, 0.75):
            target = np.searchsorted(t.target_cdf[c], q)
            assert abs(np.quantile(out[..., c], q) - target) <= 8, (c, q)
        assert abs(np.quantile(img[..., c], 0.5) - np.searchsorted(t.target_cdf[c], 0.5)) > 30
    with pytest.raises(RuntimeError, match="fitted"):
        build_translator("histmatch").translate(torch.rand(1, 3, 8, 8))


def test_clahe_raises_local_contrast_of_dark_images(smoke_suite):
    x = torch.stack([to_tensor(read_rgb(p)) for p in smoke_suite.test_a[:4]])
    y = build_translator("clahe").translate(x)
    assert y.std() > x.std()


def test_entry_point_plugin_appears_and_runs(plugin_site):
    """A method from another installed package (an entry point in a dist-info) is listed and runs."""
    site = plugin_site("my_plugin", "invert", "Invert", doc="inverts the image (a plug-in for the test)",
                       translate="return 1 - images")
    code = (
        "from bench.translator import available_methods, build_translator; import torch; "
        "m = available_methods()['invert']; print(m.description, m.learned); "
        "print(float(build_translator('invert').translate(torch.zeros(1, 3, 4, 4)).mean()))"
    )
    out = subprocess.run([sys.executable, "-c", code], env={"PYTHONPATH": str(site), "PATH": ""},
                         capture_output=True, text=True, check=True).stdout.split("\n")
    assert out[0] == "inverts the image (a plug-in for the test) False" and out[1] == "1.0"


def test_entry_point_clashing_with_a_builtin_is_reported_not_ignored(plugin_site):
    site = plugin_site("clash_plugin", "identity", "Fake", source="class Fake:\n    pass\n")
    code = ("from bench.translator import broken_methods, method_info; "
            "print(method_info('identity').source); print(list(broken_methods().values()))")
    out = subprocess.run([sys.executable, "-c", code], env={"PYTHONPATH": str(site), "PATH": ""},
                         capture_output=True, text=True, check=True).stdout.split("\n")
    assert out[0] == "baselines.classical"
    assert "'clash_plugin:Fake' uses the name 'identity', already registered by baselines.classical" in out[1]
