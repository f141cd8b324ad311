#!/usr/bin/env python3
"""numpy reference for `cargo bench --bench train`: the seed's equations as a numpy user
writes them, timed per epoch.

The same two-layer network (784 -> hidden -> 10), on the same 60,000 MNIST training
images scaled to [0, 1], in the design notes' column-per-image layout (X is 784 x m),
trained with plain gradient descent; an epoch is a fresh random order, each batch
gathered from the whole dataset, one step, and the running loss and correct count.
Threads: numpy's BLAS reads OPENBLAS_NUM_THREADS / OMP_NUM_THREADS, which must be set
before numpy is imported, so `--threads` sets them first.

Prints one JSON object per (hidden, batch) with the median seconds per epoch of `--reps`
epochs after one warm-up epoch. Exits 3 when numpy cannot be imported.
"""

import argparse
import json
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mnist_idx import read_idx  # noqa: E402

ALPHA = 0.01


def epoch_seconds(np, params, x_all, y_all, batch, rng):
    """One epoch of the seed's gradient descent; returns its seconds."""
    w1, b1, w2, b2 = params
    n = x_all.shape[1]
    started = time.perf_counter()
    order = rng.permutation(n)
    loss_sum, correct = 0.0, 0
    for start in range(0, n, batch):
        idx = order[start : start + batch]
        x, labels = x_all[:, idx], y_all[idx]
        m = x.shape[1]
        z1 = w1 @ x + b1  # Z1 = W1·X + b1
        a1 = np.maximum(z1, 0)  # A1 = ReLU(Z1)
        z2 = w2 @ a1 + b2  # Z2 = W2·A1 + b2
        e = np.exp(z2 - z2.max(axis=0))
        a2 = e / e.sum(axis=0)  # A2 = softmax(Z2)
        loss_sum -= np.log(a2[labels, np.arange(m)] + 1e-30).sum()
        correct += int((z2.argmax(axis=0) == labels).sum())
        dz2 = a2
        dz2[labels, np.arange(m)] -= 1.0  # dZ2 = A2 − Y
        dw2 = dz2 @ a1.T / m  # dW2 = (1/m)·dZ2·A1ᵀ
        db2 = dz2.sum(axis=1, keepdims=True) / m  # db2 = (1/m)·Σ dZ2
        dz1 = (w2.T @ dz2) * (z1 > 0)  # dZ1 = W2ᵀ·dZ2 ⊙ ReLU'(Z1)
        dw1 = dz1 @ x.T / m  # dW1 = (1/m)·dZ1·Xᵀ
        db1 = dz1.sum(axis=1, keepdims=True) / m  # db1 = (1/m)·Σ dZ1
        w1 -= ALPHA * dw1
        b1 -= ALPHA * db1
        w2 -= ALPHA * dw2
        b2 -= ALPHA * db2
    return time.perf_counter() - started


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True, help="directory of the MNIST IDX files")
    ap.add_argument("--threads", type=int, required=True)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--case", action="append", required=True, help="HIDDEN:BATCH")
    args = ap.parse_args()
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(args.threads)
    try:
        import numpy as np
    except ImportError as e:
        print(f"numpy_ref: {e}", file=sys.stderr)
        sys.exit(3)
    images = read_idx(os.path.join(args.data, "train-images-idx3-ubyte"))
    labels = read_idx(os.path.join(args.data, "train-labels-idx1-ubyte"))
    x_all = np.ascontiguousarray(images.reshape(len(images), 784).T.astype(np.float32) / 255.0)
    y_all = labels.astype(np.int64)
    rng = np.random.default_rng(1)
    for case in args.case:
        hidden, batch = (int(v) for v in case.split(":"))
        params = [
            (rng.standard_normal((hidden, 784)) * (2.0 / 784) ** 0.5).astype(np.float32),
            np.zeros((hidden, 1), np.float32),
            (rng.standard_normal((10, hidden)) * (2.0 / hidden) ** 0.5).astype(np.float32),
            np.zeros((10, 1), np.float32),
        ]
        epoch_seconds(np, params, x_all, y_all, batch, rng)  # warm-up
        times = [epoch_seconds(np, params, x_all, y_all, batch, rng) for _ in range(args.reps)]
        print(json.dumps({"hidden": hidden, "batch": batch, "epoch_s": statistics.median(times),
                          "numpy": np.__version__}), flush=True)


if __name__ == "__main__":
    main()
