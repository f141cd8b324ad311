#!/usr/bin/env python3
"""Reads a run directory's event files with TensorBoard's own reader (EventAccumulator)
and prints what it found as JSON, for tests/integration/tensorboard.rs to check against
metrics.csv and the saved weights; also the SessionLog events of each file, decoded with
TensorBoard's protos. Exits 3 when tensorboard cannot be imported."""

import json
import os
import sys

try:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.backend.event_processing.event_file_loader import EventFileLoader
    from tensorboard.compat.proto.event_pb2 import SessionLog
except ImportError as e:
    print(f"tensorboard_read: {e}", file=sys.stderr)
    sys.exit(3)

acc = EventAccumulator(sys.argv[1], size_guidance={"scalars": 0, "histograms": 0,
                                                   "images": 0, "tensors": 0})
acc.Reload()
tags = acc.Tags()
out = {
    "scalars": {t: [[e.step, e.wall_time, e.value] for e in acc.Scalars(t)]
                for t in tags["scalars"]},
    "histograms": {},
    "images": {t: [[e.step, e.width, e.height, len(e.encoded_image_string)]
                   for e in acc.Images(t)] for t in tags["images"]},
    "text": {t: [e.tensor_proto.string_val[0].decode() for e in acc.Tensors(t)]
             for t in tags["tensors"]},
}
for t in tags["histograms"]:
    out["histograms"][t] = []
    for e in acc.Histograms(t):
        h = e.histogram_value
        out["histograms"][t].append({"step": e.step, "num": h.num, "min": h.min, "max": h.max,
                                     "sum": h.sum, "sum_squares": h.sum_squares,
                                     "buckets": sum(h.bucket)})
# Every SessionLog, per event file in name order, as TensorBoard's own protos decode
# it: [file index, step, status name].
files = sorted(f for f in os.listdir(sys.argv[1]) if "tfevents" in f)
out["session_logs"] = [
    [i, e.step, SessionLog.SessionStatus.Name(e.session_log.status)]
    for i, f in enumerate(files)
    for e in EventFileLoader(os.path.join(sys.argv[1], f)).Load()
    if e.HasField("session_log")
]
print(json.dumps(out))
