"""Make, or check, the evaluator weights that ship with the project (``bench/downstream/evaluators/``).

    python -m bench.downstream.shipped            # retrain each shipped evaluator here; compare with the shipped bytes
    python -m bench.downstream.shipped --write    # retrain and replace the shipped files and their index

The synthetic suites' day images do not depend on the adverse condition (``bench.data.synthetic``
renders them from the scene alone), so one segmenter and one detector per preset serve
synthetic-night, -rain and -fog. Shipped: the ``quick`` preset (the default run). ``smoke``'s segmenter
trains in seconds and ranks nothing; ``paper``'s take hours here, so both are trained on first use.
Retraining reproduces the shipped bytes only on a CPU that rounds as the one that made them did.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import platform
from dataclasses import asdict

import torch

from bench.atomic import atomic_write_bytes, atomic_write_text
from bench.downstream.training import SHIPPED_DIR, SHIPPED_INDEX, state_bytes, training_key

SHIPPED_PRESETS = ("quick",)


def _made_with() -> dict[str, str]:
    import numpy

    return {"torch": torch.__version__, "numpy": numpy.__version__, "python": platform.python_version(),
            "machine": platform.machine(), "threads": str(torch.get_num_threads())}


def remake(preset: str) -> dict[str, tuple[str, bytes, dict]]:
    """kind -> (training key, safetensors bytes, index entry) of the evaluators trained here at ``preset``."""
    from bench.downstream.synthetic_detector import DETECTOR_PRESETS, train_detector
    from bench.downstream.synthetic_segmenter import SEGMENTER_PRESETS, train_segmenter
    from bench.suites import get_suite

    files = get_suite("synthetic-night").prepare(preset, None)
    out = {}
    seg_cfg, det_cfg = SEGMENTER_PRESETS[preset], DETECTOR_PRESETS[preset]
    jobs = [("segmenters", seg_cfg, lambda: train_segmenter(files.train_b, files.train_b_labels, seg_cfg),
             (files.train_b, files.train_b_labels))]
    if det_cfg is not None:
        jobs.append(("detectors", det_cfg, lambda: train_detector(files.train_b, files.train_b_boxes, det_cfg),
                     (files.train_b, [files.train_b_boxes])))
    for kind, cfg, train, groups in jobs:
        data = state_bytes(train())
        entry = {"file": f"{kind[:-1]}-{preset}.safetensors", "sha256": hashlib.sha256(data).hexdigest(),
                 "preset": preset, "config": asdict(cfg), "trained_on": f"synthetic day images ({preset} preset)",
                 "recipe": files.train_b_recipe,
                 "made_with": _made_with()}
        out[kind] = (training_key(cfg, *groups, recipe=files.train_b_recipe), data, entry)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--write", action="store_true", help="replace the shipped files and index with the retrained ones")
    args = ap.parse_args(argv)
    index = json.loads(SHIPPED_INDEX.read_text()) if SHIPPED_INDEX.is_file() else {}
    differ = 0
    for preset in SHIPPED_PRESETS:
        for kind, (key, data, entry) in remake(preset).items():
            shipped = SHIPPED_DIR / entry["file"]
            same = shipped.is_file() and shipped.read_bytes() == data
            differ += not same
            print(f"{kind[:-1]} {preset}: key {key[:12]}, sha256 {entry['sha256'][:12]}: "
                  f"{'identical to the shipped file' if same else 'DIFFERS from the shipped file'}")
            if args.write:
                atomic_write_bytes(shipped, data)
                entries = index.setdefault(kind, {})
                for stale in [k for k, e in entries.items() if e.get("preset") == preset]:
                    del entries[stale]
                entries[key] = entry
    if args.write:
        atomic_write_text(SHIPPED_INDEX, json.dumps(index, indent=2, sort_keys=True) + "\n")
        print(f"wrote {SHIPPED_INDEX}")
        return 0
    return 1 if differ else 0


if __name__ == "__main__":
    raise SystemExit(main())
