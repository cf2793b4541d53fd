"""Pretrained-segmenter adapters: safe checkpoint loading, predictions equal to the wrapped model's, and a run
that scores mIoU with one from the command line."""

import json
import pickle

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from bench.downstream.segmenters import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    SegmenterError,
    build_segmenter,
    load_state_dict,
)


def _direct(model, paths, logits_of):
    from bench.data.io import read_rgb

    mean, std = torch.tensor(IMAGENET_MEAN).view(3, 1, 1), torch.tensor(IMAGENET_STD).view(3, 1, 1)
    out = []
    with torch.no_grad():
        for p in paths:
            x = (torch.from_numpy(read_rgb(p)).permute(2, 0, 1).float() / 255.0 - mean) / std
            logits = F.interpolate(logits_of(model, x[None]), size=x.shape[-2:], mode="bilinear", align_corners=False)
            out.append(logits.argmax(1)[0].numpy())
    return out


@pytest.fixture(scope="module")
def lraspp_checkpoint(tmp_path_factory):
    """A 19-class LR-ASPP saved the way model zoos do: wrapped, with numpy objects in its metadata."""
    from torchvision.models.segmentation import lraspp_mobilenet_v3_large

    torch.manual_seed(0)
    model = lraspp_mobilenet_v3_large(weights=None, weights_backbone=None, num_classes=19).eval()
    for m in model.modules():  # default init predicts one class everywhere, which would hide label mix-ups
        if isinstance(m, torch.nn.Conv2d):
            torch.nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
            if m.bias is not None:
                torch.nn.init.normal_(m.bias)
    path = tmp_path_factory.mktemp("ckpt") / "lraspp_cityscapes.pth"
    meta = {"iter": np.int64(80000), "mean": np.array([123.675, 116.28, 103.53]), "dtype": np.dtype("float32")}
    torch.save({"state_dict": {f"module.{k}": v for k, v in model.state_dict().items()}, "meta": meta}, path)
    return model, path


def test_torchvision_adapter_equals_the_model(lraspp_checkpoint, smoke_suite):
    model, path = lraspp_checkpoint
    seg = build_segmenter(f"torchvision:lraspp_mobilenet_v3_large:{path}")
    paths = list(smoke_suite.test_a[:3])
    ours = seg.predict(paths)
    ref = _direct(model, paths, lambda m, x: m(x)["out"])
    assert all(np.array_equal(a, b) for a, b in zip(ours, ref))
    assert ours[0].dtype == np.uint8 and ours[0].shape == (64, 128)
    assert len(np.unique(np.concatenate([o.ravel() for o in ours]))) > 1  # random weights, still not constant
    from bench.weights import file_sha256

    assert seg.id == f"torchvision-lraspp_mobilenet_v3_large:lraspp_cityscapes.pth:sha256={file_sha256(path)[:12]}"


def test_checkpoints_that_need_unpickling_are_refused(tmp_path):
    class Payload:
        def __reduce__(self):
            return (print, ("this must never run",))

    path = tmp_path / "evil.pth"
    with open(path, "wb") as fh:
        pickle.dump({"state_dict": {}, "meta": Payload()}, fh)
    with pytest.raises(SegmenterError, match="cannot be loaded safely"):
        load_state_dict(path)
    torch.save({"state_dict": {"w": torch.ones(2)}, "note": "fine"}, tmp_path / "ok.pth")
    assert set(load_state_dict(tmp_path / "ok.pth")) == {"w"}


@pytest.mark.parametrize("spec, message", [
    ("torchvision:no_such_net:x.pth", "no segmentation model 'no_such_net'; choose one of .*deeplabv3_resnet50"),
    ("torchvision:fcn_resnet50:/nonexistent.pth", "does not exist"),
    ("torchvision:lraspp_mobilenet_v3_large", "cannot read segmenter spec"),
    ("deeplab:x", "cannot read segmenter spec"),
    ("segformer:/nonexistent/folder", "config.json"),
])
def test_bad_specs_say_what_to_do(spec, message):
    with pytest.raises(SegmenterError, match=message):
        build_segmenter(spec)


def test_wrong_architecture_is_reported(lraspp_checkpoint):
    _, path = lraspp_checkpoint
    with pytest.raises(SegmenterError, match="does not fit torchvision deeplabv3_mobilenet_v3_large"):
        build_segmenter(f"torchvision:deeplabv3_mobilenet_v3_large:{path}")


def test_segformer_adapter_equals_the_model(tmp_path, smoke_suite):
    transformers = pytest.importorskip("transformers", reason="pip install 'augan-bench[hf]' for SegFormer")
    config = transformers.SegformerConfig(num_labels=19, hidden_sizes=[8, 16, 24, 32], num_attention_heads=[1, 1, 2, 2],
                                          depths=[1, 1, 1, 1], decoder_hidden_size=32)
    torch.manual_seed(0)
    model = transformers.SegformerForSemanticSegmentation(config).eval()
    model.save_pretrained(tmp_path / "segformer-tiny")
    seg = build_segmenter(f"segformer:{tmp_path / 'segformer-tiny'}")
    paths = list(smoke_suite.test_a[:2])
    ref = _direct(model, paths, lambda m, x: m(pixel_values=x).logits)
    assert all(np.array_equal(a, b) for a, b in zip(seg.predict(paths), ref))
    assert seg.id.startswith("segformer:segformer-tiny:model.safetensors:sha256=")


def test_mmseg_adapter_loads_a_zoo_style_checkpoint(tmp_path, smoke_suite):
    pytest.importorskip("mmseg.apis", reason="mmsegmentation + mmcv with compiled ops not installed (optional extra; "
                                             "see README 'mmsegmentation')")
    import mmseg
    from mmseg.apis import inference_model, init_model

    from pathlib import Path

    config = Path(mmseg.__file__).parent / ".mim/configs/deeplabv3/deeplabv3_r18-d8_4xb2-80k_cityscapes-512x1024.py"
    torch.manual_seed(0)
    model = init_model(str(config), checkpoint=None, device="cpu")
    ckpt = tmp_path / "deeplabv3_r18.pth"
    torch.save({"state_dict": model.state_dict(), "meta": {"mmseg_version": "1.2.2", "iter": np.int64(80000)}}, ckpt)
    torch.manual_seed(1)  # the adapter's own init differs; only the checkpoint can make the weights equal
    seg = build_segmenter(f"mmseg:{config}:{ckpt}")
    assert all(torch.equal(v, seg.model.state_dict()[k]) for k, v in model.state_dict().items())
    from bench.data.io import read_rgb

    img = read_rgb(smoke_suite.test_a[0])
    ref = inference_model(model, np.ascontiguousarray(img[..., ::-1])).pred_sem_seg.data[0].numpy()
    assert np.array_equal(seg.predict([smoke_suite.test_a[0]])[0], ref)


def test_the_default_segmenter_is_the_pinned_mmseg_deeplabv3(tmp_path, monkeypatch):
    """--segmenter default: mmseg's DeepLabV3 R-18-D8 config with the pinned zoo file; without mmseg (or the file)
    one line says what to install or download."""
    from bench.weights import MMSEG_DEEPLABV3_R18, WEIGHTS

    assert WEIGHTS["mmseg-deeplabv3-r18-d8-cityscapes"] is MMSEG_DEEPLABV3_R18
    assert MMSEG_DEEPLABV3_R18.sha256_prefix == "23dffbe2" and MMSEG_DEEPLABV3_R18.url.endswith(
        MMSEG_DEEPLABV3_R18.filename)
    monkeypatch.setenv("AUGAN_BENCH_OFFLINE", "1")
    monkeypatch.setenv("AUGAN_BENCH_WEIGHTS", str(tmp_path))
    try:
        import mmseg  # noqa: F401
    except ImportError:
        with pytest.raises(SegmenterError, match=r"needs mmsegmentation and mmcv .*pip install -e '.\[mmseg\]'"):
            build_segmenter("default")
    else:
        with pytest.raises(SegmenterError, match="--segmenter default: weights file deeplabv3_r18-d8_512x1024.*download "
                                                 "https://download.openmmlab.com/"):
            build_segmenter("default")


def test_run_scores_miou_with_a_pretrained_segmenter_on_a_folder_suite(tmp_path, lraspp_checkpoint, with_weights):
    """bench data synth writes testA_labels/; a folder suite then scores mIoU with --segmenter, and the number
    equals the confusion-matrix mIoU of the adapter's own predictions."""
    from click.testing import CliRunner

    from bench.cli import main
    from bench.data.io import read_label
    from bench.metrics.segmentation import confusion, mean_iou
    from bench.results import read_metrics_csv

    model, path = lraspp_checkpoint
    data = tmp_path / "data"
    cli = CliRunner()
    assert cli.invoke(main, ["data", "synth", "--out", str(data), "--n-train", "4", "--n-test", "3",
                             "--size", "64x128"]).exit_code == 0
    spec = f"torchvision:lraspp_mobilenet_v3_large:{path}"
    res = cli.invoke(main, ["run", "--suite", f"folder:{data}", "--methods", "identity", "--preset", "smoke",
                            "--out", str(tmp_path / "out"), "--segmenter", spec, "--device", "cpu"])
    assert res.exit_code == 0, res.output
    run_dir = next((tmp_path / "out").glob("*/smoke"))
    rec = {r.metric: r for r in read_metrics_csv(run_dir / "metrics.csv")}
    tests = sorted((data / "testA").glob("*.png"))
    preds = build_segmenter(spec).predict(tests)
    cm = sum(confusion(p, read_label(data / "testA_labels" / t.name)) for p, t in zip(preds, tests))
    assert rec["miou"].value == pytest.approx(100 * mean_iou(cm), abs=1e-9)
    assert rec["miou"].extractor.startswith("torchvision-lraspp")
    assert json.loads((run_dir / "manifest.json").read_text())["config"]["segmenter"] == spec
    from PIL import Image

    def run_again(name):
        return cli.invoke(main, ["run", "--suite", f"folder:{data}", "--methods", "identity", "--preset", "smoke",
                                 "--out", str(tmp_path / name), "--segmenter", spec, "--device", "cpu"])

    label = data / "testA_labels" / tests[0].name
    good = np.array(Image.open(label))
    # A label at twice its image's size (same aspect) is scored against a resized prediction, and the table says so.
    Image.fromarray(np.kron(good, np.ones((2, 2), dtype=np.uint8))).save(label)
    res = run_again("twice")
    assert res.exit_code == 0, res.output
    note = next(r.note for r in read_metrics_csv(next((tmp_path / "twice").glob("*/smoke")) / "metrics.csv")
                if r.metric == "miou")
    assert note.startswith("1 of 3 label maps at another size than the translation (same aspect ratio)")
    assert note.endswith(f"({label.name})")  # named, as every other counted skip is
    # Another aspect ratio: not this image's label. An RGB label, or Cityscapes labelIds (0-33): wrong numbers.
    for bad, says in ((good[:, :40], "another aspect ratio"),
                      (np.stack([good] * 3, axis=-1), "a RGB image, not a label map"),
                      (np.where(good == 255, 33, good + 7).astype(np.uint8), "looks like a Cityscapes labelIds map")):
        Image.fromarray(bad).save(label)
        res = run_again("bad")
        assert res.exit_code == 2 and says in res.output and str(label) in res.output, res.output
        assert "Traceback" not in res.output
    # A partial label folder is an error naming the missing file.
    label.unlink()
    res = run_again("out2")
    assert res.exit_code == 2 and tests[0].name in res.output


def test_segmenter_size_runs_the_model_at_that_size_and_returns_image_size_maps(lraspp_checkpoint, smoke_suite):
    """--segmenter-size HxW: input resized bilinearly to HxW, logits resized back to the image size."""
    model, path = lraspp_checkpoint
    seg = build_segmenter(f"torchvision:lraspp_mobilenet_v3_large:{path}", size=(32, 64))
    paths = list(smoke_suite.test_a[:2])
    ours = seg.predict(paths)

    def at_size(m, x):
        small = F.interpolate(x, size=(32, 64), mode="bilinear", align_corners=False)
        return m(small)["out"]

    ref = _direct(model, paths, at_size)
    assert all(o.shape == (64, 128) and np.array_equal(o, r) for o, r in zip(ours, ref))
    native = build_segmenter(f"torchvision:lraspp_mobilenet_v3_large:{path}").predict(paths)
    assert any(not np.array_equal(a, b) for a, b in zip(ours, native))  # the size really changed the input


def test_bad_segmenter_size_is_refused_with_the_format(tmp_path):
    from click.testing import CliRunner

    from bench.cli import main

    res = CliRunner().invoke(main, ["run", "--preset", "smoke", "--out", str(tmp_path), "--segmenter-size", "512by1024"])
    assert res.exit_code == 2 and "is not HxW" in res.output
