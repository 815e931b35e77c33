import unittest

import numpy as np

import spool_numpy_ref as model
from tests.fake_io import make_io


def request(**kw):
    r = dict(prompt="a fox in snow", seed=3, width=64, height=48, frames=9, overlap=0, steps=4, guidance=5.0,
             first_frame=0, tail_frames=3, cond=None, model="numpy", weights_dir="", device=-1)
    r.update(kw)
    return r


class NumpyRefTest(unittest.TestCase):
    def run_segment(self, **kw):
        io = make_io()
        model.generate_segment(request(**kw), io)
        return io

    def test_order_and_shapes(self):
        io = self.run_segment()
        self.assertEqual(io.steps, [(1, 4), (2, 4), (3, 4), (4, 4)])
        self.assertEqual(io.tail_latents.shape, (3, 4, 6, 8))
        self.assertEqual(len(io.frames), 9)
        self.assertEqual(io.frames[0].shape, (48, 64, 3))

    def test_deterministic(self):
        a, b = self.run_segment(), self.run_segment()
        for fa, fb in zip(a.frames, b.frames):
            np.testing.assert_array_equal(fa, fb)

    def test_chain_is_seamless(self):
        one = self.run_segment()
        two = self.run_segment(seed=4, overlap=3, first_frame=6, cond=one.tail_latents)
        for i in range(3):
            np.testing.assert_array_equal(two.frames[i], one.frames[6 + i])

    def test_prefix_frames_come_back(self):
        one = self.run_segment()
        prefix = np.stack(one.frames[6:])
        for first in (-3, 0):
            two = self.run_segment(seed=4, overlap=3, first_frame=first, prefix_frames=prefix)
            self.assertEqual(len(two.frames), 9)
            for i in range(3):
                self.assertLessEqual(np.abs(two.frames[i].astype(int) - prefix[i].astype(int)).max(), 1)

    def test_audio_and_reference_frames_are_refused(self):
        for kw in (dict(audio=np.zeros(6000, dtype=np.float32), audio_rate=16000),
                   dict(reference_frames=np.zeros((9, 48, 64, 3), dtype=np.uint8))):
            with self.assertRaisesRegex(ValueError, "spool_numpy_ref: the request carries (audio|reference_frames)"):
                self.run_segment(**kw)

    def test_prompts_differ(self):
        a, b = self.run_segment(), self.run_segment(prompt="a whale under ice")
        self.assertGreater(np.abs(a.frames[4].astype(int) - b.frames[4].astype(int)).mean(), 5)


if __name__ == "__main__":
    unittest.main()
