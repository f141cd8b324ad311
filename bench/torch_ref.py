#!/usr/bin/env python3
"""PyTorch reference for `cargo bench --bench train`.

The same two-layer network (784 -> hidden -> 10, ReLU, softmax cross-entropy), on the
same 60,000 MNIST training images scaled to [0, 1], trained with plain SGD on the CPU
with the same thread count. An epoch is what mnist-nn's loop does: a fresh random
order, each batch gathered from the whole dataset held as one tensor, one step, and
the running loss and correct count kept on the tensor side.

Two ways of computing the step are timed:
  autograd  nn.Linear layers, F.cross_entropy, loss.backward(), torch.optim.SGD
            (what a PyTorch user writes);
  manual    the design notes' formulas written out with torch matmuls under no_grad,
            in PyTorch's row-per-image layout (the transposes of mnist-nn's).

Also timed: the five matrix products of each step alone (mode "matmul"), as the bench
does for Burn, so that the two GEMM libraries can be compared on these shapes.

Prints one JSON object per (hidden, batch, mode) with the median seconds per epoch of
`--reps` epochs after one warm-up epoch.

With `--to-accuracy RECIPE` (repeatable) it instead trains the network from scratch by
each recipe (see RECIPES: 784-800-10 with Adam at PyTorch's default rate, constant or
cosine, the recipe of configs/fast.toml written in PyTorch, its earlier recipe with 512
hidden units, and that one at batch 64 over 2 epochs) until the test accuracy, evaluated
after every epoch, reaches `--target`, and prints the epochs, the training seconds
(evaluations excluded) and the accuracy reached.

Exits 3 when torch cannot be imported.
"""

import argparse
import json
import math
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mnist_idx import read_idx  # noqa: E402

try:
    import numpy as np
    import torch
    import torch.nn.functional as F
except ImportError as e:  # the bench reports the reference as skipped
    print(f"torch_ref: {e}", file=sys.stderr)
    sys.exit(3)

ALPHA = 0.01

# Where the tensors live: "cpu", or "cuda" for the GPU side of the bench (`--device`).
DEVICE = torch.device("cpu")


def sync():
    """Waits for the device's queued work, so that a clock read after it is honest."""
    if DEVICE.type == "cuda":
        torch.cuda.synchronize()


def autograd_step(hidden):
    """nn.Linear layers, autograd and torch.optim.SGD."""
    net = torch.nn.Sequential(
        torch.nn.Linear(784, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, 10)
    ).to(DEVICE)
    opt = torch.optim.SGD(net.parameters(), lr=ALPHA)

    def step(x, y):
        z2 = net(x)
        loss = F.cross_entropy(z2, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return loss.detach(), z2.detach()

    return step


def manual_step(hidden):
    """The hand-derived backward of the design notes, row-per-image layout."""
    w1 = torch.randn(hidden, 784, device=DEVICE) * (2.0 / 784) ** 0.5
    b1 = torch.zeros(hidden, device=DEVICE)
    w2 = torch.randn(10, hidden, device=DEVICE) * (2.0 / hidden) ** 0.5
    b2 = torch.zeros(10, device=DEVICE)

    @torch.no_grad()
    def step(x, y):
        m = x.shape[0]
        z1 = torch.addmm(b1, x, w1.t())  # Z1 = W1·X + b1
        a1 = torch.relu(z1)  # A1 = ReLU(Z1)
        z2 = torch.addmm(b2, a1, w2.t())  # Z2 = W2·A1 + b2
        a2 = torch.softmax(z2, dim=1)  # A2 = softmax(Z2)
        loss = F.cross_entropy(z2, y)
        dz2 = a2
        dz2[torch.arange(m, device=DEVICE), y] -= 1.0  # dZ2 = A2 − Y
        dw2 = dz2.t() @ a1 / m  # dW2 = (1/m)·dZ2·A1ᵀ
        db2 = dz2.sum(0) / m  # db2 = (1/m)·Σ dZ2
        dz1 = (dz2 @ w2) * (z1 > 0)  # dZ1 = W2ᵀ·dZ2 ⊙ ReLU'(Z1)
        dw1 = dz1.t() @ x / m  # dW1 = (1/m)·dZ1·Xᵀ
        db1 = dz1.sum(0) / m  # db1 = (1/m)·Σ dZ1
        w1.sub_(ALPHA * dw1)
        b1.sub_(ALPHA * db1)
        w2.sub_(ALPHA * dw2)
        b2.sub_(ALPHA * db2)
        return loss, z2

    return step


def epoch_seconds(step, x_all, y_all, batch):
    """One epoch: shuffle, gather each batch, step, keep loss and correct counts."""
    n = x_all.shape[0]
    started = time.perf_counter()
    order = torch.randperm(n, device=DEVICE)
    loss_sum = torch.zeros((), device=DEVICE)
    correct = torch.zeros((), dtype=torch.long, device=DEVICE)
    for start in range(0, n, batch):
        idx = order[start : start + batch]
        x, y = x_all[idx], y_all[idx]
        loss, z2 = step(x, y)
        loss_sum += loss * len(idx)
        correct += (z2.argmax(1) == y).sum()
    loss_sum.item(), correct.item()
    return time.perf_counter() - started


def matmul_seconds(hidden, n, batch):
    """One epoch of only the five matrix products of each step, on operands of the
    step's shapes (row-per-image layout): what PyTorch's GEMM needs, whatever else."""
    full, rest = divmod(n, batch)
    full_of = lambda shape: torch.full(shape, 0.01, device=DEVICE)  # noqa: E731
    w1 = full_of((hidden, 784))
    w2 = full_of((10, hidden))
    sets = []
    for m, count in ((batch, full), (rest, 1)):
        if m and count:
            sets.append((full_of((m, 784)), full_of((m, hidden)), full_of((m, 10)), count))
    sync()
    started = time.perf_counter()
    for x, a1, dz2, count in sets:
        for _ in range(count):
            x @ w1.t()  # Z1 (without bias)
            a1 @ w2.t()  # Z2
            dz2.t() @ a1  # dW2
            dz1 = dz2 @ w2  # W2ᵀ·dZ2
            dz1.t() @ x  # dW1 (dz1 stands in for the masked one: same shape)
    sync()
    return time.perf_counter() - started


# Recipes for time to a test accuracy: (optimizer, rate, schedule, epochs the schedule
# spans, batch, hidden). "linear" decays to zero over the span, "cosine" follows a half
# cosine over it, both per step, as mnist-nn's schedules do.
RECIPES = {
    "adam": ("adam", 1e-3, "constant", 0, 128, 800),
    "adam-cosine": ("adam", 1e-3, "cosine", 10, 128, 800),
    "fast": ("momentum", 0.25, "linear", 3, 128, 384),
    # fast.toml's earlier recipe: 512 hidden units at α = 0.2 decayed over 4 epochs.
    "fast-512": ("momentum", 0.2, "linear", 4, 128, 512),
    # fast-512 at batch 64, decayed over 2 epochs.
    "fast-b64": ("momentum", 0.2, "linear", 2, 64, 512),
}


def to_accuracy(recipe, x_all, y_all, x_test, y_test, target, max_epochs, seed):
    """Trains 784-hidden-10 by `recipe` until the test accuracy reaches `target`."""
    optimizer, rate, schedule, span, batch, hidden = RECIPES[recipe]
    torch.manual_seed(seed)
    net = torch.nn.Sequential(
        torch.nn.Linear(784, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, 10)
    ).to(DEVICE)
    if optimizer == "adam":
        opt = torch.optim.Adam(net.parameters(), lr=rate)
    else:
        opt = torch.optim.SGD(net.parameters(), lr=rate, momentum=0.9)
    n = x_all.shape[0]
    per_epoch = (n + batch - 1) // batch
    total = max(span, 1) * per_epoch
    step = 0
    seconds = 0.0
    for epoch in range(1, max_epochs + 1):
        started = time.perf_counter()
        order = torch.randperm(n, device=DEVICE)
        for start in range(0, n, batch):
            p = min(step / total, 1.0)
            if schedule == "linear":
                lr = rate * (1.0 - p)
            elif schedule == "cosine":
                lr = rate * 0.5 * (1.0 + math.cos(math.pi * p))
            else:
                lr = rate
            for group in opt.param_groups:
                group["lr"] = lr
            idx = order[start : start + batch]
            loss = F.cross_entropy(net(x_all[idx]), y_all[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            step += 1
        sync()
        seconds += time.perf_counter() - started
        with torch.no_grad():
            accuracy = (net(x_test).argmax(1) == y_test).float().mean().item()
        if accuracy >= target:
            return {"recipe": recipe, "epochs": epoch, "seconds": seconds,
                    "accuracy": accuracy}
        if schedule == "linear" and epoch >= span:
            break  # the rate is zero from here on
    return {"recipe": recipe, "epochs": None, "seconds": seconds, "accuracy": accuracy}


def device_name():
    """The CUDA device's name, or "cpu"."""
    return torch.cuda.get_device_name(DEVICE) if DEVICE.type == "cuda" else "cpu"


def load(data, kind):
    """Images scaled to [0, 1] and labels of MNIST's `train` or `t10k` files."""
    images = read_idx(os.path.join(data, f"{kind}-images-idx3-ubyte"))
    labels = read_idx(os.path.join(data, f"{kind}-labels-idx1-ubyte"))
    x = torch.from_numpy(images.reshape(len(images), 784).astype(np.float32) / 255.0)
    return x, torch.from_numpy(labels.astype(np.int64))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True, help="directory of the MNIST IDX files")
    ap.add_argument("--threads", type=int, required=True)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument(
        "--case",
        action="append",
        default=[],
        help="HIDDEN:BATCH, BATCH a number or 'full' (repeatable)",
    )
    ap.add_argument("--to-accuracy", action="append", default=[], choices=sorted(RECIPES),
                    help="a recipe to train until --target test accuracy (repeatable)")
    ap.add_argument("--target", type=float, default=0.98)
    ap.add_argument("--max-epochs", type=int, default=15)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--gemm", type=int, default=0,
                    help="also time a float32 N×N×N product (GFLOP/s), e.g. 2048")
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"],
                    help="where to train: the CPU, or the GPU through CUDA")
    args = ap.parse_args()
    global DEVICE
    DEVICE = torch.device(args.device)
    if DEVICE.type == "cuda" and not torch.cuda.is_available():
        print("torch_ref: --device cuda, but torch sees no CUDA device", file=sys.stderr)
        sys.exit(3)
    torch.set_num_threads(args.threads)
    torch.manual_seed(1)
    if args.gemm:
        n = args.gemm
        a = torch.full((n, n), 0.5, device=DEVICE)
        b = torch.full((n, n), 0.25, device=DEVICE)
        a @ b  # warm-up
        times = []
        for _ in range(max(args.reps, 3)):
            sync()
            started = time.perf_counter()
            a @ b
            sync()
            times.append(time.perf_counter() - started)
        print(json.dumps({"gemm_side": n, "gflops": 2 * n**3 / statistics.median(times) / 1e9,
                          "torch": torch.__version__, "device": device_name()}), flush=True)
    x_all, y_all = (t.to(DEVICE) for t in load(args.data, "train"))
    if args.to_accuracy:
        x_test, y_test = (t.to(DEVICE) for t in load(args.data, "t10k"))
        for recipe in args.to_accuracy:
            result = to_accuracy(recipe, x_all, y_all, x_test, y_test, args.target,
                                 args.max_epochs, args.seed)
            result.update(torch=torch.__version__, threads=torch.get_num_threads())
            print(json.dumps(result), flush=True)
    for case in args.case:
        hidden, batch = case.split(":")
        hidden = int(hidden)
        batch = len(x_all) if batch == "full" else int(batch)
        matmul_seconds(hidden, len(x_all), batch)  # warm-up
        mm = [matmul_seconds(hidden, len(x_all), batch) for _ in range(args.reps)]
        print(json.dumps({"hidden": hidden, "batch": batch, "mode": "matmul",
                          "epoch_s": statistics.median(mm), "torch": torch.__version__}),
              flush=True)
        for mode, make in (("autograd", autograd_step), ("manual", manual_step)):
            step = make(hidden)
            epoch_seconds(step, x_all, y_all, batch)  # warm-up
            times = [epoch_seconds(step, x_all, y_all, batch) for _ in range(args.reps)]
            print(
                json.dumps(
                    {
                        "hidden": hidden,
                        "batch": batch,
                        "mode": mode,
                        "epoch_s": statistics.median(times),
                        "torch": torch.__version__,
                        "threads": torch.get_num_threads(),
                        "device": device_name(),
                    }
                ),
                flush=True,
            )


if __name__ == "__main__":
    main()
