"""Read every variable of a TensorFlow checkpoint into an .npz file, in a process of its own.

Run as ``python -m augan.tf_reader CHECKPOINT OUT.npz``. TensorFlow and PyTorch loaded into one
process can crash each other (seen here: importing triton after TensorFlow segfaults), so the
importer reads the checkpoint here and only numpy arrays cross over (``np.load(allow_pickle=False)``).
Exit status 3 with a message on stderr when the checkpoint cannot be read.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np


def main(argv: list[str]) -> int:
    src, out = Path(argv[0]), Path(argv[1])
    try:
        import tensorflow as tf
    except ImportError:
        print("reading a TensorFlow checkpoint needs TensorFlow: pip install tensorflow-cpu", file=sys.stderr)
        return 3
    prefix = tf.train.latest_checkpoint(str(src)) if src.is_dir() else str(src)
    if prefix is None:
        print(f"{src}: no TensorFlow checkpoint found (expected a 'checkpoint' file and *.index/*.data-*)",
              file=sys.stderr)
        return 3
    try:
        reader = tf.train.load_checkpoint(prefix)
        names = sorted(reader.get_variable_to_shape_map())
        arrays = {f"v{i}": np.asarray(reader.get_tensor(n)) for i, n in enumerate(names)}
    except Exception as exc:  # noqa: BLE001 - TF raises several types for unreadable files
        print(f"{prefix}: not a readable TensorFlow checkpoint ({type(exc).__name__}: {exc})", file=sys.stderr)
        return 3
    np.savez(out, names=np.array(names), **arrays)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
