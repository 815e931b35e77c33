"""bench_direct.py runs the window skyreels_df runs: the same frames for the
same request, and its JSON."""

import contextlib
import io
import json

import numpy as np
import torch

import bench_direct
from tests import tiny
from tests.fake_io import make_io


class BenchDirectTest(tiny.TinyTestCase):
    def test_the_direct_window_is_the_segments(self):
        req = tiny.request(tail_frames=0, seed=9, fps=16)
        seg = make_io()
        self.engine.generate_segment(req, seg)
        direct = bench_direct.window(self.engine.pipe, req, torch.device("cpu"))
        np.testing.assert_array_equal(direct, np.stack(seg.frames))

    def test_prints_seconds_per_window(self):
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            bench_direct.main(["--model", tiny.TINY, "--n", "2", "--warmup", "0", "--frames", "5"])
        got = json.loads(out.getvalue())
        self.assertEqual((got["n"], len(got["runs"]), got["frames"]), (2, 2, 5))
        self.assertGreater(got["seconds_per_window"], 0)
        self.assertTrue(got["model"].startswith("skyreels-v2-df-tiny cfg "))
