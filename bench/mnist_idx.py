"""MNIST's IDX files for the bench's Python references (torch_ref.py, numpy_ref.py)."""

import gzip
import os


def read_idx(path):
    """An IDX file (raw, or gzipped beside it as `path`.gz) as a numpy uint8 array of its
    dimensions. numpy is imported here, so that a caller can set its thread count first."""
    import numpy as np

    if not os.path.exists(path) and os.path.exists(path + ".gz"):
        path += ".gz"
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)
