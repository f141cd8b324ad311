"""Loads exported weights (.safetensors or .npz) and prints the digit numpy's forward
pass predicts for each image of a raw uint8 file of 28x28 images. Exits 3 when numpy
or safetensors cannot be imported.

usage: numpy_forward.py WEIGHTS IMAGES.u8
"""
import sys

try:
    import numpy as np
    from safetensors.numpy import load_file
except ImportError as e:
    print(f"numpy_forward: {e}", file=sys.stderr)
    sys.exit(3)

weights, images = sys.argv[1], sys.argv[2]
if weights.endswith(".npz"):
    p = dict(np.load(weights))
else:
    p = load_file(weights)
X = np.fromfile(images, dtype=np.uint8).reshape(-1, 784).T.astype(np.float32) / 255.0
Z1 = p["W1"] @ X + p["b1"][:, None]
A1 = np.maximum(Z1, 0)
Z2 = p["W2"] @ A1 + p["b2"][:, None]
Z2 = Z2 - Z2.max(axis=0, keepdims=True)
A2 = np.exp(Z2) / np.exp(Z2).sum(axis=0, keepdims=True)
print(" ".join(str(d) for d in A2.argmax(axis=0)))
