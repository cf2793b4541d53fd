import numpy as np
import pytest
from scipy import ndimage
from scipy.signal import convolve2d

from bench.data.scene import CAR, CLASS_NAMES, IGNORE, PERSON
from bench.data.synthetic import render_sample

H, W = 96, 192


def _luma(img: np.ndarray) -> np.ndarray:
    return img.astype(np.float64) @ np.array([0.299, 0.587, 0.114])


def _noise_sigma(img: np.ndarray) -> float:
    """Immerkaer's (1996) fast noise estimate: the residual of a kernel that cancels smooth structure."""
    k = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], np.float64)
    y = _luma(img)
    r = np.abs(convolve2d(y, k, mode="valid")).sum()
    return float(np.sqrt(np.pi / 2) * r / (6 * (y.shape[0] - 2) * (y.shape[1] - 2)))


@pytest.mark.parametrize("condition", ["night", "rain", "fog"])
def test_deterministic_in_condition_split_index_seed(condition):
    a = render_sample(condition, "test", 3, 0, H, W)
    b = render_sample(condition, "test", 3, 0, H, W)
    assert np.array_equal(a.adverse, b.adverse) and np.array_equal(a.day, b.day)
    assert np.array_equal(a.label, b.label) and a.boxes == b.boxes
    for other in (render_sample(condition, "test", 4, 0, H, W), render_sample(condition, "test", 3, 1, H, W),
                  render_sample(condition, "trainA", 3, 0, H, W)):
        assert not np.array_equal(a.adverse, other.adverse)


def test_twins_share_geometry_across_conditions():
    night = render_sample("night", "test", 0, 0, H, W)
    fog = render_sample("fog", "test", 0, 0, H, W)
    assert np.array_equal(night.label, fog.label)
    assert np.array_equal(night.day, fog.day)  # the day twin depends on the scene only


def test_labels_and_boxes_agree_with_the_scene():
    n_cars = n_persons = 0
    for i in range(12):
        s = render_sample("night", "test", i, 0, H, W)
        assert s.label.shape == (H, W) and s.adverse.shape == (H, W, 3)
        assert set(np.unique(s.label)) <= set(CLASS_NAMES) | {IGNORE}
        covered = {CAR: np.zeros((H, W), bool), PERSON: np.zeros((H, W), bool)}
        for b in s.boxes:
            x, y, w, h = b["bbox"]
            assert 0 <= x and 0 <= y and x + w <= W and y + h <= H and w > 0 and h > 0
            cls = CAR if b["category"] == "car" else PERSON
            inside = s.label[y:y + h, x:x + w] == cls
            # The box is tight around labelled pixels of its class: every edge touches one.
            assert inside[0].any() and inside[-1].any() and inside[:, 0].any() and inside[:, -1].any()
            assert inside.sum() >= b["area"]
            covered[cls][y:y + h, x:x + w] = True
            n_cars += cls == CAR
            n_persons += cls == PERSON
        for cls in (CAR, PERSON):
            # Only objects too small to detect (< 12 visible pixels each) go without a box.
            blobs, n = ndimage.label((s.label == cls) & ~covered[cls])
            sizes = np.bincount(blobs.ravel())[1:]
            assert (sizes < 24).all(), f"an object of {sizes.max()} labelled pixels has no box"
    assert n_cars > 10 and n_persons > 0


def test_scene_contains_every_class():
    seen = set()
    for i in range(12):
        seen |= set(np.unique(render_sample("night", "test", i, 0, H, W).label).tolist())
    assert set(CLASS_NAMES) <= seen


@pytest.mark.parametrize("condition", ["night", "rain"])
def test_night_is_darker_and_noisier_than_its_twin(condition):
    for i in range(6):
        s = render_sample(condition, "test", i, 0, H, W)
        assert _luma(s.adverse).mean() < 0.75 * _luma(s.day).mean()
        # Noisier in the sense that matters: the noise is a far larger fraction of the signal.
        snr_adverse = _luma(s.adverse).mean() / _noise_sigma(s.adverse)
        snr_day = _luma(s.day).mean() / _noise_sigma(s.day)
        assert snr_adverse < 0.5 * snr_day


def test_fog_erases_distance():
    for i in range(6):
        s = render_sample("fog", "test", i, 0, H, W)
        # Contrast collapses where the scene is far: the upper half (facades, sky) tends to the airlight.
        top = slice(0, H // 2)
        assert _luma(s.adverse[top]).std() < 0.6 * _luma(s.day[top]).std()


def test_size_is_configurable_and_scene_is_resolution_independent():
    small = render_sample("night", "test", 2, 0, 64, 128)
    large = render_sample("night", "test", 2, 0, 128, 256)
    assert large.adverse.shape == (128, 256, 3)
    # Same scene: the label maps agree after nearest downsampling for most pixels.
    agree = (large.label[1::2, 1::2] == small.label).mean()
    assert agree > 0.9
