"""A small numpy latent video model that speaks spool's python protocol.

It has the structure of ref (and of SkyReels-V2 diffusion forcing) at toy
scale: latents [frames, 4, h, w] start from seeded noise around a scene set
by the prompt; `steps` denoise iterations shrink the noise and couple each
frame to the one before; the first `overlap` frames are the clean
conditioning prefix (the previous segment's tail, exactly); the tail is handed
out before decode; decode upsamples each latent frame to RGB.

Deterministic: the same request gives the same frames.
"""

import hashlib

import numpy as np

CHANNELS = 4
SCALE = 8


def info(params):
    return {"model_version": "numpy-ref-1", "latent_channels": CHANNELS, "latent_scale": SCALE, "frame_align": 1}


def _scene(prompt, t, h, w):
    digest = hashlib.sha256(prompt.encode("utf-8")).digest()
    rng = np.random.default_rng(int.from_bytes(digest[:8], "little"))
    base = rng.uniform(-1, 1, size=(CHANNELS, 1, 1)).astype(np.float32)
    amp = rng.uniform(-1.5, 1.5, size=(CHANNELS, 1, 1)).astype(np.float32)
    wx, wy = rng.uniform(0.02, 0.06, size=2)
    cx = (0.5 + 0.35 * np.sin(wx * t)) * w
    cy = (0.5 + 0.3 * np.sin(wy * t + 1.0)) * h
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    blob = np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * (0.2 * min(h, w)) ** 2)).astype(np.float32)
    return base + amp * blob[None, :, :]


def _decode(latent, height, width):
    mix = np.array([[0.9, -0.3, 0.2, 0.1], [0.1, 0.8, -0.4, 0.2], [-0.2, 0.3, 0.9, -0.1]], dtype=np.float32)
    rgb = np.tensordot(mix, latent, axes=([1], [0]))  # [3, h, w]
    rgb = np.repeat(np.repeat(rgb, SCALE, axis=1), SCALE, axis=2)[:, :height, :width]
    out = 255.0 * (0.5 + 0.5 * rgb / (1.0 + np.abs(rgb)))
    return np.ascontiguousarray(np.clip(np.rint(out), 0, 255).astype(np.uint8).transpose(1, 2, 0))


def generate_segment(request, io):
    frames, overlap, steps = request["frames"], request["overlap"], request["steps"]
    height, width = request["height"], request["width"]
    h, w = -(-height // SCALE), -(-width // SCALE)
    first = request["first_frame"]
    cond = request["cond"]
    o = overlap if cond is not None else 0

    rng = np.random.default_rng(request["seed"])
    scenes = np.stack([_scene(request["prompt"], first + f, h, w) for f in range(frames)])
    lat = scenes + rng.standard_normal((frames, CHANNELS, h, w), dtype=np.float32)
    if o:
        lat[:o] = cond
    end = 0.05 / (1.0 + request["guidance"] / 5.0)
    for step in range(steps):
        if io.cancelled():
            raise RuntimeError("cancelled")
        s0 = 1.0 + (end - 1.0) * step / steps
        s1 = 1.0 + (end - 1.0) * (step + 1) / steps
        resid = lat[o:] - scenes[o:]
        resid *= np.float32(s1 / s0)
        lat[o:] = scenes[o:] + resid
        for f in range(max(o, 1), frames):  # causal temporal coupling
            lat[f] += np.float32(0.15) * (lat[f - 1] - lat[f]) * np.float32(s1)
        if o:
            lat[:o] = cond
        io.progress(step + 1, steps)

    if request["tail_frames"]:
        io.tail(np.ascontiguousarray(lat[frames - request["tail_frames"]:], dtype=np.float32))
    for f in range(frames):
        io.frame(f, _decode(lat[f], height, width))
