"""What the synthetic suites' downstream models share: where their weights come from, and BatchNorm recalibration.

An evaluator (the day-trained segmenter or detector) is identified by a key: the hash of its training
config and of its training files' bytes. Its weights are, in order: the file shipped with the project
for that key (``evaluators/``, hash-checked; made by ``python -m bench.downstream.shipped``), the file
cached under ``$AUGAN_BENCH_CACHE`` by an earlier training on this machine, or a training now. Shipped
weights make every machine score the default run with the same models: retraining is deterministic on
one CPU, but float rounding that differs between CPUs changes the trained model.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path
from typing import Callable, Sequence

import torch

from bench.atomic import atomic_write_bytes
from bench.cache import cache_dir, files_digest
from bench.errors import BenchError
from bench.weights import file_sha256

SHIPPED_DIR = Path(__file__).with_name("evaluators")
SHIPPED_INDEX = SHIPPED_DIR / "index.json"


@dataclass(frozen=True)
class EvaluatorWeights:
    path: Path
    key: str  # hash of the training config and the training files
    sha256: str  # of the weights file
    shipped: bool

    @property
    def id(self) -> str:
        """What metrics.csv names as the extractor: the key, where the weights came from, and their hash."""
        return f"{self.key[:12]}:{'shipped' if self.shipped else 'trained-locally'}:sha256={self.sha256[:12]}"


def training_key(cfg, *file_groups: Sequence[Path], recipe: str = "") -> str:
    """The key of an evaluator: its config, and what it is trained on. Where the training files are a pure function
    of a ``recipe`` (the synthetic suites' day split: scenes, seed, size, renderer and layout versions), the recipe;
    else the files' bytes. Rendered bytes differ in their last bits from one CPU to another (numpy's and OpenCV's
    vector paths round differently), which would make every machine but the one that made the shipped files train
    its own; the recipe is what the renderer's version discipline already guarantees."""
    trained_on = f"recipe:{recipe}" if recipe else "".join(files_digest(g) for g in file_groups)
    return hashlib.sha256((json.dumps(asdict(cfg), sort_keys=True) + trained_on).encode()).hexdigest()


@lru_cache(maxsize=None)
def shipped_index() -> dict[str, dict[str, dict]]:
    """kind ("segmenters", "detectors") -> training key -> {file, sha256, preset, config, made_with}."""
    return json.loads(SHIPPED_INDEX.read_text()) if SHIPPED_INDEX.is_file() else {}


def _cache_path(kind: str, key: str) -> Path:
    return cache_dir(kind) / f"{key[:32]}.safetensors"


def evaluator_weights(kind: str, key: str) -> EvaluatorWeights | None:
    """The weights of the evaluator with training key ``key``: shipped, else cached; None if neither."""
    entry = shipped_index().get(kind, {}).get(key)
    if entry is not None:
        path = SHIPPED_DIR / entry["file"]
        sha = file_sha256(path) if path.is_file() else "missing"
        if sha != entry["sha256"]:
            raise BenchError(
                f"{path}: the shipped {kind[:-1]} weights are damaged (sha256 {sha[:12]}, expected "
                f"{entry['sha256'][:12]}). Reinstall augan-bench, or remake them with "
                f"`python -m bench.downstream.shipped --write`")
        return EvaluatorWeights(path, key, sha, shipped=True)
    path = _cache_path(kind, key)
    return EvaluatorWeights(path, key, file_sha256(path), shipped=False) if path.is_file() else None


def state_bytes(model: torch.nn.Module) -> bytes:
    from safetensors.torch import save

    return save({k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()})


def save_evaluator(kind: str, key: str, model: torch.nn.Module) -> EvaluatorWeights:
    """Cache a freshly trained evaluator under its training key; its weights as :func:`evaluator_weights` finds them."""
    path = _cache_path(kind, key)
    atomic_write_bytes(path, state_bytes(model))
    return EvaluatorWeights(path, key, file_sha256(path), shipped=False)


@torch.no_grad()
def recalibrate_batchnorm(model: torch.nn.Module, forward: Callable[[list[int]], object], n_images: int,
                          g: torch.Generator, batch_size: int, batches: int) -> None:
    """Re-estimate BatchNorm running statistics as plain averages over training batches.

    After a short training the running averages (momentum 0.1) still carry the first steps'
    statistics and the model collapses to one class in eval mode; averaging afresh fixes that.
    ``forward`` runs the BatchNorm-carrying part of the model on the training images it is given.
    """
    norms = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative moving average
    model.train()
    for _ in range(batches):
        forward(torch.randint(n_images, (batch_size,), generator=g).tolist())
    for m in norms:
        m.momentum = 0.1
    model.eval()
