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
    elif mode == "prefix":  # the prefix frames and a signed first_frame reach the module; echoes the frames
        prefix, o = request["prefix_frames"], request["overlap"]
        if not isinstance(prefix, np.ndarray) or prefix.dtype != np.uint8 or prefix.shape != (o, h, w, 3):
            raise ValueError("prefix_frames: %r, want uint8 [%d, %d, %d, 3]" % (type(prefix), o, h, w))
        if request["first_frame"] != -o or request["cond"] is not None:
            raise ValueError("first_frame %r, cond %r" % (request["first_frame"], request["cond"]))
        prefix[0, 0, 0, 0] ^= 0  # writable
        for f in range(n):
            io.frame(f, prefix[f] if f < o else np.full((h, w, 3), 128, dtype=np.uint8))
    elif mode == "no-prefix":  # prefix_frames is None without one
        if request["prefix_frames"] is not None:
            raise ValueError("prefix_frames %r without a prefix" % type(request["prefix_frames"]))
        for f in range(n):
            io.frame(f, np.full((h, w, 3), 128, dtype=np.uint8))
    elif mode == "swallow-cancel":  # ignores io's Abort and returns early
        try:
            while True:
                io.progress(1, 1)
        except BaseException:
            return
    else:  # "no-tail" and anything else: plain grey frames
        for f in range(n):
            io.frame(f, np.full((h, w, 3), 128, dtype=np.uint8))
