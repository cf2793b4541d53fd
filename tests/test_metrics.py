"""Every metric against its reference implementation, on the same images."""

import numpy as np
import pytest
import torch

from bench.data.io import read_rgb, to_tensor
from bench.metrics.bootstrap import bootstrap_mean_ci
from bench.metrics.paired import psnr, ssim
from bench.weights import ALEXNET, INCEPTION_V3, WeightsMissing, resolve


@pytest.fixture(scope="module")
def extractor(weights_dir):
    from bench.metrics.fid_kid import InceptionExtractor
    from bench.weights import ResolvedWeights, file_sha256

    path = weights_dir / INCEPTION_V3.filename
    return InceptionExtractor(ResolvedWeights(INCEPTION_V3, path, file_sha256(path)))


def _fidelity(dir1, dir2, weights_dir, n):
    import torch_fidelity

    return torch_fidelity.calculate_metrics(
        input1=str(dir1), input2=str(dir2), fid=True, kid=True, kid_subset_size=n, cuda=False,
        feature_extractor_weights_path=str(weights_dir / INCEPTION_V3.filename), save_cpu_ram=True,
        cache=False, verbose=False,
    )


def test_fid_kid_equal_torch_fidelity(smoke_suite, extractor, weights_dir):
    from bench.metrics.fid_kid import extract_features, fid_from_features, kid_from_features

    fa = extract_features(smoke_suite.test_a, extractor, use_cache=False)
    fb = extract_features(smoke_suite.test_b, extractor, use_cache=False)
    ref = _fidelity(smoke_suite.root / "testA", smoke_suite.root / "testB", weights_dir, len(fa))
    fid = fid_from_features(fa, fb)
    kid, _ = kid_from_features(fa, fb)
    assert fid == pytest.approx(ref["frechet_inception_distance"], rel=1e-4)
    assert kid == pytest.approx(ref["kernel_inception_distance_mean"], rel=1e-4)
    # The test weights must make the check meaningful: night vs day is far apart, a set vs itself is not.
    assert fid > 1.0 and kid > 1e-3
    assert abs(fid_from_features(fa, fa)) < 1e-3 * fid


@pytest.mark.parametrize("shape", [(2, 3, 256, 512), (1, 3, 64, 128), (2, 3, 301, 300), (1, 3, 299, 299),
                                   (1, 3, 17, 1000)])
def test_resize_is_bit_identical_to_torch_fidelitys(shape):
    from torch_fidelity.interpolate_compat_tensorflow import interpolate_bilinear_2d_like_tensorflow1x

    from bench.metrics.fid_kid import tf1_bilinear_resize

    x = torch.randint(0, 256, shape, generator=torch.Generator().manual_seed(0)).float()
    expected = interpolate_bilinear_2d_like_tensorflow1x(x, size=(299, 299), align_corners=False)
    assert torch.equal(tf1_bilinear_resize(x), expected)


def test_folded_network_gives_torch_fidelitys_features(smoke_suite, extractor, weights_dir):
    """Our faster forward (BatchNorm folded, channels-last) against torch-fidelity's own module and forward."""
    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

    from bench.metrics.fid_kid import _state_dict_instead_of_download

    state = torch.load(weights_dir / INCEPTION_V3.filename, weights_only=True)
    with _state_dict_instead_of_download(state):
        reference = FeatureExtractorInceptionV3("inception-v3-compat", ["2048"]).eval()
    x = torch.stack([torch.from_numpy(read_rgb(p)).permute(2, 0, 1) for p in smoke_suite.test_a[:4]])
    with torch.no_grad():
        (expected,) = reference(x)
    got = extractor(x)
    assert got.shape == (4, 2048) and expected.abs().max() > 1e-2  # features that do not vanish
    assert torch.allclose(got, expected, rtol=1e-4, atol=1e-5 * float(expected.abs().max()))


def test_features_of_images_of_mixed_sizes(smoke_suite, extractor, tmp_path):
    """Ordinary folders mix sizes, tiny and elongated images among them: each image gets the features it has alone,
    and FID/KID work on sets of unequal size."""
    from PIL import Image

    from bench.metrics.fid_kid import extract_features, fid_from_features, kid_from_features

    rng = np.random.default_rng(0)
    files = []
    for i, (h, w) in enumerate([(64, 128), (100, 80), (1, 1), (17, 1000), (64, 128), (300, 9)]):
        f = tmp_path / f"{i}.png"
        Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(f)
        files.append(f)
    feats = extract_features(files, extractor, batch_size=4, use_cache=False)
    alone = torch.cat([extractor(torch.from_numpy(read_rgb(f)).permute(2, 0, 1)[None]) for f in files])
    assert feats.shape == (6, 2048) and torch.allclose(feats, alone, rtol=1e-4, atol=1e-6 * float(alone.abs().max()))
    ref = extract_features(smoke_suite.test_b, extractor, use_cache=False)
    assert np.isfinite(fid_from_features(feats, ref)) and np.isfinite(kid_from_features(feats, ref)[0])


def test_features_do_not_depend_on_batch_size(smoke_suite, extractor):
    from bench.metrics.fid_kid import extract_features, fid_from_features

    f1 = extract_features(smoke_suite.test_a, extractor, batch_size=1, use_cache=False)
    f7 = extract_features(smoke_suite.test_a, extractor, batch_size=7, use_cache=False)
    fb = extract_features(smoke_suite.test_b, extractor, use_cache=False)
    assert torch.allclose(f1, f7, rtol=1e-4, atol=1e-5)
    assert fid_from_features(f1, fb) == pytest.approx(fid_from_features(f7, fb), rel=1e-4)


def test_feature_cache_is_keyed_by_content(smoke_suite, extractor, tmp_path, monkeypatch):
    from bench.metrics import fid_kid

    calls = []
    original = fid_kid.InceptionExtractor.__call__
    monkeypatch.setattr(fid_kid.InceptionExtractor, "__call__", lambda self, b: calls.append(len(b)) or original(self, b))
    files = list(smoke_suite.test_a[:3])
    first = fid_kid.extract_features(files, extractor)
    n_calls = len(calls)
    assert torch.equal(fid_kid.extract_features(files, extractor), first) and len(calls) == n_calls
    # Same bytes under another name: still a hit. Different bytes under the same name: a miss.
    copy = tmp_path / "renamed.png"
    copy.write_bytes(files[0].read_bytes())
    fid_kid.extract_features([copy, *files[1:]], extractor)
    assert len(calls) == n_calls
    copy.write_bytes(smoke_suite.test_b[0].read_bytes())
    fid_kid.extract_features([copy, *files[1:]], extractor)
    assert len(calls) > n_calls


def test_lpips_equals_the_lpips_package(smoke_suite, with_weights):
    import lpips

    from bench.metrics.lpips_metric import LpipsAlex

    ours = LpipsAlex()
    ref = lpips.LPIPS(net="alex", version="0.1", verbose=False)  # loads the trunk from TORCH_HOME's hub cache
    x = torch.stack([to_tensor(read_rgb(p)) for p in smoke_suite.test_a[:4]])
    y = torch.stack([to_tensor(read_rgb(p)) for p in smoke_suite.test_b[:4]])
    expected = ref(x * 2 - 1, y * 2 - 1).flatten()
    got = ours(x, y)
    assert torch.allclose(got, expected, rtol=1e-5, atol=1e-6)
    assert (got > 0.01).all()
    assert torch.allclose(ours(x, x), torch.zeros(4), atol=1e-6)


def test_psnr_and_ssim_equal_scikit_image(smoke_suite):
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity

    for a_path, b_path in list(zip(smoke_suite.test_a, smoke_suite.test_b))[:4]:
        a, b = read_rgb(a_path), read_rgb(b_path)
        assert psnr(a, b) == pytest.approx(peak_signal_noise_ratio(b, a, data_range=255), rel=1e-10)
        ref = structural_similarity(a, b, gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
                                    data_range=255, channel_axis=-1)
        assert ssim(a, b) == pytest.approx(ref, abs=1e-9)
    img = read_rgb(smoke_suite.test_a[0])
    assert psnr(img, img) == float("inf") and ssim(img, img) == pytest.approx(1.0)


def test_paired_metrics_reject_mismatched_sizes():
    with pytest.raises(ValueError, match="one size"):
        psnr(np.zeros((20, 20, 3), np.uint8), np.zeros((20, 21, 3), np.uint8))
    with pytest.raises(ValueError, match="at least 11"):
        ssim(np.zeros((8, 40, 3), np.uint8), np.zeros((8, 40, 3), np.uint8))


def test_bootstrap_ci_brackets_the_mean_and_is_deterministic():
    v = np.random.default_rng(0).normal(5, 1, 200)
    lo, hi = bootstrap_mean_ci(v)
    assert lo < v.mean() < hi and (lo, hi) == bootstrap_mean_ci(v)
    # Roughly the normal-theory width 2 * 1.96 * sd / sqrt(n).
    assert hi - lo == pytest.approx(2 * 1.96 * v.std() / np.sqrt(len(v)), rel=0.2)


def test_missing_weights_name_file_hash_and_path(monkeypatch, tmp_path):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty"))
    with pytest.raises(WeightsMissing) as err:
        resolve(INCEPTION_V3)
    msg = str(err.value)
    assert INCEPTION_V3.filename in msg and "6726825d" in msg and str(tmp_path / "empty") in msg
    assert INCEPTION_V3.url in msg


def test_substitute_weights_are_labelled(with_weights):
    r = resolve(ALEXNET)
    assert not r.verified and "SUBSTITUTE" in r.label


def test_weights_are_loaded_without_unpickling(with_weights, tmp_path, monkeypatch):
    import pickle

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    bad = tmp_path / ALEXNET.filename
    with open(bad, "wb") as fh:
        pickle.dump({"x": Evil()}, fh)
    monkeypatch.setenv("AUGAN_BENCH_WEIGHTS", str(tmp_path))
    with pytest.raises(ValueError, match="weights-only"):
        resolve(ALEXNET).load_state_dict()


def test_fid_gram_form_equals_torch_fidelity_and_cis_bracket(smoke_suite, extractor):
    from bench.metrics.fid_kid import _fid_gram, bootstrap_fid_kid_ci, extract_features, fid_from_features, kid_from_features

    rng = np.random.default_rng(0)
    a = torch.from_numpy(rng.normal(0, 1, (40, 64)))
    b = torch.from_numpy(rng.normal(0.3, 1.2, (50, 64)))
    assert _fid_gram(a.numpy(), b.numpy()) == pytest.approx(fid_from_features(a, b), rel=1e-6)
    fa = extract_features(smoke_suite.test_a, extractor)
    fb = extract_features(smoke_suite.test_b, extractor)
    fid = fid_from_features(fa, fb)
    assert _fid_gram(fa.double().numpy(), fb.double().numpy()) == pytest.approx(fid, rel=1e-4)
    (flo, fhi), (klo, khi) = bootstrap_fid_kid_ci(fa, fb)
    kid, _ = kid_from_features(fa, fb)
    assert flo < fid < fhi and klo < kid < khi
    assert bootstrap_fid_kid_ci(fa, fb) == ((flo, fhi), (klo, khi))  # seeded


def test_sift_matches_equal_a_brute_force_ratio_test(smoke_suite):
    import cv2

    from bench.metrics.localisation import LOWE_RATIO, sift_matches

    def brute_force(a, b):
        sift = cv2.SIFT_create()
        da = sift.detectAndCompute(cv2.cvtColor(a, cv2.COLOR_RGB2GRAY), None)[1].astype(np.float64)
        db = sift.detectAndCompute(cv2.cvtColor(b, cv2.COLOR_RGB2GRAY), None)[1].astype(np.float64)
        d = np.sqrt(((da[:, None, :] - db[None, :, :]) ** 2).sum(-1))
        two = np.sort(d, axis=1)[:, :2]
        return int((two[:, 0] < LOWE_RATIO * two[:, 1]).sum())

    night, day = read_rgb(smoke_suite.test_a[0]), read_rgb(smoke_suite.twins[0])
    other_day = read_rgb(smoke_suite.twins[1])
    assert sift_matches(night, day) == brute_force(night, day)
    assert sift_matches(day, other_day) == brute_force(day, other_day)
    # A frame matches itself far better than the night frame or another scene matches it.
    self_matches = sift_matches(day, day)
    assert self_matches > 3 * max(sift_matches(night, day), sift_matches(other_day, day))
    assert sift_matches(np.zeros_like(day), day) == 0  # a flat image has no keypoints


def test_kid_estimate_and_its_bootstrap_take_sets_of_unequal_size():
    """A reference set of another size than the test set (most real suites, bench score --allow-missing): the
    unbiased MMD^2 equals its definition written out, equals torch-fidelity's bits when sizes agree, and the
    bootstrap gives finite intervals instead of torch-fidelity's equal-size assertion."""
    from torch_fidelity.metric_kid import kernel_poly, mmd2

    from bench.metrics.fid_kid import bootstrap_fid_kid_ci, mmd2_unbiased

    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(30, 64)), rng.normal(size=(30, 64)) + 0.2
    assert mmd2_unbiased(kernel_poly(x, x), kernel_poly(x, y), kernel_poly(y, y)) == \
        mmd2(kernel_poly(x, x), kernel_poly(x, y), kernel_poly(y, y))
    y = y[:17]
    kxx, kyy, kxy = kernel_poly(x, x), kernel_poly(y, y), kernel_poly(x, y)
    m, n = len(x), len(y)
    by_definition = ((kxx.sum() - np.trace(kxx)) / (m * (m - 1)) + (kyy.sum() - np.trace(kyy)) / (n * (n - 1))
                     - 2 * kxy.sum() / (m * n))
    assert mmd2_unbiased(kxx, kxy, kyy) == pytest.approx(by_definition, rel=1e-12)
    fid_ci, kid_ci = bootstrap_fid_kid_ci(torch.from_numpy(x).float(), torch.from_numpy(y).float(), n_boot=50)
    assert all(np.isfinite(v) for v in (*fid_ci, *kid_ci)) and kid_ci[0] < kid_ci[1]


def test_fid_of_a_resample_larger_than_the_feature_dimension_equals_brute_force():
    """Sets with more images than feature dimensions (every BDD100K paper run: 3,929 images, d = 2048) take the
    covariance form: each resample's FID equals torch-fidelity's FID of the resampled rows written out."""
    from bench.metrics.fid_kid import _fid_weighted, fid_from_features

    rng = np.random.default_rng(1)
    x1, x2 = rng.normal(size=(300, 32)), rng.normal(0.2, 1.1, size=(260, 32))
    for _ in range(3):
        i, j = rng.integers(0, 300, 300), rng.integers(0, 260, 260)
        w1, w2 = (torch.from_numpy(np.bincount(k, minlength=n).astype(np.float64)) for k, n in ((i, 300), (j, 260)))
        fast = _fid_weighted(torch.from_numpy(x1), w1, torch.from_numpy(x2), w2)
        assert fast == pytest.approx(fid_from_features(torch.from_numpy(x1[i]), torch.from_numpy(x2[j])), rel=1e-6)


@pytest.mark.slow
def test_fid_and_kid_cis_exist_above_2048_images():
    """The CI used to be empty above 2,048 images (the size of Inception's features)."""
    from bench.metrics.fid_kid import bootstrap_fid_kid_ci, fid_from_features

    rng = np.random.default_rng(2)
    # Low-rank features with a little noise, as Inception's are (pure noise at N ~ d would be all bias).
    basis = rng.normal(size=(40, 2048))
    a = torch.from_numpy(rng.normal(size=(3000, 40)) @ basis + 0.1 * rng.normal(size=(3000, 2048)))
    b = torch.from_numpy(rng.normal(0.3, 1.0, size=(2100, 40)) @ basis + 0.1 * rng.normal(size=(2100, 2048)))
    (flo, fhi), (klo, khi) = bootstrap_fid_kid_ci(a, b, n_boot=4)
    assert all(np.isfinite(v) for v in (flo, fhi, klo, khi)) and flo < fhi and klo < khi
    fid = fid_from_features(a, b)
    assert fid / 2 < flo < fhi < 2 * fid  # the resamples scatter around the estimate
