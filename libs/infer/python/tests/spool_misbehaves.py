"""A module that breaks the protocol on purpose, chosen by the prompt, for
the plugin's own tests (tests/test_python.c)."""

import numpy as np


def generate_segment(request, io):
    h, w, n = request["height"], request["width"], request["frames"]
    mode = request["prompt"]
    for step in range(request["steps"]):
        io.progress(step + 1, request["steps"])
    if request["tail_frames"] and mode != "no-tail":
        c = 16
        io.tail(np.zeros((request["tail_frames"], c, -(-h // 8), -(-w // 8)), dtype=np.float32))
    if mode == "params":  # the engine's parameters reach the module
        p = request["params"]
        if p.get("module") != "spool_misbehaves" or not p.get("path", "").endswith("/tests"):
            raise ValueError("params %r lack the engine's module and path" % p)
    if mode == "bytes":  # any buffer will do, not only numpy
        for f in range(n):
            io.frame(f, bytes([f % 256]) * (h * w * 3))
    elif mode == "out-of-order":
        io.frame(1, np.zeros((h, w, 3), dtype=np.uint8))
    elif mode == "short-frame":
        io.frame(0, np.zeros((h, w, 2), dtype=np.uint8))
    elif mode == "too-few":
        io.frame(0, np.zeros((h, w, 3), dtype=np.uint8))
    elif mode == "swallow-cancel":  # ignores io's Abort and returns early
        try:
            while True:
                io.progress(1, 1)
        except BaseException:
            return
    else:  # "no-tail" and anything else: plain grey frames
        for f in range(n):
            io.frame(f, np.full((h, w, 3), 128, dtype=np.uint8))
