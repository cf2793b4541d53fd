"""Convert the authors' TensorFlow checkpoint (e.g. the public BDD100K 256x512 model) into ours.

Official variable names come from models.py's scopes: ``generatorA2B/g_e1_c/Conv/weights`` (slim
conv), ``.../g_r1_c1/filter`` (the "dilated" blocks' ``tf.get_variable``), ``.../g_t1/res1/g_t1_c1/
Conv/weights`` (T-net), ``.../g_d1_dc/Conv2d_transpose/weights``, ``.../g_e1_bn/scale|offset``.
Layouts: conv kernels are HWIO (PyTorch: OIHW); transposed-conv kernels are H W out in (PyTorch's
ConvTranspose2d: in out H W); both become ``w.transpose(3, 2, 0, 1)``. Instance-norm scale/offset
map to weight/bias. Optimizer slots and discriminators are not needed for translation.

TensorFlow (``pip install tensorflow-cpu``) is needed only to read the checkpoint file, in a child process.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

from augan.config import AUGANConfig, preset_config
from bench.translator import TranslatorError

GENERATORS = {"g_a2b": "generatorA2B", "g_b2a": "generatorB2A"}


class TFImportError(TranslatorError, ValueError):
    pass


def _block(prefix: str, name: str, rest: str, tnet: bool, suffix: str = "") -> str:
    """A residual block's variable: c1/n1/c2/n2 -> conv or norm names of models.py."""
    layer, param = rest.split(".", 1)
    k = layer[1]
    if tnet:
        scope = f"{name}/res{k}/{name}_" + (f"c{k}/Conv/weights" if layer[0] == "c" else f"in{k}")
    else:
        scope = f"{name}{suffix}_" + (f"c{k}/filter" if layer[0] == "c" else f"bn{k}")
    return f"{prefix}/{scope}" + ("" if layer[0] == "c" else "/" + {"weight": "scale", "bias": "offset"}[param])


def _norm(prefix: str, name: str, param: str) -> str:
    return f"{prefix}/{name}/" + {"weight": "scale", "bias": "offset"}[param]


def official_name(key: str) -> str:
    """Official TF variable name of one of our generator parameters (``g_a2b.encoder.1.0.conv.weight``)."""
    net, rest = key.split(".", 1)
    prefix = GENERATORS[net]
    m = re.fullmatch(r"encoder\.([1-3])\.(0\.conv\.weight|1\.(weight|bias))", rest)
    if m:
        i = m.group(1)
        return f"{prefix}/g_e{i}_c/Conv/weights" if m.group(2).startswith("0") else _norm(prefix, f"g_e{i}_bn", m.group(3))
    m = re.fullmatch(r"encoder\.([4-7])\.(.+)", rest)
    if m:
        return _block(prefix, f"g_r{int(m.group(1)) - 3}", m.group(2).replace(".conv", ""), tnet=False)
    m = re.fullmatch(r"tnet\.([0-3])\.(.+)", rest)
    if m:
        return _block(prefix, f"g_t{int(m.group(1)) + 1}", m.group(2).replace(".conv", ""), tnet=True)
    m = re.fullmatch(r"(decoder|rec_decoder)\.(.+)", rest)
    if m:
        sfx = "_rec" if m.group(1) == "rec_decoder" else ""
        sub = m.group(2)
        b = re.fullmatch(r"blocks\.([0-3])\.(.+)", sub)
        if b:
            return _block(prefix, f"g_r{int(b.group(1)) + 6}", b.group(2).replace(".conv", ""), tnet=False, suffix=sfx)
        u = re.fullmatch(r"up([12])\.(0\.conv\.weight|1\.(weight|bias))", sub)
        if u:
            i = u.group(1)
            if u.group(2).startswith("0"):
                return f"{prefix}/g_d{i}_dc{sfx}/Conv2d_transpose/weights"
            return _norm(prefix, f"g_d{i}_bn{sfx}", u.group(3))
        if sub == "out.conv.conv.weight":
            return f"{prefix}/g_pred_c{sfx}/Conv/weights"
    if rest == "confidence.up.0.conv.weight":
        return f"{prefix}/g_d_dc_conf/Conv2d_transpose/weights"
    m = re.fullmatch(r"confidence\.up\.1\.(weight|bias)", rest)
    if m:
        return _norm(prefix, "g_d_bn_conf", m.group(1))
    if rest == "confidence.out.conv.conv.weight":
        return f"{prefix}/g_pred_c_conf/Conv/weights"
    raise KeyError(f"no official name for {key}")


def to_torch_layout(value: np.ndarray) -> torch.Tensor:
    if value.ndim == 4:  # HWIO (conv) or H W out in (transposed conv): both -> dims (3, 2, 0, 1)
        value = value.transpose(3, 2, 0, 1)
    return torch.from_numpy(np.ascontiguousarray(value, dtype=np.float32))


def read_tf_checkpoint(path: Path) -> dict[str, np.ndarray]:
    """All variables of a TF checkpoint (a folder with a 'checkpoint' file, or a prefix).

    TensorFlow runs in a child process (augan.tf_reader); only arrays come back.
    """
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "variables.npz"
        proc = subprocess.run([sys.executable, "-m", "augan.tf_reader", str(path), str(out)],
                              capture_output=True, text=True)
        if proc.returncode != 0:
            lines = [ln for ln in proc.stderr.strip().splitlines() if ln.strip()]
            raise TFImportError(lines[-1] if lines else f"reading {path} failed (exit {proc.returncode})")
        with np.load(out, allow_pickle=False) as data:
            names = [str(n) for n in data["names"]]
            return {name: data[f"v{i}"] for i, name in enumerate(names)}


def config_from_variables(variables: dict[str, np.ndarray]) -> AUGANConfig:
    """The architecture the checkpoint was trained with: ngf from the first conv, T-net/confidence by presence."""
    first = variables.get("generatorA2B/g_e1_c/Conv/weights")
    if first is None:
        raise TFImportError("not an AU-GAN checkpoint: generatorA2B/g_e1_c/Conv/weights is missing")
    return preset_config(
        "paper",
        ngf=int(first.shape[-1]),
        use_tnet="generatorA2B/g_t1/res1/g_t1_c1/Conv/weights" in variables,
        use_uncertainty="generatorA2B/g_pred_c_conf/Conv/weights" in variables,
    )


def convert(variables: dict[str, np.ndarray], state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Map every generator parameter of ``state`` (our model's) from ``variables``; check nothing is left over."""
    out, used = {}, set()
    for key, ours in state.items():
        if not key.startswith(tuple(f"{g}." for g in GENERATORS)):
            continue
        name = official_name(key)
        if name not in variables:
            raise TFImportError(f"checkpoint lacks {name} (for {key})")
        value = to_torch_layout(variables[name])
        if value.shape != ours.shape:
            raise TFImportError(f"{name}: shape {tuple(variables[name].shape)} does not fit {key} {tuple(ours.shape)}")
        out[key] = value
        used.add(name)
    generator_vars = {n for n in variables if n.split("/")[0] in GENERATORS.values() and "Adam" not in n}
    left = sorted(generator_vars - used)
    if left:
        raise TFImportError(f"{len(left)} generator variable(s) of the checkpoint have no place in our model: {left[:5]}")
    return out
