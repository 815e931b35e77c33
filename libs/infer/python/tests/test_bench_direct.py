"""bench_direct.py runs the window skyreels_df runs: the same frames for the
same request, and its JSON."""

import contextlib
import io
import json
import os
import tempfile

import numpy as np
import torch

import bench_direct
from tests import tiny
from tests.fake_io import make_io
from tests.test_skyreels_random import configs_only


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
        self.assertEqual(got["peak_mem_mib"], 0)  # the CPU
        self.assertTrue(0 < got["decode_seconds"] < got["seconds_per_window"])
        self.assertAlmostEqual(got["denoise_seconds_per_step"] * 4 + got["decode_seconds"], got["seconds_per_window"],
                               delta=got["seconds_per_window"] / 2)  # medians of two runs: near, not equal

    def test_params_init_random_from_configs(self):
        with tempfile.TemporaryDirectory() as tmp:
            configs = configs_only(tiny.TINY, os.path.join(tmp, "tiny-configs"))
            out = io.StringIO()
            with contextlib.redirect_stdout(out):
                bench_direct.main(["--model", configs, "--n", "1", "--warmup", "0", "--frames", "5",
                                   "--params", "init=random;dtype=float32", "--deterministic"])
            got = json.loads(out.getvalue())
            self.assertTrue(got["model"].startswith("tiny-configs random weights cfg "), got["model"])
            self.assertTrue(got["model"].endswith(" float32"))
            self.assertTrue(got["deterministic"])
            self.assertEqual(len(got["runs"]), 1)
            with self.assertRaisesRegex(FileNotFoundError, "configurations only"):
                bench_direct.main(["--model", configs, "--n", "1", "--warmup", "0", "--frames", "5"])

    def test_parse_params(self):
        self.assertEqual(bench_direct.parse_params("init=random; dtype=bfloat16;"),
                         {"init": "random", "dtype": "bfloat16"})
        self.assertEqual(bench_direct.parse_params(""), {})
        with self.assertRaisesRegex(ValueError, "is not k=v"):
            bench_direct.parse_params("init")
