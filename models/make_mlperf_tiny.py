#!/usr/bin/env python3
"""Build the four MLPerf Tiny reference architectures as ONNX models.

Usage:  python3 models/make_mlperf_tiny.py
Needs:  pip install numpy onnx onnxruntime        (no torch, no TensorFlow)

What it makes (in models/mlperf_tiny/, next to this script):

  kws_dscnn.onnx       keyword spotting, DS-CNN             input (1, 1, 49, 10)   ~2.66 M MACs
  ic_resnet8.onnx      image classification, ResNet-8       input (1, 3, 32, 32)   ~12.50 M MACs
  vww_mobilenet.onnx   visual wake words, MobileNetV1 0.25  input (1, 3, 96, 96)   ~7.49 M MACs
  ad_autoencoder.onnx  anomaly detection, FC autoencoder    input (1, 640)         ~0.26 M MACs

  plus, per model NAME, NAME_calib_x.npy (8 samples) and NAME_test_x.npy
  (2 samples): float16, shape (N, *input shape without the batch axis), the
  same layout as the other bundled models' *_x.npy files.

Where the architectures come from: the MLPerf Tiny benchmark's reference
models, github.com/mlcommons/tiny, `benchmark/training/*`:

  keyword_spotting       DS-CNN (from ARM's ML-KWS-for-MCU): Conv2D 64
                         filters 10x4 stride 2 'same', then 4 x [DepthwiseConv
                         3x3 'same', Conv 1x1 64], each followed by
                         BatchNorm + ReLU; AveragePooling over the whole
                         25x5 map; Dense 12. Input: 49 frames x 10 MFCCs.
  image_classification   ResNet-8 ("resnet_v1_eembc", 16 filters): Conv 3x3
                         16 + BN + ReLU; three stacks (16, 32/2, 64/2) of
                         [Conv 3x3, BN, ReLU, Conv 3x3, BN] + shortcut
                         (identity, then 1x1 stride-2 Conv), add, ReLU;
                         AveragePooling 8x8; Dense 10. Input: CIFAR-10 32x32.
  visual_wake_words      MobileNetV1, width multiplier 0.25, 96x96 RGB, 2
                         classes: Conv 3x3/2 8, then 13 depthwise-separable
                         pairs (16, 32/2, 32, 64/2, 64, 128/2, 128 x5,
                         256/2, 256), each conv followed by BN + ReLU;
                         global average pooling; Dense 2.
  anomaly_detection      DCASE 2020 task 2 baseline autoencoder: 640 inputs
                         (5 frames x 128 log-mel bins), Dense 128 x4, Dense 8,
                         Dense 128 x4, each + BN + ReLU, Dense 640 (linear).

The graphs are what an exporter emits for inference: opset 13, float32,
NCHW, batch 1, BatchNorm already folded into the preceding conv/dense
weights and bias, every ReLU a separate Relu node. Keras 'same' padding is
written out as explicit (asymmetric where Keras makes it so) `pads`, so
every feature map has the reference model's shape. Two things differ
from the Keras reference, on purpose: the final Softmax is left out (the
models output logits; it is a few dozen instructions and changes no
MAC), and Dropout (an identity at inference) is not emitted.

Weights are NOT trained: they are random, He-initialised (normal, std
sqrt(2 / fan_in)), and biases are small (normal, std 0.01), because these
models exist for a speed benchmark: instruction counts per inference depend
on the topology and tensor shapes, not on the weight values. The inputs are
synthetic too, drawn to look like plausible inputs (see `calib_*` below).
Everything comes from one seeded numpy RNG per model, so the files are
byte-identical run to run (checked with numpy 2.4, onnx 1.23).

The script checks every model with onnx.checker (full check, with shape
inference) and runs it with onnxruntime on all its samples, comparing the
output shape and the MAC count it computes from the shapes with the target.
"""

import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OUT_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "mlperf_tiny")
OPSET = 13
IR_VERSION = 7  # what opset 13 was released with; the other bundled models use it too
N_CALIB = 8  # speed depends on topology, not on ranges: a few samples suffice
N_TEST = 2
BIAS_STD = 0.01


def same_pads(size, kernel, stride):
    """Keras/TensorFlow 'same' padding along one axis: (begin, end).

    The output has ceil(size / stride) elements; an odd total pad puts
    the extra element at the end, as TensorFlow does.
    """
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


class Graph:
    """A tiny ONNX graph builder that tracks shapes and MACs."""

    def __init__(self, name, seed, input_shape):
        self.name = name
        self.rng = np.random.default_rng(seed)
        self.nodes = []
        self.inits = []
        self.macs = 0
        self.input_shape = list(input_shape)
        self.shapes = {"input": list(input_shape)}
        self.count = {}

    def _name(self, kind):
        i = self.count.get(kind, 0)
        self.count[kind] = i + 1
        return f"{kind}{i}"

    def _weight(self, name, shape, fan_in):
        w = self.rng.normal(0.0, np.sqrt(2.0 / fan_in), size=shape).astype(np.float32)
        b = self.rng.normal(0.0, BIAS_STD, size=(shape[0],)).astype(np.float32)
        self.inits.append(numpy_helper.from_array(w, f"{name}.weight"))
        self.inits.append(numpy_helper.from_array(b, f"{name}.bias"))
        return f"{name}.weight", f"{name}.bias"

    def relu(self, x, name=None):
        name = name or self._name("relu")
        self.nodes.append(helper.make_node("Relu", [x], [name], name=name))
        self.shapes[name] = self.shapes[x]
        return name

    def conv(self, x, cout, kernel, stride=1, groups=1, relu=True, name=None):
        """Conv2d with Keras 'same' padding (BatchNorm folded into its bias)."""
        name = name or self._name("conv")
        _, cin, h, w = self.shapes[x]
        kh, kw = kernel if isinstance(kernel, tuple) else (kernel, kernel)
        assert cin % groups == 0 and cout % groups == 0
        (pt, pb), (pl, pr) = same_pads(h, kh, stride), same_pads(w, kw, stride)
        oh = (h + pt + pb - kh) // stride + 1
        ow = (w + pl + pr - kw) // stride + 1
        assert (oh, ow) == (-(-h // stride), -(-w // stride))
        wname, bname = self._weight(name, (cout, cin // groups, kh, kw), (cin // groups) * kh * kw)
        self.nodes.append(
            helper.make_node(
                "Conv",
                [x, wname, bname],
                [name],
                name=name,
                kernel_shape=[kh, kw],
                strides=[stride, stride],
                pads=[pt, pl, pb, pr],
                group=groups,
            )
        )
        self.shapes[name] = [1, cout, oh, ow]
        self.macs += oh * ow * cout * (cin // groups) * kh * kw
        return self.relu(name, name + "_relu") if relu else name

    def dwsep(self, x, cout, stride, name):
        """MobileNet/DS-CNN block: depthwise 3x3 + ReLU, pointwise 1x1 + ReLU."""
        c = self.shapes[x][1]
        x = self.conv(x, c, 3, stride, groups=c, name=f"{name}_dw")
        return self.conv(x, cout, 1, name=f"{name}_pw")

    def add_relu(self, a, b, name):
        assert self.shapes[a] == self.shapes[b], (self.shapes[a], self.shapes[b])
        self.nodes.append(helper.make_node("Add", [a, b], [name], name=name))
        self.shapes[name] = self.shapes[a]
        return self.relu(name, name + "_relu")

    def avgpool_flatten(self, x):
        """Average over the whole feature map, as the Keras models'
        AveragePooling2D(pool_size = map size), then Flatten."""
        n, c, h, w = self.shapes[x]
        self.nodes.append(
            helper.make_node("GlobalAveragePool", [x], ["pool"], name="pool")
        )
        self.shapes["pool"] = [n, c, 1, 1]
        self.nodes.append(helper.make_node("Flatten", ["pool"], ["flatten"], name="flatten", axis=1))
        self.shapes["flatten"] = [n, c]
        return "flatten"

    def gemm(self, x, out, relu=False, name=None, output=None):
        """Dense layer: Gemm(x, W^T) + b, W stored (out, in) as PyTorch exports it."""
        name = name or self._name("fc")
        n, fin = self.shapes[x]
        wname, bname = self._weight(name, (out, fin), fin)
        y = name if (relu or output is None) else output
        self.nodes.append(
            helper.make_node("Gemm", [x, wname, bname], [y], name=name, transB=1)
        )
        self.shapes[y] = [n, out]
        self.macs += fin * out
        if relu:
            return self.relu(y, output or name + "_relu")
        return y

    def model(self, out, doc):
        out_shape = self.shapes[out]
        graph = helper.make_graph(
            self.nodes,
            self.name,
            [helper.make_tensor_value_info("input", TensorProto.FLOAT, self.input_shape)],
            [helper.make_tensor_value_info(out, TensorProto.FLOAT, out_shape)],
            initializer=self.inits,
        )
        m = helper.make_model(
            graph,
            producer_name="sturdy make_mlperf_tiny.py",
            opset_imports=[helper.make_opsetid("", OPSET)],
            doc_string=doc,
        )
        m.ir_version = IR_VERSION
        return m


# --------------------------------------------------------------------------
# The four architectures
# --------------------------------------------------------------------------


def kws_dscnn():
    g = Graph("kws_dscnn", 101, [1, 1, 49, 10])
    # 10x4 stride 2 'same' on 49x10: pads (top 4, left 1, bottom 5, right 1) -> 25x5.
    x = g.conv("input", 64, (10, 4), 2, name="conv1")
    for i in range(1, 5):
        x = g.dwsep(x, 64, 1, name=f"ds{i}")
    assert g.shapes[x] == [1, 64, 25, 5], g.shapes[x]
    x = g.avgpool_flatten(x)
    y = g.gemm(x, 12, name="fc", output="logits")
    return g, g.model(y, "MLPerf Tiny keyword spotting DS-CNN (random weights; speed benchmark)")


def ic_resnet8():
    g = Graph("ic_resnet8", 202, [1, 3, 32, 32])
    x = g.conv("input", 16, 3, name="conv1")
    for i, (c, s) in enumerate([(16, 1), (32, 2), (64, 2)], start=1):
        y = g.conv(x, c, 3, s, name=f"stack{i}_conv1")
        y = g.conv(y, c, 3, 1, relu=False, name=f"stack{i}_conv2")
        short = x if s == 1 else g.conv(x, c, 1, s, relu=False, name=f"stack{i}_shortcut")
        x = g.add_relu(short, y, name=f"stack{i}_add")
    assert g.shapes[x] == [1, 64, 8, 8], g.shapes[x]
    x = g.avgpool_flatten(x)
    y = g.gemm(x, 10, name="fc", output="logits")
    return g, g.model(y, "MLPerf Tiny image classification ResNet-8 (random weights; speed benchmark)")


def vww_mobilenet():
    g = Graph("vww_mobilenet", 303, [1, 3, 96, 96])
    x = g.conv("input", 8, 3, 2, name="conv1")  # 48x48x8
    # (output channels, stride) of MobileNetV1's 13 depthwise-separable pairs, x 0.25.
    blocks = [(16, 1), (32, 2), (32, 1), (64, 2), (64, 1), (128, 2)]
    blocks += [(128, 1)] * 5 + [(256, 2), (256, 1)]
    for i, (c, s) in enumerate(blocks, start=1):
        x = g.dwsep(x, c, s, name=f"block{i}")
    assert g.shapes[x] == [1, 256, 3, 3], g.shapes[x]
    x = g.avgpool_flatten(x)
    y = g.gemm(x, 2, name="fc", output="logits")
    return g, g.model(y, "MLPerf Tiny visual wake words MobileNetV1 0.25 (random weights; speed benchmark)")


def ad_autoencoder():
    g = Graph("ad_autoencoder", 404, [1, 640])
    x = "input"
    for i, width in enumerate([128, 128, 128, 128, 8, 128, 128, 128, 128], start=1):
        x = g.gemm(x, width, relu=True, name=f"fc{i}")
    y = g.gemm(x, 640, name="fc10", output="reconstruction")
    return g, g.model(y, "MLPerf Tiny anomaly detection autoencoder (random weights; speed benchmark)")


# --------------------------------------------------------------------------
# Synthetic inputs
# --------------------------------------------------------------------------


def smooth_field(rng, n, c, h, w, grid):
    """n x c x h x w values in [0, 1]: a random grid x grid field, bilinearly
    upsampled (so neighbouring pixels correlate like in photos)."""
    coarse = rng.uniform(0.0, 1.0, size=(n, c, grid, grid))
    ys, xs = np.linspace(0, grid - 1, h), np.linspace(0, grid - 1, w)
    y0 = np.minimum(np.floor(ys).astype(int), grid - 2)
    x0 = np.minimum(np.floor(xs).astype(int), grid - 2)
    fy, fx = (ys - y0)[:, None], (xs - x0)[None, :]
    a = coarse[:, :, y0][:, :, :, x0]
    b = coarse[:, :, y0][:, :, :, x0 + 1]
    cc = coarse[:, :, y0 + 1][:, :, :, x0]
    d = coarse[:, :, y0 + 1][:, :, :, x0 + 1]
    return (a * (1 - fy) * (1 - fx) + b * (1 - fy) * fx + cc * fy * (1 - fx) + d * fy * fx)


def calib_image(rng, n, h, w):
    """RGB images in [0, 1] (8-bit pixels / 255): smooth random shapes of
    random brightness and contrast, a little sensor noise."""
    img = smooth_field(rng, n, 3, h, w, grid=max(4, h // 8))
    gain = rng.uniform(0.4, 1.0, size=(n, 1, 1, 1))
    offset = rng.uniform(0.0, 1.0 - gain, size=(n, 1, 1, 1))
    img = offset + gain * img + rng.normal(0.0, 0.02, size=img.shape)
    return (np.round(np.clip(img, 0.0, 1.0) * 255.0) / 255.0).astype(np.float32)


def calib_mfcc(rng, n):
    """49 frames x 10 MFCCs: each coefficient an AR(1) series over time
    (rho 0.8), larger for the low coefficients (std 12 for c0 down to
    about 2 for c9), c0 centred on -20 (log energy), like the MLPerf KWS
    front end's MFCCs."""
    t, k = 49, 10
    std = 12.0 / (1.0 + 0.6 * np.arange(k))
    mean = np.zeros(k)
    mean[0] = -20.0
    x = np.empty((n, t, k))
    x[:, 0] = rng.normal(0.0, 1.0, size=(n, k))
    for i in range(1, t):
        x[:, i] = 0.8 * x[:, i - 1] + 0.6 * rng.normal(0.0, 1.0, size=(n, k))
    x = mean + std * x
    return x[:, None].astype(np.float32)  # (n, 1, 49, 10)


def calib_logmel(rng, n):
    """5 consecutive frames x 128 log-mel bins (dB), flattened frame-major
    as the DCASE baseline does: a spectral tilt from about -10 dB (low
    bins) to -50 dB (high bins), a per-sample level, per-bin structure
    that persists over the 5 frames, and frame noise."""
    frames, bins = 5, 128
    tilt = np.linspace(-10.0, -50.0, bins)
    level = rng.normal(0.0, 6.0, size=(n, 1, 1))
    shape = rng.normal(0.0, 4.0, size=(n, 1, bins))
    noise = rng.normal(0.0, 2.0, size=(n, frames, bins))
    x = tilt + level + shape + noise
    return x.reshape(n, frames * bins).astype(np.float32)


INPUTS = {
    "kws_dscnn": calib_mfcc,
    "ic_resnet8": lambda rng, n: calib_image(rng, n, 32, 32),
    "vww_mobilenet": lambda rng, n: calib_image(rng, n, 96, 96),
    "ad_autoencoder": calib_logmel,
}

BUILDERS = [
    (kws_dscnn, 2_660_000),
    (ic_resnet8, 12_500_000),
    (vww_mobilenet, 7_490_000),
    (ad_autoencoder, 260_000),
]


def main():
    import onnxruntime as ort

    os.makedirs(OUT_DIR, exist_ok=True)
    total = 0
    ok = True
    for build, target in BUILDERS:
        g, m = build()
        name = g.name
        onnx.checker.check_model(m, full_check=True)
        inferred = onnx.shape_inference.infer_shapes(m, strict_mode=True)
        out_name = m.graph.output[0].name
        for vi in inferred.graph.value_info:
            if vi.name in g.shapes:
                dims = [d.dim_value for d in vi.type.tensor_type.shape.dim]
                assert dims == g.shapes[vi.name], (vi.name, dims, g.shapes[vi.name])
        path = os.path.join(OUT_DIR, f"{name}.onnx")
        onnx.save(m, path)

        rng = np.random.default_rng(g.rng.integers(1 << 32) ^ 0x5EED)
        data = INPUTS[name](rng, N_CALIB + N_TEST)
        calib, test = data[:N_CALIB], data[N_CALIB:]
        assert list(calib.shape[1:]) == g.input_shape[1:]
        # float16 halves the bundled bytes; sturdy reads f16 .npy files.
        np.save(os.path.join(OUT_DIR, f"{name}_calib_x.npy"), calib.astype(np.float16))
        np.save(os.path.join(OUT_DIR, f"{name}_test_x.npy"), test.astype(np.float16))

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 1
        sess = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
        outs = [sess.run(None, {"input": s[None]})[0] for s in data]
        out_shape = list(outs[0].shape)
        assert out_shape == g.shapes[out_name], (out_shape, g.shapes[out_name])
        assert all(np.isfinite(o).all() for o in outs)
        spread = float(np.std(np.concatenate(outs)))

        files = [f"{name}.onnx", f"{name}_calib_x.npy", f"{name}_test_x.npy"]
        size = sum(os.path.getsize(os.path.join(OUT_DIR, f)) for f in files)
        total += size
        params = sum(int(np.prod(t.dims)) for t in m.graph.initializer)
        rel = g.macs / target - 1.0
        # The published figures are rounded to 10 k MACs (0.26 M, 12.50 M).
        ok &= round(g.macs, -4) == target
        print(
            f"{name:15s} MACs {g.macs:>11,} (target {target / 1e6:.2f} M, {rel:+.2%})  "
            f"params {params:>7,}  nodes {len(m.graph.node):3d}  output {out_shape} "
            f"(std {spread:.3g})  input range [{data.min():.3g}, {data.max():.3g}]  "
            f"files {size:,} B"
        )
    print(f"total {total:,} B in {OUT_DIR}")
    if not ok:
        sys.exit("a MAC count does not round to its published figure")


if __name__ == "__main__":
    main()
