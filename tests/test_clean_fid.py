"""fid-clean and kid-clean equal the clean-fid package's own compute_fid / compute_kid on two folders."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch
from PIL import Image

cleanfid = pytest.importorskip("cleanfid.fid", reason="clean-fid is a core dependency: pip install -e .")


@pytest.fixture
def folders(tmp_path, smoke_suite):
    """Translations of mixed sizes (6) and a reference set of another count (4)."""
    a, b = tmp_path / "translated", tmp_path / "reference"
    a.mkdir()
    b.mkdir()
    for i, p in enumerate(smoke_suite.test_a[:6]):
        img = Image.open(p)
        if i % 3 == 0:  # some of another size and aspect
            img = img.resize((160, 72), Image.BICUBIC)
        img.save(a / f"{i:03d}.png")
    for i, p in enumerate(smoke_suite.test_b[:4]):
        shutil.copy(p, b / f"{i:03d}.png")
    return a, b


@pytest.mark.slow
def test_fid_clean_and_kid_clean_equal_the_package(folders, with_weights, monkeypatch):
    from cleanfid.inception_torchscript import InceptionV3W

    from bench.metrics.clean_fid import CleanFidExtractor, clean_fid, clean_kid
    from bench.weights import CLEANFID_INCEPTION

    a, b = folders
    ext = CleanFidExtractor()
    assert "SUBSTITUTE" in ext.weights.label  # the test file says it is not NVIDIA's
    ta, tb = ext.features(sorted(a.iterdir())), ext.features(sorted(b.iterdir()))
    assert ta.shape == (6, 2048) and tb.shape == (4, 2048) and float(ta.std()) > 1e-3
    ours_fid, ours_kid = clean_fid(ta, tb), clean_kid(ta, tb)

    # The package, loading the same file itself (it would look in /tmp; we point it at the test file).
    model = InceptionV3W(str(with_weights), download=False).eval()
    assert (with_weights / CLEANFID_INCEPTION.filename).is_file()
    monkeypatch.setattr(cleanfid, "build_feature_extractor", lambda mode, device, use_dataparallel=True: model)
    ref_fid = cleanfid.compute_fid(str(a), str(b), mode="clean", num_workers=0, device=torch.device("cpu"),
                                   verbose=False, use_dataparallel=False)
    state = np.random.get_state()
    np.random.seed(0)
    ref_kid = cleanfid.compute_kid(str(a), str(b), mode="clean", num_workers=0, device=torch.device("cpu"),
                                   verbose=False, use_dataparallel=False)
    np.random.set_state(state)
    assert ours_fid == pytest.approx(ref_fid, rel=1e-6) and ours_fid > 0.01  # exact Gram form below 2,048 images
    assert ours_kid == pytest.approx(ref_kid, rel=1e-9)
    # Seeded: the same number twice, and the caller's numpy state untouched.
    np.random.seed(5)
    before = np.random.random()
    np.random.seed(5)
    assert clean_kid(ta, tb) == ours_kid and np.random.random() == before
