"""COCO box mAP against pycocotools on constructed cases, its bootstrap CI, and the hallucination/removal rates."""

import contextlib
import io
from pathlib import Path

import numpy as np
import pytest

from bench.metrics.detection import evaluate, match

pycocotools = pytest.importorskip("pycocotools", reason="pip install pycocotools (in the dev extra)")


def _pycocotools(gt: dict, dets: list[dict]) -> tuple[float, float, np.ndarray]:
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO()
        coco.dataset = {k: v for k, v in gt.items()}
        coco.createIndex()
        res = coco.loadRes([dict(d) for d in dets]) if dets else COCO()
        if not dets:
            res.dataset = {"images": gt["images"], "categories": gt["categories"], "annotations": []}
            res.createIndex()
        ev = COCOeval(coco, res, "bbox")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return ev.stats[0], ev.stats[1], ev.eval["precision"][:, :, :, 0, 2]


def _random_case(rng: np.random.Generator, n_images: int = 12) -> tuple[dict, list[dict]]:
    """Images with and without boxes, a crowd box now and then, a category absent from some images,
    detections near ground truth (true positives at various IoUs), duplicates and pure false positives."""
    images = [{"id": i + 1, "file_name": f"{i:05d}.png", "height": 128, "width": 256} for i in range(n_images)]
    cats = [{"id": 1, "name": "person"}, {"id": 3, "name": "car"}, {"id": 7, "name": "truck"}]
    anns, dets = [], []
    for img in images:
        for _ in range(int(rng.integers(0, 5))):
            x, y = rng.uniform(0, 200), rng.uniform(0, 100)
            w, h = rng.uniform(4, 50), rng.uniform(4, 30)
            cat = int(rng.choice([1, 3, 3]))  # truck (7) never has ground truth
            crowd = int(rng.random() < 0.1)
            anns.append({"id": len(anns) + 1, "image_id": img["id"], "category_id": cat, "bbox": [x, y, w, h],
                         "area": w * h, "iscrowd": crowd})
            for _ in range(int(rng.integers(0, 3))):  # 0-2 detections per box, jittered
                j = rng.normal(0, 0.15, 4) * [w, h, w, h]
                dets.append({"image_id": img["id"], "category_id": cat, "bbox": [x + j[0], y + j[1], abs(w + j[2]) + 1,
                             abs(h + j[3]) + 1], "score": float(np.round(rng.random(), 2))})  # ties happen
        for _ in range(int(rng.integers(0, 3))):  # false positives, also of the absent category
            dets.append({"image_id": img["id"], "category_id": int(rng.choice([1, 3, 7])),
                         "bbox": [rng.uniform(0, 200), rng.uniform(0, 100), rng.uniform(4, 40), rng.uniform(4, 30)],
                         "score": float(rng.random())})
    return {"images": images, "annotations": anns, "categories": cats}, dets


@pytest.mark.parametrize("seed", range(8))
def test_map_equals_pycocotools_on_random_cases(seed):
    gt, dets = _random_case(np.random.default_rng(seed))
    ap, ap50, precision = _pycocotools(gt, dets)
    ours = evaluate(gt, dets, n_boot=0)
    assert ours.ap == pytest.approx(ap, abs=1e-12)
    assert ours.ap50 == pytest.approx(ap50, abs=1e-12)
    np.testing.assert_allclose(match(gt, dets).precision(), precision, atol=1e-12)
    assert np.isnan(ours.per_class["truck"])  # no ground truth: excluded, as in COCO (-1)


def test_map_by_hand_and_special_cases():
    images = [{"id": 1}, {"id": 2}, {"id": 3}]
    cats = [{"id": 1, "name": "person"}]
    gt = {"images": images, "categories": cats, "annotations": [
        {"id": 1, "image_id": 1, "category_id": 1, "bbox": [0, 0, 10, 10], "area": 100, "iscrowd": 0},
        {"id": 2, "image_id": 2, "category_id": 1, "bbox": [0, 0, 10, 10], "area": 100, "iscrowd": 0},
        {"id": 3, "image_id": 2, "category_id": 1, "bbox": [50, 50, 40, 40], "area": 1600, "iscrowd": 1},
    ]}
    # A perfect detection per box; a detection inside the crowd region is ignored, not a false positive;
    # image 3 (no boxes) gets nothing.
    perfect = [{"image_id": 1, "category_id": 1, "bbox": [0, 0, 10, 10], "score": 0.9},
               {"image_id": 2, "category_id": 1, "bbox": [0, 0, 10, 10], "score": 0.8},
               {"image_id": 2, "category_id": 1, "bbox": [60, 60, 10, 10], "score": 0.95}]
    assert evaluate(gt, perfect, n_boot=0).ap == pytest.approx(1.0)
    # One box missed: recall stops at 0.5, so 51 of 101 recall points have precision 1.
    assert evaluate(gt, perfect[:1], n_boot=0).ap50 == pytest.approx(51 / 101)
    # A false positive on the box-free image, scored above everything, halves the first precision points.
    fp = perfect + [{"image_id": 3, "category_id": 1, "bbox": [0, 0, 5, 5], "score": 0.99}]
    for ours, ref in zip(evaluate(gt, fp, n_boot=0).__dict__.values(), _pycocotools(gt, fp)[:2]):
        assert ours == pytest.approx(ref)
    assert evaluate(gt, [], n_boot=0).ap == 0.0
    with pytest.raises(ValueError, match="image id 9"):
        evaluate(gt, [{"image_id": 9, "category_id": 1, "bbox": [0, 0, 1, 1], "score": 1.0}])


def test_weighted_accumulation_equals_duplicated_images():
    """The bootstrap's multiplicities give exactly the AP of the test set with images repeated."""
    gt, dets = _random_case(np.random.default_rng(11), n_images=6)
    counts = np.array([2, 0, 1, 3, 1, 0])
    images, anns, dups = [], [], []
    for src in range(6):
        for _ in range(counts[src]):
            new_id = len(images) + 1
            images.append({"id": new_id})
            anns += [dict(a, id=len(anns) + 1, image_id=new_id) for a in gt["annotations"] if a["image_id"] == src + 1]
            dups += [dict(d, image_id=new_id) for d in dets if d["image_id"] == src + 1]
    expanded = {"images": images, "annotations": anns, "categories": gt["categories"]}
    np.testing.assert_allclose(match(gt, dets).precision(counts), match(expanded, dups).precision(), atol=1e-12)


def test_bootstrap_ci_brackets_the_estimate():
    gt, dets = _random_case(np.random.default_rng(3), n_images=30)
    s = evaluate(gt, dets, n_boot=200)
    assert s.ap_ci[0] < s.ap < s.ap_ci[1]
    assert s.ap50_ci[0] < s.ap50 < s.ap50_ci[1]
    assert evaluate(gt, dets, n_boot=200).ap_ci == s.ap_ci  # seeded
    # Per-class AP gets its CI from the same resamples (written out by hand here).
    from bench.metrics.bootstrap import draws_for_seed

    m = match(gt, dets)
    by_hand = np.array([[p[:, :, k][p[:, :, k] > -1].mean() if (p[:, :, k] > -1).any() else np.nan
                         for k in range(len(m.categories))]
                        for p in (m.precision(np.bincount(i, minlength=30)) for i in draws_for_seed(30, 0, 200).indices())])
    for k, name in enumerate(s.per_class):
        if np.isnan(s.per_class[name]):  # a category without ground truth has no AP, and no interval
            assert name not in s.per_class_ci
            continue
        assert s.per_class_ci[name] == pytest.approx(tuple(np.quantile(by_hand[:, k], [0.025, 0.975])), rel=1e-12)
        assert s.per_class_ci[name][0] <= s.per_class[name] <= s.per_class_ci[name][1]


@pytest.mark.slow
def test_scorer_map_equals_pycocotools_on_the_day_detector(smoke_suite, monkeypatch):
    """End to end: the trained day detector's boxes on the day twins, scored by the runner's scorer
    and by pycocotools from the suite's own COCO file (a short training: only the agreement matters)."""
    import json

    import bench.downstream.synthetic_detector as synthetic_detector
    from bench.scoring import Scorer

    monkeypatch.setitem(synthetic_detector.DETECTOR_PRESETS, "smoke", synthetic_detector.DetectorConfig(steps=60, lr=2e-3))
    scorer = Scorer("synthetic-night", smoke_suite, ("map", "ap50"), preset="smoke")
    records = {r.metric: r for r in scorer.score("day-twin", 0, smoke_suite.twins, only_downstream=True)}
    gt = json.loads(smoke_suite.boxes.read_text())
    ids = {img["file_name"]: img["id"] for img in gt["images"]}
    dets = scorer.detector().detect(smoke_suite.twins, [ids[p.name] for p in smoke_suite.test_a])
    assert dets and {d["category_id"] for d in dets} <= {1, 3}
    assert all(len(d["bbox"]) == 4 and d["bbox"][2] >= 0 and d["bbox"][3] >= 0 for d in dets)  # xywh
    ap, ap50, _ = _pycocotools(gt, dets)
    assert records["map"].value == pytest.approx(100 * ap, abs=1e-9)
    assert records["ap50"].value == pytest.approx(100 * ap50, abs=1e-9)
    assert records["map"].extractor.startswith("synthdet-fcos-r18:")
    assert {"ap/car", "ap/person"} <= set(records)


@pytest.mark.slow
def test_pretrained_torchvision_detector_spec_maps_coco_labels(smoke_suite, tmp_path, with_weights):
    """--detector torchvision:ARCH:CKPT: a 91-label COCO head; only the suite's categories are scored, and the
    run's mAP equals pycocotools on that detector's own output."""
    import json

    import torch
    from click.testing import CliRunner
    from torchvision.models.detection import fasterrcnn_mobilenet_v3_large_320_fpn

    from bench.cli import main
    from bench.downstream.detectors import build_detector
    from bench.results import read_metrics_csv

    torch.manual_seed(0)
    model = fasterrcnn_mobilenet_v3_large_320_fpn(weights=None, weights_backbone=None, num_classes=91)
    with torch.no_grad():  # a head that fires on person and car
        model.roi_heads.box_predictor.cls_score.bias[[1, 3]] = 8.0
    torch.save(model.state_dict(), tmp_path / "frcnn_coco.pth")
    spec = f"torchvision:fasterrcnn_mobilenet_v3_large_320_fpn:{tmp_path / 'frcnn_coco.pth'}"
    gt = json.loads(smoke_suite.boxes.read_text())
    ids = {img["file_name"]: img["id"] for img in gt["images"]}
    det = build_detector(spec, [1, 3])
    dets = det.detect(smoke_suite.test_a, [ids[p.name] for p in smoke_suite.test_a])
    assert dets and {d["category_id"] for d in dets} <= {1, 3}
    # COCO labels the suite does not annotate are dropped, the others kept as they are (ids are COCO's).
    det.model = lambda images: [{"boxes": torch.tensor([[0.0, 0, 4, 4]] * 3), "labels": torch.tensor([1, 14, 3]),
                                 "scores": torch.tensor([0.9, 0.8, 0.7])} for _ in images]
    assert [d["category_id"] for d in det.detect(smoke_suite.test_a[:1], [7])] == [1, 3]
    res = CliRunner().invoke(main, ["run", "--preset", "smoke", "--methods", "identity", "--out", str(tmp_path / "o"),
                                    "--detector", spec, "--device", "cpu"])
    assert res.exit_code == 0, res.output
    rec = {r.metric: r for r in read_metrics_csv(tmp_path / "o" / "synthetic-night" / "smoke" / "metrics.csv")
           if r.method == "identity"}
    assert rec["map"].value == pytest.approx(100 * _pycocotools(gt, dets)[0], abs=1e-9)
    assert rec["map"].extractor.startswith("torchvision-fasterrcnn")
    bad = CliRunner().invoke(main, ["run", "--preset", "smoke", "--out", str(tmp_path / "o2"), "--detector", "yolo:x"])
    assert bad.exit_code == 2 and "cannot read detector spec" in bad.output


def test_the_default_detector_is_the_pinned_torchvision_coco_faster_rcnn(tmp_path, monkeypatch):
    """--detector default loads torchvision's COCO Faster R-CNN R50-FPN v2 from its published file, and only that file:
    a substitute under its name is refused, a missing one named with its URL; the id carries the file's hash."""
    import dataclasses

    import torch
    from torchvision.models.detection import fasterrcnn_resnet50_fpn_v2

    import bench.downstream.detectors as detectors
    from bench.downstream.detectors import DetectorError, build_detector
    from bench.weights import file_sha256

    monkeypatch.setenv("AUGAN_BENCH_OFFLINE", "1")
    monkeypatch.setenv("AUGAN_BENCH_WEIGHTS", str(tmp_path))
    wf = detectors.TORCHVISION_FRCNN_V2_COCO
    with pytest.raises(DetectorError, match=f"--detector default: weights file {wf.filename}.*download {wf.url}"):
        build_detector("default", [1, 3])
    torch.manual_seed(0)
    model = fasterrcnn_resnet50_fpn_v2(weights=None, weights_backbone=None, num_classes=91)
    torch.save(model.state_dict(), tmp_path / wf.filename)
    with pytest.raises(DetectorError, match="is not the published file"):
        build_detector("default", [1, 3])
    sha = file_sha256(tmp_path / wf.filename)
    monkeypatch.setattr(detectors, "TORCHVISION_FRCNN_V2_COCO", dataclasses.replace(wf, sha256_prefix=sha[:8]))
    det = build_detector("default", [1, 3])
    assert det.id == f"torchvision-fasterrcnn_resnet50_fpn_v2:{wf.filename}:sha256={sha[:12]}"
    assert all(torch.equal(v, det.model.state_dict()[k]) for k, v in model.state_dict().items())


def test_unknown_torchvision_detector_lists_the_choices():
    from bench.downstream.detectors import DetectorError, build_detector

    with pytest.raises(DetectorError, match="no detection model 'yolo'; choose one of .*fasterrcnn_resnet50_fpn"):
        build_detector("torchvision:yolo:x.pth", [1, 3])


def test_a_smoke_run_with_a_detector_that_learned_nothing_flags_detection(tmp_path, monkeypatch, capfd):
    """A 2-step detector finds nothing on the day twins either: the table bolds no mAP/AP50, draws no mAP gap, and
    says why with both numbers; bench run warns the same; segmentation (a real gap at smoke) is ranked as usual."""
    import bench.downstream.synthetic_detector as synthetic_detector
    from bench.runner import RunConfig, run

    monkeypatch.setitem(synthetic_detector.DETECTOR_PRESETS, "smoke", synthetic_detector.DetectorConfig(steps=2))
    monkeypatch.setenv("AUGAN_BENCH_OFFLINE", "1")
    summary = run(RunConfig(preset="smoke", methods=("identity", "clahe"), out=tmp_path, device="cpu"))
    table = (summary.run_dir / "tables" / "summary.md").read_text()
    head, *rows = [ln for ln in table.splitlines() if ln.startswith("| ") and "---" not in ln]
    cols = [c.strip() for c in head.strip("|").split("|")]
    cells = {r.strip("|").split("|")[0].strip(): [c.strip() for c in r.strip("|").split("|")] for r in rows}
    for col in ("mAP ↑", "AP50 ↑"):
        assert not any(cells[m][cols.index(col)].startswith("**") for m in cells), col
    assert "mAP gap recovered ↑" not in cols and "mIoU gap recovered ↑" in cols
    assert cells["clahe"][cols.index("mIoU ↑")].startswith("**")
    day, raw = cells["day-twin (upper bound)"][cols.index("mAP ↑")], cells["identity"][cols.index("mAP ↑")]
    note = next(ln for ln in table.splitlines() if "detection too weak to rank methods" in ln)
    assert f"map {day} on the day twins and {raw} on the raw adverse input" in note
    assert "detection too weak to rank methods" in capfd.readouterr().err


def test_hallucinated_and_removed_objects_are_counted_as_defined():
    """A constructed case with a known count of each kind of detection."""
    from bench.metrics.detection import found_objects, objects_of

    gt = {"images": [{"id": 1}, {"id": 2}], "categories": [{"id": 1, "name": "car"}, {"id": 3, "name": "person"}],
          "annotations": [
              {"id": 10, "image_id": 1, "category_id": 1, "bbox": [0, 0, 10, 10], "iscrowd": 0},
              {"id": 11, "image_id": 1, "category_id": 1, "bbox": [50, 50, 10, 10], "iscrowd": 0},
              {"id": 12, "image_id": 1, "category_id": 3, "bbox": [80, 0, 20, 40], "iscrowd": 1},
              {"id": 20, "image_id": 2, "category_id": 3, "bbox": [5, 5, 8, 16], "iscrowd": 0}]}

    def det(img, cat, box, score=0.9):
        return {"image_id": img, "category_id": cat, "bbox": box, "score": score}

    dets = [det(1, 1, [1, 0, 10, 10]),  # finds object 10
            det(1, 1, [0, 1, 10, 10], 0.8),  # a second box on object 10: a hallucination
            det(1, 1, [50, 50, 10, 10], 0.3),  # would find 11, but below the 0.5 score: not an answer
            det(1, 3, [0, 0, 10, 10]),  # a person where a car is: a hallucination
            det(1, 3, [82, 2, 18, 36]),  # inside the crowd region: neither
            det(2, 1, [200, 200, 5, 5]),  # nothing there: a hallucination
            det(2, 3, [5, 5, 8, 16], 0.5)]  # finds object 20, at exactly the threshold
    found, extra = found_objects(gt, dets, [1, 2])
    assert found == [{10}, {20}] and extra.tolist() == [2.0, 1.0]
    assert objects_of(gt, [1, 2]) == [{10, 11}, {20}]  # the crowd region is no object to remove
    # Seen on the day twin (everything), seen on the translation (the above): 11 is removed, per image.
    assert [len(ref - got) for ref, got in zip(objects_of(gt, [1, 2]), found)] == [1, 0]


def test_scorer_rates_use_the_day_twin_detections_as_the_reference(smoke_suite, monkeypatch):
    """Removed = found on the twin, missed on the translation; the twins are detected once for every row."""
    import json

    from bench.scoring import Scorer

    gt = json.loads(smoke_suite.boxes.read_text())
    twin_names = {p.name for p in smoke_suite.twins}
    calls = []

    class Perfect:  # finds every object on a day twin, and one phantom car on anything else
        id = "fake"

        def detect(self, paths, image_ids):
            calls.append(len(paths))
            out = []
            for p, img in zip(paths, image_ids):
                if Path(p).name in twin_names and Path(p).parent.name == "testB":
                    out += [{"image_id": img, "category_id": a["category_id"], "bbox": a["bbox"], "score": 1.0}
                            for a in gt["annotations"] if a["image_id"] == img and not a.get("iscrowd", 0)]
                else:
                    out.append({"image_id": img, "category_id": 1, "bbox": [0, 0, 3, 3], "score": 0.9})
            return out

    scorer = Scorer("synthetic-night", smoke_suite, ("map", "hallucinated", "removed"), preset="smoke")
    monkeypatch.setattr(scorer, "detector", lambda: Perfect())
    n_objects = sum(1 for a in gt["annotations"] if not a.get("iscrowd", 0))
    raw = {r.metric: r for r in scorer.score("identity", 0, smoke_suite.test_a, only_downstream=True)}
    assert raw["removed"].value == pytest.approx(100 * n_objects / len(smoke_suite.test_a))
    assert raw["hallucinated"].value == pytest.approx(100.0)  # one phantom per image (none overlaps an object)
    assert raw["hallucinated"].ci_low <= 100.0 <= raw["hallucinated"].ci_high
    twin = {r.metric: r for r in scorer.score("day-twin", 0, smoke_suite.twins, only_downstream=True)}
    assert twin["removed"].value == 0 and twin["hallucinated"].value == 0
    assert sum(calls) == 3 * len(smoke_suite.test_a)  # translations, twins once (for the reference), twins as a row
