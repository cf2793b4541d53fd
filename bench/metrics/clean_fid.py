"""fid-clean and kid-clean: FID and KID as the clean-fid package computes them (Parmar et al., "On Aliased
Resizing and Surprising Subtleties in GAN Evaluation", CVPR 2022), the numbers CycleGAN-Turbo reports.

clean-fid differs from torch-fidelity in its preprocessing, not its formula: PIL decodes each image to RGB,
each channel is resized to 299 x 299 in float with PIL's anti-aliased bicubic filter, and the unquantised
result goes to NVIDIA's TorchScript export of the same 2015-12-05 Inception graph. The numbers are the
package's own functions: features from ``cleanfid.fid.get_files_features(mode="clean")``, FID from
``fid_from_feats``, KID from ``kernel_distance`` (100 subsets of min(1000, N) drawn from numpy's global
generator, which we seed with 0 and restore afterwards, so a number is reproducible; the package leaves it
unseeded). Up to 1000 images per set, KID does not depend on the order of the files; above, the subsets do.

The weights file is a TorchScript archive, loaded with ``torch.jit.load`` as clean-fid loads it: TorchScript's
own reader, which rebuilds tensors and TorchScript modules and imports no Python objects (unlike a pickle).
It is found, hashed and named like every other weights file (``bench weights list``) and never fetched into
``/tmp`` as the package would do.
"""

from __future__ import annotations

import dataclasses
import warnings
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from bench.metrics.fid_kid import cached_features
from bench.weights import CLEANFID_INCEPTION, ResolvedWeights, resolve

KID_SEED = 0
PACKAGE_MISSING = "needs the clean-fid package, which this installation lacks: pip install 'clean-fid>=0.1.35'"


def package_available() -> bool:
    try:
        import cleanfid.fid  # noqa: F401
    except ImportError:
        return False
    return True


class CleanFidExtractor:
    """clean-fid's feature path: its resize and its TorchScript Inception, loaded from our weights lookup."""

    def __init__(self, weights: ResolvedWeights | None = None, device: str = "cpu") -> None:
        from cleanfid.inception_torchscript import InceptionV3W

        self.weights = weights or resolve(CLEANFID_INCEPTION)
        # InceptionV3W takes a folder and loads the file of this name in it.
        assert self.weights.path.name == CLEANFID_INCEPTION.filename, self.weights.path
        self.device = torch.device(device)
        with warnings.catch_warnings():  # torch >= 2.9 calls torch.jit.load deprecated; clean-fid has no other way
            warnings.simplefilter("ignore", FutureWarning)
            self.model = InceptionV3W(str(self.weights.path.parent), download=False).to(self.device).eval()
        if getattr(self.model.base, "substitute", False):  # a test file (bench.substitute_weights) says so itself
            self.weights = dataclasses.replace(self.weights, spec=dataclasses.replace(self.weights.spec, size_bytes=-1))
        self.id = f"{self.weights.spec.key}:{self.weights.sha256[:16]}:clean"

    def features(self, files: Sequence[Path], batch_size: int = 32) -> torch.Tensor:
        """N x 2048 features of ``files``, cached by content like the FID features."""
        from cleanfid.fid import get_files_features

        def compute() -> torch.Tensor:
            feats = get_files_features([str(f) for f in files], model=self.model, num_workers=0, batch_size=batch_size,
                                       device=self.device, mode="clean", verbose=False)
            return torch.from_numpy(feats)

        return cached_features(self.id, files, compute)


def clean_fid(translated: torch.Tensor, reference: torch.Tensor) -> float:
    """clean-fid's FID of two feature sets (``compute_fid(fdir1=translations, fdir2=reference)``).

    With fewer images than feature dimensions the covariances are singular; there scipy's ``sqrtm``, which the
    package calls, takes ~13 s per FID on 2 cores and is only approximate (it warns "Matrix is singular"), so the
    same formula is evaluated exactly from the N x N cross-Gram matrix instead (``fid_kid._fid_gram``; it agrees
    with the package to ~1e-6 relative on the tests' sets). From 2,048 images on, the package's own function.
    """
    from cleanfid.fid import fid_from_feats

    from bench.metrics.fid_kid import _fid_gram

    a, b = translated.numpy(), reference.numpy()
    if max(len(a), len(b)) <= a.shape[1]:
        return _fid_gram(a.astype(np.float64), b.astype(np.float64))
    return float(fid_from_feats(a, b))


def clean_kid(translated: torch.Tensor, reference: torch.Tensor) -> float:
    """clean-fid's KID of two feature sets (``compute_kid(fdir1=translations, fdir2=reference)``), subsets seeded."""
    from cleanfid.fid import kernel_distance

    state = np.random.get_state()
    np.random.seed(KID_SEED)
    try:
        return float(kernel_distance(translated.numpy(), reference.numpy()))
    finally:
        np.random.set_state(state)
