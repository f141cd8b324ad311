#!/usr/bin/env python3
"""Runs an exported ONNX model with onnxruntime on the first N MNIST test images and
prints its probabilities as JSON, for tests/integration/onnx.rs to compare with the Rust
forward. Usage: onnx_check.py MODEL.onnx DATA_DIR N. Exits 3 when onnxruntime or numpy
cannot be imported."""

import gzip
import json
import os
import sys

try:
    import numpy as np
    import onnxruntime as ort
except ImportError as e:
    print(f"onnx_check: {e}", file=sys.stderr)
    sys.exit(3)

model, data, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
path = os.path.join(data, "t10k-images-idx3-ubyte")
if not os.path.exists(path):
    path += ".gz"
with (gzip.open if path.endswith(".gz") else open)(path, "rb") as f:
    raw = f.read()
images = np.frombuffer(raw, dtype=np.uint8, offset=16).reshape(-1, 784)[:n]
x = images.astype(np.float32) / 255.0
session = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
inputs = [(i.name, i.shape) for i in session.get_inputs()]
outputs = [o.name for o in session.get_outputs()]
logits, probabilities = session.run(["logits", "probabilities"], {"image": x})
print(json.dumps({"inputs": inputs, "outputs": outputs,
                  "probabilities": probabilities.tolist(), "logits_shape": list(logits.shape)}))
