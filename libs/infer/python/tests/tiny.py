"""The tiny SkyReels-V2 pipeline for tests: where it is, engines on it, requests.

The folder is SPOOL_TINY_MODEL, else <repo root>/.spool/models/skyreels-v2-df-tiny
(`make tiny-model` makes it). A missing folder fails the tests that need it."""

import os
import unittest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "..", ".."))
TINY = os.environ.get("SPOOL_TINY_MODEL") or os.path.join(ROOT, ".spool", "models", "skyreels-v2-df-tiny")

# The catalog's skyreels-v2-df-tiny.
WIDTH, HEIGHT, WINDOW, OVERLAP, MAX_WINDOW, STEPS, GUIDANCE, SHIFT = 128, 64, 17, 5, 33, 4, 5.0, 8


def missing():
    """Why the tiny model cannot be used, or None."""
    if os.path.isfile(os.path.join(TINY, "model_index.json")):
        return None
    return "the tiny SkyReels-V2 model is not at %s: run `make tiny-model` (or set SPOOL_TINY_MODEL)" % TINY


def options(**params):
    """An engine's options as the plugin gives them (catalog params, then the worker's)."""
    o = {"module": "skyreels_df", "weights": "Skywork/SkyReels-V2-DF-1.3B-540P-Diffusers", "shift": str(SHIFT),
         "max_window": str(MAX_WINDOW), "model": "skyreels-v2-df-tiny", "weights_dir": TINY, "device": -1}
    o.update(params)
    return o


def request(**kw):
    r = dict(prompt="a lighthouse in a storm", seed=5, width=WIDTH, height=HEIGHT, frames=WINDOW, overlap=0,
             steps=STEPS, guidance=GUIDANCE, first_frame=0, tail_frames=OVERLAP, cond=None, prefix_frames=None, fps=24,
             model="skyreels-v2-df-tiny", weights_dir=TINY, device=-1, params={})
    r.update(kw)
    return r


class TinyTestCase(unittest.TestCase):
    """Opens one engine on the tiny model for the class (self.engine); fails
    every test, naming `make tiny-model`, when the model is missing."""

    engine_params = {}

    @classmethod
    def setUpClass(cls):
        quiet_torch()
        cls.engine = None
        if missing() is None:
            import skyreels_df

            cls.engine = skyreels_df.open(options(**cls.engine_params))

    def setUp(self):
        why = missing()
        if why:
            self.fail(why)


def quiet_torch():
    """One intra-op thread: the tiny model gains nothing from more, and a
    busy machine's oversubscribed OpenMP threads make it crawl."""
    import torch

    torch.set_num_threads(1)
