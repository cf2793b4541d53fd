"""FID and KID exactly as torch-fidelity computes them, with a content-addressed feature cache.

Features come from torch-fidelity's own Inception-v3 network and weights, with its TF1-compatible
bilinear resize to 299 x 299 (reimplemented bit for bit), fed the same uint8 tensors its image-folder
loader makes (PIL -> RGB -> uint8 CHW). The statistics and the metric values come from torch-fidelity's
functions. What we do differently: we load the weights with ``weights_only=True`` and hand the state
dict over, where torch-fidelity would unpickle the file; and we run the network faster
(:class:`InceptionExtractor`), at the same values to 1e-6."""

from __future__ import annotations

import hashlib
import os
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import torch
from tqdm import tqdm

from bench.cache import cache_dir, files_digest
from bench.metrics.bootstrap import LARGE_SET_RESAMPLES, Draws, draws_for_seed, multiplicities, percentile_ci
from bench.data.io import read_rgb
from bench.weights import INCEPTION_V3, ResolvedWeights, resolve

FEATURE_LAYER = "2048"
KID_SUBSETS = 100
KID_SUBSET_SIZE = 1000


def _read_chw(path: Path) -> torch.Tensor:
    return torch.from_numpy(read_rgb(path)).permute(2, 0, 1).contiguous()


@contextmanager
def _state_dict_instead_of_download(state: dict) -> Iterator[None]:
    import torch_fidelity.feature_extractor_inceptionv3 as fe

    original = fe.load_state_dict_from_url
    fe.load_state_dict_from_url = lambda *a, **k: state
    try:
        yield
    finally:
        fe.load_state_dict_from_url = original


# torch-fidelity's Inception-v3 blocks in the order its forward runs them, up to the pooled 2048-d features.
_BLOCKS = ("Conv2d_1a_3x3", "Conv2d_2a_3x3", "Conv2d_2b_3x3", "MaxPool_1", "Conv2d_3b_1x1", "Conv2d_4a_3x3",
           "MaxPool_2", "Mixed_5b", "Mixed_5c", "Mixed_5d", "Mixed_6a", "Mixed_6b", "Mixed_6c", "Mixed_6d",
           "Mixed_6e", "Mixed_7a", "Mixed_7b", "Mixed_7c", "AvgPool")
INPUT_SIZE = 299
CPU_PASS = 8


def tf1_bilinear_resize(x: torch.Tensor, size: int = INPUT_SIZE) -> torch.Tensor:
    """TensorFlow 1's bilinear resize (align_corners=False) of float NCHW ``x`` to ``size`` x ``size``.

    Bit-identical to torch-fidelity's ``interpolate_bilinear_2d_like_tensorflow1x`` (its default,
    CPU-exact method): the same grid, and the same products and sums on the same values. It gathers
    four corner samples at output size and blends along x, then y; blending along x at the input's
    rows first and gathering the output rows afterwards does the same arithmetic with half the copying.
    """

    def grid(n_in: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        g = torch.arange(0, size, 1, dtype=torch.float32, device=x.device) * torch.tensor(
            n_in / size, dtype=torch.float32, device=x.device)
        lo = g.long()
        return lo, (lo + 1).clamp_max(n_in - 1), g - lo.float()

    x_lo, x_hi, dx = grid(x.shape[3])
    y_lo, y_hi, dy = grid(x.shape[2])
    left, right = x[..., x_lo], x[..., x_hi]  # indexing gathers along the last axis 3x faster than index_select
    rows = left + (right - left) * dx.view(1, 1, 1, size)
    top, bottom = rows.index_select(2, y_lo), rows.index_select(2, y_hi)
    return top + (bottom - top) * dy.view(1, 1, size, 1)


class InceptionExtractor:
    """torch-fidelity's Inception-v3 feature extractor on ``device``, weights loaded safely.

    The network is torch-fidelity's, run faster at the same values: each convolution's BatchNorm is
    folded into its weights (features change by ~1e-6 relative; torch-fidelity's own FID and KID are
    matched to 1e-4 in the tests), channels-last memory, the resize above, and passes of 8 images on the
    CPU. 1.4x torch-fidelity's network on a 2-core CPU.
    """

    def __init__(self, weights: ResolvedWeights | None = None, device: str = "cpu") -> None:
        from torch.nn.utils.fusion import fuse_conv_bn_eval
        from torch_fidelity.feature_extractor_inceptionv3 import BasicConv2d, FeatureExtractorInceptionV3

        self.weights = weights or resolve(INCEPTION_V3)
        with _state_dict_instead_of_download(self.weights.load_state_dict()):
            model = FeatureExtractorInceptionV3("inception-v3-compat", [FEATURE_LAYER]).eval()
        for block in model.modules():
            if isinstance(block, BasicConv2d):
                block.conv, block.bn = fuse_conv_bn_eval(block.conv, block.bn), torch.nn.Identity()
        self.device = torch.device(device)
        # channels_last: oneDNN and cuDNN run Inception's convolutions ~1.4x faster in NHWC (2-core CPU, measured).
        self.network = torch.nn.Sequential(*(getattr(model, name) for name in _BLOCKS)).to(
            self.device, memory_format=torch.channels_last)
        self.id = f"{self.weights.spec.key}:{self.weights.sha256[:16]}:{FEATURE_LAYER}"

    @torch.inference_mode()
    def __call__(self, batch_uint8: torch.Tensor) -> torch.Tensor:
        """The 2048-d features of a uint8 NCHW batch (any size: resized to 299 x 299 as torch-fidelity does)."""
        # On the CPU the network runs 8 images at a time whatever the batch: its activations then stay in cache
        # (2 cores: 20.8 img/s at 8, 17.8 at 32, 16.2 at 64).
        parts = batch_uint8.split(CPU_PASS) if self.device.type == "cpu" else (batch_uint8,)
        out = []
        for part in parts:
            x = tf1_bilinear_resize(part.to(self.device).float())
            x = ((x - 128) / 128).contiguous(memory_format=torch.channels_last)
            out.append(torch.flatten(self.network(x), 1).float().cpu())
        return torch.cat(out)


def extract_features(
    files: Sequence[Path],
    extractor: InceptionExtractor,
    batch_size: int = 32,
    num_workers: int | None = None,
    use_cache: bool = True,
    desc: str = "features",
) -> torch.Tensor:
    """N x D features of ``files``, cached under the cache folder by content hash.

    Each batch is decoded by ``num_workers`` threads (default: one per core; PIL decodes without
    the GIL). On the CPU decoding runs between network passes: the network's threads already use
    every core, and overlapping the two measured no faster (2 cores: 17.8 against 17.7 img/s;
    decoding is ~3 ms of an image's ~55). On a GPU the next batch is decoded while the network
    runs. Files may differ in size: a batch that does not stack goes through one image at a time.
    """
    if len(files) == 0:
        raise ValueError("cannot compute features of an empty image list")
    if not use_cache:
        return _extract(files, extractor, batch_size, num_workers, desc)
    return cached_features(extractor.id, files, lambda: _extract(files, extractor, batch_size, num_workers, desc))


def cached_features(extractor_id: str, files: Sequence[Path], compute) -> torch.Tensor:
    """``compute()``'s N x D features of ``files``, kept under the cache folder by extractor id and file contents."""
    key = hashlib.sha256(f"{extractor_id}|{files_digest(files)}".encode()).hexdigest()[:32]
    path = cache_dir("features") / f"{key}.safetensors"
    if path.is_file():
        from safetensors.torch import load_file

        return load_file(str(path))["features"]
    feats = compute().to(torch.float32)
    from safetensors.torch import save

    from bench.atomic import atomic_write_bytes

    atomic_write_bytes(path, save({"features": feats.contiguous()}))
    return feats


def _extract(files: Sequence[Path], extractor: InceptionExtractor, batch_size: int, num_workers: int | None,
             desc: str) -> torch.Tensor:
    chunks = [list(files[i:i + batch_size]) for i in range(0, len(files), batch_size)]
    with ThreadPoolExecutor(num_workers or os.cpu_count() or 1) as decoders, ThreadPoolExecutor(1) as ahead:

        def decode(chunk: list[Path]) -> torch.Tensor | list[torch.Tensor]:
            images = list(decoders.map(_read_chw, chunk))
            return torch.stack(images) if all(im.shape == images[0].shape for im in images) else images

        overlap = extractor.device.type != "cpu"
        pending = ahead.submit(decode, chunks[0]) if overlap else None
        out = []
        for i, chunk in enumerate(tqdm(chunks, desc=desc, unit="batch", leave=False)):
            if overlap:
                batch = pending.result()
                if i + 1 < len(chunks):
                    pending = ahead.submit(decode, chunks[i + 1])
            else:
                batch = decode(chunk)
            # Images of several sizes go one at a time: the network resizes each to its input size on its own, as
            # torch-fidelity resizes every image, so the features do not depend on the company an image keeps.
            out.append(extractor(batch) if isinstance(batch, torch.Tensor) else torch.cat([extractor(im[None]) for im in batch]))
    return torch.cat(out).to(torch.float32)


def fid_from_features(f1: torch.Tensor, f2: torch.Tensor) -> float:
    """torch-fidelity's FID of two feature sets, evaluated without scipy (:func:`frechet_distance`)."""
    return frechet_distance(f1.double().numpy(), f2.double().numpy())


def frechet_distance(x1: np.ndarray, x2: np.ndarray) -> float:
    """The Fréchet distance of two N x d feature sets (FID's formula), in float64, independent of scipy's version.

    ||mu1 - mu2||^2 + tr S1 + tr S2 - 2 tr sqrt(S1 S2), with unbiased covariances as ``np.cov``. The trace of the
    square root is taken from symmetric problems only: while both sets have at most d images, the nuclear norm of
    the centred cross-Gram matrix (:func:`_fid_gram`, exact: S1 S2 has rank below N); above, the eigenvalues of
    S1^1/2 S2 S1^1/2 (two symmetric eigendecompositions, :func:`_fid_weighted`). torch-fidelity calls
    ``scipy.linalg.sqrtm`` on the non-symmetric product instead, which returned large imaginary parts in scipy
    1.11.2-1.11.3 and wrong values on complex input in 1.16.0; the tests hold the two to 1e-6 relative.
    """
    if max(len(x1), len(x2)) <= x1.shape[1]:
        return _fid_gram(x1, x2)
    t1, t2 = torch.from_numpy(np.ascontiguousarray(x1)), torch.from_numpy(np.ascontiguousarray(x2))
    return _fid_weighted(t1, torch.ones(len(t1), dtype=torch.float64), t2, torch.ones(len(t2), dtype=torch.float64))


def kid_subset_size(n1: int, n2: int) -> int:
    return min(KID_SUBSET_SIZE, n1, n2)


def kid_from_features(f1: torch.Tensor, f2: torch.Tensor) -> tuple[float, float]:
    """KID mean and its std over subsets, torch-fidelity's defaults (subset size capped at the set sizes)."""
    from torch_fidelity.metric_kid import KEY_METRIC_KID_MEAN, KEY_METRIC_KID_STD, kid_features_to_metric

    out = kid_features_to_metric(
        f1, f2, kid_subsets=KID_SUBSETS, kid_subset_size=kid_subset_size(len(f1), len(f2)), verbose=False
    )
    return float(out[KEY_METRIC_KID_MEAN]), float(out[KEY_METRIC_KID_STD])


def _fid_gram(x1: np.ndarray, x2: np.ndarray) -> float:
    """FID from N x d features without a d x d matrix (exact when N <= d).

    With centred X1, X2, the non-zero eigenvalues of S1 S2 are the squared singular values of
    X1 X2^T / sqrt((n1 - 1)(n2 - 1)), so tr sqrt(S1 S2) is that matrix's nuclear norm.
    """
    m1, m2 = x1.mean(0), x2.mean(0)
    c1, c2 = x1 - m1, x2 - m2
    n1, n2 = len(x1), len(x2)
    cross = np.linalg.svd(c1 @ c2.T / np.sqrt((n1 - 1) * (n2 - 1)), compute_uv=False).sum()
    diff = m1 - m2
    return float(diff @ diff + (c1 * c1).sum() / (n1 - 1) + (c2 * c2).sum() / (n2 - 1) - 2 * cross)


def mmd2_unbiased(k_xx: np.ndarray, k_xy: np.ndarray, k_yy: np.ndarray) -> float:
    """The unbiased MMD^2 estimate from kernel matrices, for sets of any two sizes m and n.

    With m == n it is torch-fidelity's ``mmd2`` (same operations, same bits); that one asserts equal sizes,
    which a reference set of another size than the test set (most real suites) never has.
    """
    m, n = len(k_xx), len(k_yy)
    xx = (k_xx.sum(axis=1) - np.diagonal(k_xx)).sum()  # off-diagonal sums, in torch-fidelity's order
    yy = (k_yy.sum(axis=1) - np.diagonal(k_yy)).sum()
    xy = k_xy.sum(axis=0).sum()
    if m == n:
        return float((xx + yy) / (m * (m - 1)) - 2 * xy / (m * m))
    return float(xx / (m * (m - 1)) + yy / (n * (n - 1)) - 2 * xy / (m * n))


def _fid_weighted(x1: torch.Tensor, w1: torch.Tensor, x2: torch.Tensor, w2: torch.Tensor) -> float:
    """FID of two resampled feature sets given as rows and multiplicities, from d x d covariances.

    For sets larger than d, where the Gram form would be the bigger problem: tr sqrt(S1 S2) is the
    trace of sqrt(S1^1/2 S2 S1^1/2), a symmetric matrix, so two symmetric eigen-decompositions
    (float64) replace scipy's general square root (~1.6 s a resample at d = 2048 on 2 cores).
    """

    def stats(x: torch.Tensor, w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        n = w.sum()
        mu = (w @ x) / n
        c = x - mu
        return mu, (c.T * w) @ c / (n - 1)

    m1, s1 = stats(x1, w1)
    m2, s2 = stats(x2, w2)
    lam, v = torch.linalg.eigh(s1)
    root = (v * lam.clamp_min(0).sqrt()) @ v.T
    cross = torch.linalg.eigvalsh(root @ s2 @ root).clamp_min(0).sqrt().sum()
    return float((m1 - m2) @ (m1 - m2) + s1.trace() + s2.trace() - 2 * cross)


def fid_kid_replicates(f1: torch.Tensor, f2: torch.Tensor, draws: Draws, kid: bool = True
                       ) -> tuple[np.ndarray, np.ndarray | None]:
    """FID (and KID) of each resample of both feature sets: test images by ``draws``' test indices, reference
    images by its reference indices (shared by every cell of the protocol, so replicates pair across methods).

    The replicates give the interval the tables show: how much the number would move with another draw of test
    and reference images of the same sizes (the test set's sampling error), not how a method varies over training
    seeds. Each resampled FID is exact: while both sets have at most d images, from the three Gram matrices
    (gathered per resample, then the cross-Gram's singular values as the eigenvalues of a symmetric n1 x n1
    matrix); above d, from weighted d x d covariances (:func:`_fid_weighted`), on the first
    ``LARGE_SET_RESAMPLES`` draws. KID is the unbiased MMD^2 on the resampled kernel matrices (torch-fidelity's
    cubic kernel). Duplicated images bias resampled FIDs upward, so read the interval as spread, not bias.
    """
    from torch_fidelity.metric_kid import kernel_poly

    x1, x2 = f1.double().numpy(), f2.double().numpy()
    n1, n2, d = len(x1), len(x2), x1.shape[1]
    gram = max(n1, n2) <= d
    resamples = draws.resamples if gram else min(draws.resamples, LARGE_SET_RESAMPLES)
    rows, cols = draws.indices(resamples), draws.reference_indices(resamples)
    fids = np.empty(resamples)
    if gram:
        g11, g22, g12 = x1 @ x1.T, x2 @ x2.T, x1 @ x2.T
        sq1, sq2 = np.diagonal(g11), np.diagonal(g22)
        for b, (i, j) in enumerate(zip(rows, cols)):
            a11, a22, a12 = g11[np.ix_(i, i)].mean(), g22[np.ix_(j, j)].mean(), g12[np.ix_(i, j)]
            # The centred cross-Gram of the resample: G12 gathered, minus its row and column means, plus its mean.
            c = a12 - a12.mean(1, keepdims=True) - a12.mean(0, keepdims=True) + a12.mean()
            c /= np.sqrt((n1 - 1) * (n2 - 1))
            small = c @ c.T if n1 <= n2 else c.T @ c
            cross = np.sqrt(np.clip(np.linalg.eigvalsh(small), 0, None)).sum()
            tr1 = (sq1[i].sum() - n1 * a11) / (n1 - 1)
            tr2 = (sq2[j].sum() - n2 * a22) / (n2 - 1)
            fids[b] = a11 + a22 - 2 * a12.mean() + tr1 + tr2 - 2 * cross
    else:
        t1, t2 = torch.from_numpy(x1), torch.from_numpy(x2)
        w1, w2 = torch.from_numpy(multiplicities(rows, n1)), torch.from_numpy(multiplicities(cols, n2))
        for b in range(resamples):
            fids[b] = _fid_weighted(t1, w1[b], t2, w2[b])
    if not kid:
        return fids, None
    if gram:
        k11, k22, k12 = kernel_poly(x1, x1), kernel_poly(x2, x2), kernel_poly(x1, x2)
        kids = np.array([mmd2_unbiased(k11[np.ix_(i, i)], k12[np.ix_(i, j)], k22[np.ix_(j, j)])
                         for i, j in zip(rows, cols)])
    else:
        kids = kid_replicates_blockwise(x1, x2, rows, cols)
    return fids, kids


KERNEL_BLOCK_ROWS = 1024  # rows of a kernel matrix held at once by kid_replicates_blockwise (1024 x N float64)


def kid_replicates_blockwise(x1: np.ndarray, x2: np.ndarray, rows: np.ndarray, cols: np.ndarray,
                             block: int = KERNEL_BLOCK_ROWS) -> np.ndarray:
    """KID's unbiased MMD^2 of each resample (index rows ``rows`` of x1, ``cols`` of x2) without an N x N kernel.

    With w the multiplicities of a resample, the sum over its distinct positions of k(x_a, x_b) is
    w' K w - sum_p w_p K_pp, and the cross term w1' K12 w2: quadratic forms that one pass over row blocks of each
    kernel gives for every resample at once. Memory: a block x N kernel slice and the R x N multiplicities, so
    50,000 against 50,000 images stays within a few GB, where the three kernels would take 60 GB.
    """
    from torch_fidelity.metric_kid import kernel_poly

    n1, n2 = len(x1), len(x2)
    w1, w2 = multiplicities(rows, n1), multiplicities(cols, n2)  # R x n1, R x n2

    def forms(xa: np.ndarray, wa: np.ndarray, xb: np.ndarray, wb: np.ndarray, same: bool) -> np.ndarray:
        total = np.zeros(len(wa))
        for start in range(0, len(xa), block):
            k = kernel_poly(xa[start:start + block], xb)  # block x nb
            part = wa[:, start:start + block]
            total += (part * (wb @ k.T)).sum(axis=1)
            if same:  # the diagonal: a position is never paired with itself
                total -= part @ np.diagonal(k, offset=start)
        return total

    xx, yy, xy = forms(x1, w1, x1, w1, True), forms(x2, w2, x2, w2, True), forms(x1, w1, x2, w2, False)
    return xx / (n1 * (n1 - 1)) + yy / (n2 * (n2 - 1)) - 2 * xy / (n1 * n2)


def bootstrap_fid_kid_ci(f1: torch.Tensor, f2: torch.Tensor, seed: int = 0, n_boot: int = 200
                         ) -> tuple[tuple[float, float], tuple[float, float]]:
    """95% percentile CIs of FID and KID from ``n_boot`` resamples of both sets keyed by ``seed``
    (:func:`fid_kid_replicates` outside a protocol)."""
    if min(len(f1), len(f2)) < 2:
        return (float("nan"), float("nan")), (float("nan"), float("nan"))
    fids, kids = fid_kid_replicates(f1, f2, draws_for_seed(len(f1), seed, n_boot, n_reference=len(f2)))
    return percentile_ci(fids), percentile_ci(kids)
