"""TensorFlow side of the importer test, run in a child process: TensorFlow and PyTorch in one
process can crash each other, so only files cross over.

    python tests/tf_reference.py OUT_DIR

writes OUT_DIR/ckpt/ (a name-based TF1 checkpoint in the official variable layout, random values)
and OUT_DIR/reference.npz (inputs and the outputs of models.py's generators, in TF ops).
"""

import sys
from pathlib import Path

import numpy as np

NGF = 4
SIZES = [(32, 64), (36, 52)]


def official_variables(prefix: str, g: int, a2b: bool) -> dict[str, tuple]:
    """Variable names and shapes of one generator, following models.py / ops.py scopes."""
    v: dict[str, tuple] = {}

    def conv(name, k, cin, cout):
        v[f"{prefix}/{name}/Conv/weights"] = (k, k, cin, cout)  # slim.conv2d: HWIO

    def dilated(name, c):
        v[f"{prefix}/{name}/filter"] = (3, 3, c, c)  # tf.get_variable in dilated_conv2d

    def norm(name, c):
        v[f"{prefix}/{name}/scale"] = (c,)
        v[f"{prefix}/{name}/offset"] = (c,)

    def deconv(name, cin, cout):
        v[f"{prefix}/{name}/Conv2d_transpose/weights"] = (3, 3, cout, cin)  # H W out in

    conv("g_e1_c", 7, 3, g), norm("g_e1_bn", g)
    conv("g_e2_c", 3, g, 2 * g), norm("g_e2_bn", 2 * g)
    conv("g_e3_c", 3, 2 * g, 4 * g), norm("g_e3_bn", 4 * g)
    blocks = [f"g_r{i}" for i in range(1, 5)] + [f"g_r{i}{s}" for s in ("", "_rec") for i in range(6, 10)]
    for b in blocks:
        dilated(f"{b}_c1", 4 * g), norm(f"{b}_bn1", 4 * g), dilated(f"{b}_c2", 4 * g), norm(f"{b}_bn2", 4 * g)
    if a2b:
        for i in range(1, 5):
            t = f"g_t{i}"
            conv(f"{t}/res1/{t}_c1", 3, 4 * g, 4 * g), norm(f"{t}/res1/{t}_in1", 4 * g)
            conv(f"{t}/res2/{t}_c2", 3, 4 * g, 4 * g), norm(f"{t}/res2/{t}_in2", 4 * g)
    for s in ("", "_rec"):
        deconv(f"g_d1_dc{s}", 4 * g, 2 * g), norm(f"g_d1_bn{s}", 2 * g)
        deconv(f"g_d2_dc{s}", 2 * g, g), norm(f"g_d2_bn{s}", g)
        conv(f"g_pred_c{s}", 7, g, 3)
    if a2b:
        deconv("g_d_dc_conf", 2 * g, g), norm("g_d_bn_conf", g), conv("g_pred_c_conf", 7, g, 1)
    return v


def random_values(shapes: dict[str, tuple], seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    out = {}
    for name, shape in sorted(shapes.items()):
        if name.endswith("/scale"):
            out[name] = (1 + 0.1 * rng.standard_normal(shape)).astype(np.float32)
        elif name.endswith("/offset"):
            out[name] = (0.1 * rng.standard_normal(shape)).astype(np.float32)
        else:
            fan_in = np.prod(shape[:2]) * shape[2]
            out[name] = (rng.standard_normal(shape) / np.sqrt(fan_in)).astype(np.float32)
    return out


def write_tf1_checkpoint(folder, values: dict[str, np.ndarray]) -> None:
    """A name-based TF1 checkpoint, as the authors' tf.train.Saver wrote it."""
    graph = tf.Graph()
    with graph.as_default():
        for name, value in values.items():
            tf.compat.v1.get_variable(name, initializer=tf.constant(value))
        saver = tf.compat.v1.train.Saver()
        with tf.compat.v1.Session(graph=graph) as sess:
            sess.run(tf.compat.v1.global_variables_initializer())
            saver.save(sess, str(folder / "cyclegan.model"), global_step=2)


def tf_generator(v, p, x, transfer):
    """models.generator_resnet's translation path and confidence head, in TF ops (NHWC)."""

    def norm(x, name):
        mean, var = tf.nn.moments(x, axes=[1, 2], keepdims=True)
        return v[f"{p}/{name}/scale"] * (x - mean) * tf.math.rsqrt(var + 1e-5) + v[f"{p}/{name}/offset"]

    def conv(x, name, s=1, padding="SAME"):
        return tf.nn.conv2d(x, v[f"{p}/{name}/Conv/weights"], s, padding)

    def dilated(x, name):
        return tf.nn.atrous_conv2d(x, v[f"{p}/{name}/filter"], rate=1, padding="SAME")

    def deconv(x, name):
        w = v[f"{p}/{name}/Conv2d_transpose/weights"]
        shape = [x.shape[0], x.shape[1] * 2, x.shape[2] * 2, w.shape[2]]
        return tf.nn.conv2d_transpose(x, w, shape, 2, "SAME")

    def block(x, name):
        y = tf.nn.relu(norm(dilated(x, f"{name}_c1"), f"{name}_bn1"))
        return norm(dilated(y, f"{name}_c2"), f"{name}_bn2") + x

    def tblock(x, t):
        y = tf.nn.relu(norm(conv(x, f"{t}/res1/{t}_c1"), f"{t}/res1/{t}_in1"))
        return norm(conv(y, f"{t}/res2/{t}_c2"), f"{t}/res2/{t}_in2") + x

    def reflect(x):
        return tf.pad(x, [[0, 0], [3, 3], [3, 3], [0, 0]], "REFLECT")

    c1 = tf.nn.relu(norm(conv(reflect(x), "g_e1_c", 1, "VALID"), "g_e1_bn"))
    c2 = tf.nn.relu(norm(conv(c1, "g_e2_c", 2), "g_e2_bn"))
    r = tf.nn.relu(norm(conv(c2, "g_e3_c", 2), "g_e3_bn"))
    for i in range(1, 5):
        r = block(r, f"g_r{i}")
    feat = r
    if transfer:
        for i in range(1, 5):
            feat = tblock(feat, f"g_t{i}")
    for i in range(6, 10):
        feat = block(feat, f"g_r{i}")
    d1 = tf.nn.relu(norm(deconv(feat, "g_d1_dc"), "g_d1_bn"))
    d2 = tf.nn.relu(norm(deconv(d1, "g_d2_dc"), "g_d2_bn"))
    pred = tf.nn.tanh(conv(reflect(d2), "g_pred_c", 1, "VALID"))
    conf = None
    if transfer:
        dc = tf.nn.relu(norm(deconv(d1, "g_d_dc_conf"), "g_d_bn_conf"))
        conf = tf.nn.softplus(conv(reflect(dc), "g_pred_c_conf", 1, "VALID"))
    return pred, conf



def main(out_dir: Path) -> None:
    global tf
    import tensorflow as tf

    shapes = {**official_variables("generatorA2B", NGF, True), **official_variables("generatorB2A", NGF, False)}
    values = random_values(shapes)
    # What a real training checkpoint also holds: optimizer slots and discriminators (ignored).
    extra = {"generatorA2B/g_e1_c/Conv/weights/Adam": values["generatorA2B/g_e1_c/Conv/weights"],
             "0_discriminatorA/d_h0_conv_scale_0_first_c/filter": np.zeros((4, 4, 3, 2), np.float32)}
    (out_dir / "ckpt").mkdir(parents=True)
    write_tf1_checkpoint(out_dir / "ckpt", {**values, **extra})
    v = {k: tf.constant(val) for k, val in values.items()}
    rng = np.random.default_rng(1)
    ref = {}
    for h, w in SIZES:
        x = rng.uniform(-1, 1, (2, h, w, 3)).astype(np.float32)
        pred, conf = tf_generator(v, "generatorA2B", tf.constant(x), transfer=True)
        back, _ = tf_generator(v, "generatorB2A", tf.constant(x), transfer=False)
        ref[f"x_{h}x{w}"], ref[f"a2b_{h}x{w}"] = x, pred.numpy()
        ref[f"sigma_{h}x{w}"], ref[f"b2a_{h}x{w}"] = conf.numpy(), back.numpy()
    names = sorted(values)
    np.savez(out_dir / "reference.npz", names=np.array(names), **ref)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
