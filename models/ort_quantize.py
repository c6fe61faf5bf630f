#!/usr/bin/env python3
"""onnxruntime static quantization as an external baseline for sturdy.

Usage:
  python3 models/ort_quantize.py MODEL.onnx --calib X.npy --test-x X.npy --test-y Y.npy
      [--test-d D.npy] [--prior P.npy] [--per-channel] [--weight-type int8|int4]

Runs onnxruntime.quantization.quantize_static (QDQ format, MinMax calibration
on every --calib sample, activations QInt8, weights QInt8 or QInt4; per-tensor
weights unless --per-channel) into a temporary directory, evaluates the
quantized model with onnxruntime (CPU, one thread, one sample at a time) and
prints ONE JSON object on stdout:

  accuracy, balanced_accuracy   on the test samples of domain 0 if --test-d is
                                given (the clean domain, as expected_float.json
                                reports it), else on all test samples
  tail_accuracy                 mean recall of the 3 classes rarest in --prior
                                (same samples; only with --prior), tail_classes
  per_domain_accuracy           {"0": .., "1": ..} (only with --test-d)
  accuracy_all                  accuracy over every test sample
  weight_bytes                  bytes of the quantized weight tensors (the 8- or
                                4-bit initializers that DequantizeLinear reads,
                                4-bit packed two per byte; scales, zero points
                                and the int32 biases are not counted)
  bias_bytes                    bytes of the int32 quantized biases
  ort_version, weight_type, per_channel

Inputs follow make_models.py's conventions: *_x.npy float32 (N, *input shape
without batch), *_y.npy / *_d.npy int64 (N,). The model's output is read as
class scores; the prediction is the argmax over the last axis.

int4 weights use QuantType.QInt4 (onnxruntime >= 1.18 or so). ONNX's own
QuantizeLinear/DequantizeLinear take int4 only from opset 21; for older opsets
(lt_mnist is opset 13) onnxruntime 1.32 emits its com.microsoft Q/DQ ops
instead, which its CPU provider runs. Without QInt4 the script says so (exit 2).

Errors go to stderr with exit code 2.
"""

import argparse
import contextlib
import json
import os
import sys
import tempfile


def fail(msg):
    print(f"ort_quantize: error: {msg}", file=sys.stderr)
    sys.exit(2)


def load_npy(np, path, what, dtype_kind):
    try:
        a = np.load(path, allow_pickle=False)
    except Exception as e:  # noqa: BLE001
        fail(f"cannot read {what} {path}: {e}")
    if a.dtype.kind not in dtype_kind:
        fail(f"{what} {path} has dtype {a.dtype}, expected kind {dtype_kind}")
    return a


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[1],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model")
    ap.add_argument("--calib", required=True, help="calibration inputs (N, *input_shape) float32")
    ap.add_argument("--test-x", required=True)
    ap.add_argument("--test-y", required=True)
    ap.add_argument("--test-d", help="per-sample domain ids (int64)")
    ap.add_argument("--prior", help="class prior (float32 (C,)): the 3 rarest classes are the tail")
    ap.add_argument("--per-channel", action="store_true", help="per-channel weight scales")
    ap.add_argument("--weight-type", choices=["int8", "int4"], default="int8")
    args = ap.parse_args()

    import numpy as np
    try:
        import onnx
        import onnxruntime as ort
        from onnxruntime.quantization import (
            CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType, quantize_static,
        )
    except ImportError as e:
        fail(f"{e} (pip install onnx onnxruntime numpy)")

    if not os.path.isfile(args.model):
        fail(f"no such model {args.model}")
    calib = load_npy(np, args.calib, "--calib", "f").astype(np.float32)
    tx = load_npy(np, args.test_x, "--test-x", "f").astype(np.float32)
    ty = load_npy(np, args.test_y, "--test-y", "iu").astype(np.int64).reshape(-1)
    td = None
    if args.test_d:
        td = load_npy(np, args.test_d, "--test-d", "iu").astype(np.int64).reshape(-1)
    prior = None
    if args.prior:
        prior = load_npy(np, args.prior, "--prior", "f").astype(np.float64).reshape(-1)
    if len(tx) != len(ty):
        fail(f"--test-x has {len(tx)} samples, --test-y {len(ty)}")
    if td is not None and len(td) != len(ty):
        fail(f"--test-d has {len(td)} samples, --test-y {len(ty)}")
    if len(calib) == 0 or len(tx) == 0:
        fail("empty calibration or test set")

    if args.weight_type == "int4":
        if not hasattr(QuantType, "QInt4"):
            fail(f"onnxruntime {ort.__version__} has no QuantType.QInt4 (int4 weights unsupported)")
        wtype = QuantType.QInt4
    else:
        wtype = QuantType.QInt8

    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    so.log_severity_level = 3

    try:
        model = onnx.load(args.model)
    except Exception as e:  # noqa: BLE001
        fail(f"cannot load {args.model}: {e}")
    inp = model.graph.input[0]
    in_name = inp.name
    dims = [d.dim_value if d.HasField("dim_value") else None for d in inp.type.tensor_type.shape.dim]
    sample_shape = tuple(dims[1:])
    for what, a in (("--calib", calib), ("--test-x", tx)):
        if tuple(a.shape[1:]) != sample_shape and None not in sample_shape:
            fail(f"{what} samples have shape {a.shape[1:]}, the model input {tuple(dims)}")

    class Reader(CalibrationDataReader):
        def __init__(self, x):
            self.i, self.x = 0, x

        def get_next(self):
            if self.i >= len(self.x):
                return None
            self.i += 1
            return {in_name: self.x[self.i - 1:self.i]}

    with tempfile.TemporaryDirectory(prefix="ort_quantize_") as tmp:
        qpath = os.path.join(tmp, "model_qdq.onnx")
        try:
            # Keep stdout for the JSON result only.
            with contextlib.redirect_stdout(sys.stderr):
                quantize_static(
                    args.model, qpath, Reader(calib),
                    quant_format=QuantFormat.QDQ,
                    per_channel=args.per_channel,
                    activation_type=QuantType.QInt8,
                    weight_type=wtype,
                    calibrate_method=CalibrationMethod.MinMax,
                )
            qmodel = onnx.load(qpath)
            sess = ort.InferenceSession(qpath, so, providers=["CPUExecutionProvider"])
        except Exception as e:  # noqa: BLE001
            fail(f"onnxruntime quantization ({args.weight_type}) failed: {type(e).__name__}: {e}")

        # Quantized tensor sizes: initializers read as DequantizeLinear's x.
        from onnx import TensorProto
        inits = {t.name: t for t in qmodel.graph.initializer}
        bits = {TensorProto.INT8: 8, TensorProto.UINT8: 8}
        for name in ("INT4", "UINT4"):
            if hasattr(TensorProto, name):
                bits[getattr(TensorProto, name)] = 4
        weight_bytes = bias_bytes = 0
        seen = set()
        for n in qmodel.graph.node:
            if n.op_type != "DequantizeLinear" or n.input[0] not in inits or n.input[0] in seen:
                continue
            seen.add(n.input[0])
            t = inits[n.input[0]]
            numel = int(np.prod(t.dims)) if len(t.dims) else 1
            if t.data_type in bits:
                weight_bytes += (numel * bits[t.data_type] + 7) // 8
            elif t.data_type == TensorProto.INT32:
                bias_bytes += 4 * numel

        try:
            pred = np.empty(len(tx), dtype=np.int64)
            for i in range(len(tx)):
                out = sess.run(None, {in_name: tx[i:i + 1]})[0]
                pred[i] = int(np.argmax(out.reshape(-1)))
        except Exception as e:  # noqa: BLE001
            fail(f"onnxruntime inference failed: {type(e).__name__}: {e}")

    def recall(mask, c):
        m = mask & (ty == c)
        return float((pred[m] == c).mean()) if m.any() else None

    head = np.ones(len(ty), dtype=bool)
    if td is not None and (td == 0).any():
        head = td == 0
    classes = np.unique(ty[head])
    recalls = {int(c): recall(head, c) for c in classes}
    res = {
        "accuracy": float((pred[head] == ty[head]).mean()),
        "balanced_accuracy": float(np.mean([recalls[int(c)] for c in classes])),
    }
    if prior is not None:
        tail = np.sort(np.argsort(prior, kind="stable")[:3])
        vals = [recall(head, c) for c in tail]
        vals = [v for v in vals if v is not None]
        if vals:
            res["tail_accuracy"] = float(np.mean(vals))
            res["tail_classes"] = [int(c) for c in tail]
    if td is not None:
        res["per_domain_accuracy"] = {
            str(int(d)): float((pred[td == d] == ty[td == d]).mean()) for d in np.unique(td)}
    res["accuracy_all"] = float((pred == ty).mean())
    res["weight_bytes"] = int(weight_bytes)
    res["bias_bytes"] = int(bias_bytes)
    res["ort_version"] = ort.__version__
    res["weight_type"] = args.weight_type
    res["per_channel"] = bool(args.per_channel)
    print(json.dumps(res))


if __name__ == "__main__":
    main()
