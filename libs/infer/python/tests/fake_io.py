"""A pure-Python io object with the plugin's contract, for module tests."""

import numpy as np


class FakeIO:
    """Checks the order and shapes the plugin checks, and keeps the output."""

    def __init__(self):
        self.steps, self.frames, self.tail_latents = [], [], None
        self.cancel = False

    def progress(self, step, steps):
        self.steps.append((step, steps))

    def tail(self, latents):
        assert self.tail_latents is None, "tail twice"
        assert not self.frames, "tail after a frame"
        assert latents.dtype == np.float32 and latents.flags["C_CONTIGUOUS"]
        self.tail_latents = np.array(latents)

    def cancelled(self):
        return self.cancel

    def frame(self, index, rgb):
        assert index == len(self.frames), "frames out of order"
        rgb = np.asarray(rgb)
        assert rgb.dtype == np.uint8 and rgb.ndim == 3 and rgb.shape[2] == 3
        self.frames.append(np.array(rgb))


def make_io():
    return FakeIO()
