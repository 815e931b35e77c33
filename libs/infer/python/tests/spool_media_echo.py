"""A module that echoes a request's media back as its frames, for the tests
that audio samples and reference frames reach Python intact.

Frame i is reference frame i (request["reference_frames"][i], zeros without
them) with its first 44 bytes overwritten by:
  bytes  0..31  SHA-256 of frame i's own samples of request["audio"] as
                float32 little-endian bytes (of nothing without audio): the
                samples [S(t) - S(first), S(t + 1) - S(first)) with t =
                first_frame + i and S(t) = floor((2·t·audio_rate + fps) /
                (2·fps)), spool's sample arithmetic;
  bytes 32..35  audio_rate, uint32 little-endian;
  bytes 36..43  len(request["audio"]), uint64 little-endian (0 without).
It refuses media of the wrong type or shape (ValueError), and hands out a
zero tail of the right shape when asked.
"""

import hashlib
import struct

import numpy as np


def info(params):
    return {"model_version": "media-echo", "latent_channels": 4, "latent_scale": 8, "frame_align": 1}


def sample_at(t, fps, rate):
    return (2 * t * rate + fps) // (2 * fps)


def generate_segment(request, io):
    frames, height, width = request["frames"], request["height"], request["width"]
    audio, rate, ref = request["audio"], request["audio_rate"], request["reference_frames"]
    if audio is not None and (not isinstance(audio, np.ndarray) or audio.dtype != np.float32 or audio.ndim != 1):
        raise ValueError("audio: want a numpy float32 array [n], got %r" % (audio,))
    if ref is not None and (not isinstance(ref, np.ndarray) or ref.dtype != np.uint8 or
                            ref.shape != (frames, height, width, 3)):
        raise ValueError("reference_frames: want numpy uint8 [%d, %d, %d, 3], got %r" % (frames, height, width, ref))
    io.progress(1, 1)
    if request["tail_frames"]:
        h, w = -(-height // 8), -(-width // 8)
        io.tail(np.zeros((request["tail_frames"], 4, h, w), dtype=np.float32))
    first, fps = request["first_frame"], request["fps"]
    for i in range(frames):
        out = np.array(ref[i]) if ref is not None else np.zeros((height, width, 3), dtype=np.uint8)
        own = b""
        if audio is not None:
            base = sample_at(first, fps, rate)
            lo, hi = sample_at(first + i, fps, rate) - base, sample_at(first + i + 1, fps, rate) - base
            own = audio[lo:hi].astype("<f4").tobytes()
        head = hashlib.sha256(own).digest() + struct.pack("<IQ", rate, 0 if audio is None else len(audio))
        flat = out.reshape(-1)
        flat[:len(head)] = np.frombuffer(head, dtype=np.uint8)
        io.frame(i, out)
