"""A small numpy latent video model that speaks spool's python protocol.

It has the structure of ref (and of SkyReels-V2 diffusion forcing) at toy
scale: latents [frames, 4, h, w] start from seeded noise around a scene set
by the prompt; `steps` denoise iterations shrink the noise and couple each
frame to the one before; the first `overlap` frames are the clean
conditioning prefix (the previous segment's tail, exactly, or the request's
prefix RGB frames encoded: the inverse of decode, exact but for rounding on
frames this model decoded); the tail is handed out before decode; decode
upsamples each latent frame to RGB.

Deterministic: the same request gives the same frames. It is not
audio-driven: a request with audio or reference frames is refused.
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


MIX = np.array([[0.9, -0.3, 0.2, 0.1], [0.1, 0.8, -0.4, 0.2], [-0.2, 0.3, 0.9, -0.1]], dtype=np.float32)


def _decode(latent, height, width):
    rgb = np.tensordot(MIX, latent, axes=([1], [0]))  # [3, h, w]
    rgb = np.repeat(np.repeat(rgb, SCALE, axis=1), SCALE, axis=2)[:, :height, :width]
    out = 255.0 * (0.5 + 0.5 * rgb / (1.0 + np.abs(rgb)))
    return np.ascontiguousarray(np.clip(np.rint(out), 0, 255).astype(np.uint8).transpose(1, 2, 0))


def _encode(frames, h, w):
    """Latents [n, CHANNELS, h, w] of uint8 frames [n, H, W, 3]: the inverse
    tone curve, the mean of each 8x8 cell (fewer pixels at the edges), and the
    minimal-norm inverse of the channel mix (its pseudo-inverse)."""
    n, height, width, _ = frames.shape
    s = np.clip(frames.astype(np.float64) / 255.0 * 2.0 - 1.0, -0.999, 0.999)
    v = s / (1.0 - np.abs(s))  # y = 0.5 + 0.5 v / (1 + |v|), inverted
    padded = np.full((n, h * SCALE, w * SCALE, 3), np.nan)
    padded[:, :height, :width] = v
    cells = np.nanmean(padded.reshape(n, h, SCALE, w, SCALE, 3), axis=(2, 4))  # [n, h, w, 3]
    lat = np.tensordot(cells, np.linalg.pinv(MIX.astype(np.float64)), axes=([3], [1]))  # [n, h, w, C]
    return np.ascontiguousarray(lat.transpose(0, 3, 1, 2), dtype=np.float32)


def generate_segment(request, io):
    given = [k for k in ("audio", "reference_frames") if request.get(k) is not None]
    if given:
        raise ValueError("spool_numpy_ref: the request carries %s, which this model cannot use" % " and ".join(given))
    frames, overlap, steps = request["frames"], request["overlap"], request["steps"]
    height, width = request["height"], request["width"]
    h, w = -(-height // SCALE), -(-width // SCALE)
    first = request["first_frame"]
    cond = request["cond"]
    if request.get("prefix_frames") is not None:
        cond = _encode(request["prefix_frames"], h, w)
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
