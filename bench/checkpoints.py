"""Reading checkpoints from the internet without unpickling them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from bench.errors import BenchError


class CheckpointError(BenchError, ValueError):
    """A checkpoint that is missing, unsafe to load, or holds no tensors."""


def load_tensor_dict(path: Path) -> dict[str, torch.Tensor]:
    """Tensors from a .safetensors file or a torch checkpoint, without unpickling arbitrary objects.

    Model-zoo checkpoints often wrap the weights (``{"state_dict": ..., "meta": ...}``) and store
    numpy scalars or arrays in ``meta``; those few numpy globals are allow-listed for the safe
    loader, nothing else is.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    numeric = ("bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64", "float16", "float32",
               "float64", "complex64", "complex128")
    numpy_globals = [np.dtype, np.ndarray, *(type(np.dtype(t)) for t in numeric)]
    try:
        numpy_globals.append(np._core.multiarray._reconstruct)  # numpy >= 2
        numpy_globals.append(np._core.multiarray.scalar)
    except AttributeError:  # pragma: no cover - numpy 1.x
        numpy_globals += [np.core.multiarray._reconstruct, np.core.multiarray.scalar]
    try:
        with torch.serialization.safe_globals(numpy_globals):
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unpickling refusal is reported the same way
        raise CheckpointError(
            f"{path} cannot be loaded safely (weights_only=True): {str(exc).splitlines()[0]}. Convert it to "
            "safetensors in a trusted environment, or use the publisher's original file"
        ) from None
    for key in ("state_dict", "model", "model_state"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
            break
    # Two-network files such as MUNIT/UNIT's gen_<iter>.pt ({"a": ..., "b": ...}) become "a."/"b." keys.
    if isinstance(obj, dict) and obj and all(isinstance(v, dict) for v in obj.values()):
        obj = {f"{name}.{k}": v for name, sub in obj.items() for k, v in sub.items()}
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise CheckpointError(f"{path} holds no state dict of tensors")
    # Weights saved from DataParallel/DDP carry a 'module.' prefix.
    return {k.removeprefix("module."): v for k, v in obj.items()}
