"""The synthetic suites' evaluators: shipped weights (hash-checked, current), the cache, and their ids."""

import hashlib
import json
from dataclasses import asdict, dataclass, replace

import pytest

from bench.downstream import training
from bench.errors import BenchError


def test_every_shipped_evaluator_is_present_hash_checked_and_made_with_the_current_preset():
    """A change to a preset's training config changes its key: the shipped file would silently stop being used
    (and the default run would train again), so the index must be remade with the config."""
    from bench.downstream.shipped import SHIPPED_PRESETS
    from bench.downstream.synthetic_detector import DETECTOR_PRESETS
    from bench.downstream.synthetic_segmenter import SEGMENTER_PRESETS
    from bench.suites import get_suite
    from bench.suites.synthetic import DATA_SEED, day_training_recipe
    from bench.weights import file_sha256

    index = json.loads(training.SHIPPED_INDEX.read_text())
    presets = {"segmenters": SEGMENTER_PRESETS, "detectors": DETECTOR_PRESETS}
    for kind, entries in presets.items():
        shipped = {e["preset"]: e for e in index[kind].values()}
        assert set(shipped) == set(SHIPPED_PRESETS), kind
        for preset, entry in shipped.items():
            assert entry["config"] == json.loads(json.dumps(asdict(entries[preset]))), f"{kind} {preset}: remake them"
            assert file_sha256(training.SHIPPED_DIR / entry["file"]) == entry["sha256"]
            # Found by the recipe of the day training split the default run renders (not by its bytes).
            spec = get_suite("synthetic-night").spec(preset, None)
            recipe = day_training_recipe(spec["n_train"], spec["height"], spec["width"], DATA_SEED)
            key = training.training_key(entries[preset], recipe=recipe)
            assert index[kind][key] is entry and entry["recipe"] == recipe, f"{kind} {preset}: re-key the index"


def test_a_recipe_finds_the_shipped_weights_whatever_bytes_this_cpu_rendered(shipped_here, tmp_path, monkeypatch):
    """The same recipe on a CPU whose vector units round the renderer's last bits otherwise: same key, same weights;
    without a recipe (a folder suite) the bytes decide."""
    folder, files, _ = shipped_here
    index = json.loads((folder / "index.json").read_text())
    entry = next(iter(index["segmenters"].values()))
    recipe_key = training.training_key(_Cfg(), files, recipe='["trainB", 2]')
    (folder / "index.json").write_text(json.dumps({"segmenters": {recipe_key: entry}}))
    training.shipped_index.cache_clear()
    found = training.evaluator_weights("segmenters", training.training_key(_Cfg(), files, recipe='["trainB", 2]'))
    files[0].write_bytes(b"rendered elsewhere")
    again = training.evaluator_weights("segmenters", training.training_key(_Cfg(), files, recipe='["trainB", 2]'))
    assert found is not None and found.shipped and again == found
    assert training.evaluator_weights("segmenters", training.training_key(_Cfg(), files)) is None
    assert training.training_key(_Cfg(), files, recipe='["trainB", 3]') != recipe_key


@dataclass(frozen=True)
class _Cfg:
    steps: int = 3


@pytest.fixture
def shipped_here(tmp_path, monkeypatch):
    """An evaluators folder of our own with one shipped file for a small training set."""
    files = []
    for i in range(2):
        f = tmp_path / f"img{i}.png"
        f.write_bytes(bytes([i]) * 10)
        files.append(f)
    folder = tmp_path / "evaluators"
    folder.mkdir()
    (folder / "segmenter-x.safetensors").write_bytes(b"weights")
    key = training.training_key(_Cfg(), files)
    index = {"segmenters": {key: {"file": "segmenter-x.safetensors", "sha256": hashlib.sha256(b"weights").hexdigest(),
                                  "preset": "x", "config": asdict(_Cfg())}}}
    (folder / "index.json").write_text(json.dumps(index))
    monkeypatch.setattr(training, "SHIPPED_DIR", folder)
    monkeypatch.setattr(training, "SHIPPED_INDEX", folder / "index.json")
    monkeypatch.setenv("AUGAN_BENCH_CACHE", str(tmp_path / "cache"))
    training.shipped_index.cache_clear()
    yield folder, files, key
    training.shipped_index.cache_clear()


def test_shipped_weights_are_found_by_their_training_key(shipped_here):
    folder, files, key = shipped_here
    w = training.evaluator_weights("segmenters", training.training_key(_Cfg(), files))
    assert w is not None and w.shipped and w.path == folder / "segmenter-x.safetensors" and w.key == key
    assert w.id.startswith(f"{key[:12]}:shipped:sha256=")
    # Another config, or other training bytes, is another key: not shipped, not cached, so None (train it).
    assert training.evaluator_weights("segmenters", training.training_key(_Cfg(steps=4), files)) is None
    files[0].write_bytes(b"other")
    assert training.evaluator_weights("segmenters", training.training_key(_Cfg(), files)) is None


def test_a_damaged_shipped_file_is_refused_with_the_fix(shipped_here):
    folder, files, _ = shipped_here
    (folder / "segmenter-x.safetensors").write_bytes(b"weightz")
    with pytest.raises(BenchError, match=r"segmenter-x.safetensors: the shipped segmenter weights are damaged.*"
                                         r"Reinstall augan-bench, or remake them"):
        training.evaluator_weights("segmenters", training.training_key(_Cfg(), files))
    (folder / "segmenter-x.safetensors").unlink()
    with pytest.raises(BenchError, match=r"sha256 missing"):
        training.evaluator_weights("segmenters", training.training_key(_Cfg(), files))


def test_a_locally_trained_evaluator_is_cached_and_says_so(smoke_suite, tmp_path, monkeypatch):
    """No evaluator ships for smoke: it is trained, cached under its key, and its id says trained-locally with
    the hash of the cached file; a second call loads the same file."""
    from bench.downstream.synthetic_segmenter import SEGMENTER_PRESETS, trained_segmenter
    from bench.weights import file_sha256

    monkeypatch.setenv("AUGAN_BENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setitem(SEGMENTER_PRESETS, "smoke", replace(SEGMENTER_PRESETS["smoke"], steps=2, batch_size=2))
    first = trained_segmenter(smoke_suite.train_b, smoke_suite.train_b_labels, "smoke")
    cached = list((tmp_path / "cache" / "segmenters").glob("*.safetensors"))
    assert len(cached) == 1
    assert first.id.endswith(f":trained-locally:sha256={file_sha256(cached[0])[:12]}")
    again = trained_segmenter(smoke_suite.train_b, smoke_suite.train_b_labels, "smoke")
    assert again.id == first.id
