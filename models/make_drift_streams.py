#!/usr/bin/env python3
"""Regenerate the sensor-drift streams in models/drift/.

Usage:  python3 models/make_drift_streams.py
            (lt_mnist's streams into models/drift/; make_models.py calls main())
        python3 models/make_drift_streams.py --model lt_mlp --out DIR
            (the same streams for another bundled model's test set, e.g. to
             check the drift monitor on models it was not tuned on)
Needs:  pip install numpy

Why: a sensor in the field ages -- gain falls, the black level creeps up,
contrast goes, noise grows -- and nobody tells the device. `sturdy run --adapt`
(and `sturdy hil --adapt` on a board) play a stream in file order through the
device's drift monitor, which must notice the drift and re-fit its input
alignment, and must NOT re-fit when only the mix of classes changes.

Every stream draws its images (seeded, with replacement) from the model's
clean held-out test images (lt_mnist: the 600 domain-0 test images), so no
stream sample was trained or calibrated on. Pixel values x are in [0, 1].
Streams have N = 3000 samples (gain_offset, class_mix) or 1500 (contrast,
noise, swap), float16 to keep the bundle small. With N samples, the drift starts at ONSET = N/10, ramps linearly until
END = 2N/3 and then holds: the last third is entirely in the drifted state.

  NAME_gain_offset  x -> g*x + o, (g, o) from (1, 0) to (0.3, 0.5): ends in
                    lt_mnist's domain 1 ("gain 0.3x+0.5", dim, raised black level)
  NAME_contrast     x -> (1-a)*x + a*(0.55 + 0.3*sqrt(x)), a from 0 to 1: ends
                    in lt_mnist's domain 2 (contrast loss, gamma 0.5)
  NAME_noise        x -> clip(x + N(0, s^2), 0, 1), s from 0 to 0.15: ends in
                    lt_mnist's domain 3 (not monotone: alignment can only help
                    partly)
  NAME_swap         clean until N/2, then abruptly domain 1 (a sensor swap)
  NAME_class_mix    clean sensor; the class mix moves from uniform to 80 % of
                    samples from two classes and on to two other classes (a
                    stationary sensor whose scene changed: no re-fit wanted)
  NAME_stationary   clean sensor, uniform class mix, 10,000 samples (zero
                    re-fits wanted)

Files: NAME_KIND_x.npy (float16 [N, 1, H, W], half the bytes of float32; its
rounding, at most 0.0005 on [0, 1], is an eighth of one int8 input step) and
NAME_KIND_y.npy (int32 labels).
"""

import argparse
import os

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
LENGTH = 3000
SHORT_LENGTH = 1500
STATIONARY_LENGTH = 10_000
SEED = 20261203


def clean_test_set(model):
    x = np.load(os.path.join(HERE, f"{model}_test_x.npy"))
    y = np.load(os.path.join(HERE, f"{model}_test_y.npy"))
    dpath = os.path.join(HERE, f"{model}_test_d.npy")
    if os.path.exists(dpath):
        keep = np.load(dpath) == 0
        x, y = x[keep], y[keep]
    return x.astype(np.float64), y.astype(np.int64)


def schedule(n):
    """Drift amount a(t) in [0, 1] per sample: 0 before ONSET, linear to END, then 1."""
    t = np.arange(n, dtype=np.float64)
    onset, end = n // 10, 2 * n // 3
    return np.clip((t - onset) / (end - onset), 0.0, 1.0)


def draw(x, y, n, rng, weights=None):
    """n images with replacement; `weights` (n x classes) sets each sample's class mix."""
    if weights is None:
        idx = rng.integers(0, len(x), size=n)
    else:
        by_class = [np.flatnonzero(y == c) for c in range(weights.shape[1])]
        cls = [rng.choice(weights.shape[1], p=w) for w in weights]
        idx = np.array([rng.choice(by_class[c]) for c in cls])
    return x[idx].copy(), y[idx].copy()


def class_mix_weights(n, classes, rng):
    """Uniform for the first third, then 80 % from two classes, then two others."""
    pair_a, pair_b = rng.permutation(classes)[:4].reshape(2, 2)
    w = np.full((n, classes), 1.0 / classes)
    for part, pair in ((1, pair_a), (2, pair_b)):
        skew = np.full(classes, 0.2 / (classes - 2))
        skew[pair] = 0.4
        w[part * n // 3:(part + 1) * n // 3] = skew
    return w


def streams(x, y, rng):
    n = LENGTH
    a = schedule(n)[:, None, None, None]
    out = {}
    xs, ys = draw(x, y, n, rng)
    out["gain_offset"] = ((1 - 0.7 * a) * xs + 0.5 * a, ys)
    n = SHORT_LENGTH
    a = schedule(n)[:, None, None, None]
    xs, ys = draw(x, y, n, rng)
    out["contrast"] = ((1 - a) * xs + a * (0.55 + 0.3 * np.sqrt(xs)), ys)
    xs, ys = draw(x, y, n, rng)
    out["noise"] = (np.clip(xs + rng.normal(0.0, 1.0, xs.shape) * 0.15 * a, 0.0, 1.0), ys)
    xs, ys = draw(x, y, n, rng)
    swapped = (np.arange(n) >= n // 2)[:, None, None, None]
    out["swap"] = (np.where(swapped, 0.3 * xs + 0.5, xs), ys)
    classes = int(y.max()) + 1
    n = LENGTH
    out["class_mix"] = draw(x, y, n, rng, class_mix_weights(n, classes, rng))
    out["stationary"] = draw(x, y, STATIONARY_LENGTH, rng)
    return out


def main(model="lt_mnist", out_dir=os.path.join(HERE, "drift")):
    x, y = clean_test_set(model)
    rng = np.random.default_rng(SEED)
    os.makedirs(out_dir, exist_ok=True)
    for kind, (xs, ys) in streams(x, y, rng).items():
        np.save(os.path.join(out_dir, f"{model}_{kind}_x.npy"), xs.astype(np.float16))
        np.save(os.path.join(out_dir, f"{model}_{kind}_y.npy"), ys.astype(np.int32))
        print(f"{model}_{kind}: {len(xs)} samples, x in [{xs.min():.3f}, {xs.max():.3f}]")


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", default="lt_mnist")
    p.add_argument("--out", default=os.path.join(HERE, "drift"))
    args = p.parse_args()
    main(args.model, args.out)
