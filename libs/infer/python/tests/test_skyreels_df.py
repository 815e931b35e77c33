"""The SkyReels module's argument mapping and latent hand-off, with a fake
pipeline: torch, diffusers and the weights are not needed."""

import unittest

import numpy as np

import skyreels_df as df
from tests.fake_io import make_io


class FakeTensor(np.ndarray):
    """numpy standing in for a torch tensor: .to() is the identity."""

    def to(self, *args, **kwargs):
        return self


def fake_tensor(a):
    return np.asarray(a, dtype=np.float32).view(FakeTensor)


class FakePipe:
    """Records its arguments and runs the step callback like the pipeline."""

    def __init__(self):
        self.kwargs = None
        self._interrupt = False

    def __call__(self, **kwargs):
        self.kwargs = kwargs
        c, f = df.LATENT_CHANNELS, df.latent_frames(kwargs["num_frames"])
        h, w = kwargs["height"] // df.LATENT_SCALE, kwargs["width"] // df.LATENT_SCALE
        latents = fake_tensor(np.random.default_rng(0).standard_normal((c, f, h, w)))
        for i in range(kwargs["num_inference_steps"]):
            if self._interrupt:
                break
            latents = kwargs["callback_on_step_end"](self, i, 1000 - i, {"latents": latents})["latents"]
        return latents


def request(**kw):
    r = dict(prompt="a ship at sea", seed=5, width=960, height=544, frames=97, overlap=0, steps=3, guidance=6.0,
             first_frame=0, tail_frames=17, cond=None, model="skyreels", weights_dir="", device=0)
    r.update(kw)
    return r


class SkyReelsMappingTest(unittest.TestCase):
    def test_pipeline_kwargs(self):
        cb = object()
        kw = df.pipeline_kwargs(request(), "gen", cb)
        self.assertEqual(kw["num_frames"], 97)
        self.assertEqual(kw["base_num_frames"], 97)  # one window per segment
        self.assertIsNone(kw["overlap_history"])
        self.assertEqual((kw["height"], kw["width"]), (544, 960))
        self.assertEqual(kw["num_inference_steps"], 3)
        self.assertEqual(kw["guidance_scale"], 6.0)
        self.assertEqual(kw["output_type"], "latent")
        self.assertIs(kw["callback_on_step_end"], cb)
        self.assertEqual(kw["callback_on_step_end_tensor_inputs"], ["latents"])
        self.assertEqual(kw["generator"], "gen")

    def test_info_matches_the_wan_vae(self):
        i = df.info()
        self.assertEqual((i["latent_channels"], i["latent_scale"], i["temporal_scale"], i["frame_align"]), (16, 8, 4, 4))
        self.assertEqual(df.latent_frames(97), 25)
        self.assertEqual(df.latent_frames(17), 5)

    def test_prefix_is_kept_clean_and_progress_reported(self):
        io = make_io()
        cond = np.full((5, 16, 68, 120), 0.25, dtype=np.float32)  # 17 frames = 5 latent frames
        pipe = FakePipe()
        cb = df.prefix_callback(io, cond, 3, fake_tensor)
        latents = pipe(**df.pipeline_kwargs(request(overlap=17, cond=cond), None, cb))
        np.testing.assert_array_equal(np.asarray(latents[:, :5]), cond.transpose(1, 0, 2, 3))
        self.assertEqual(io.steps, [(1, 3), (2, 3), (3, 3)])
        tail = df.tail_latents(np.asarray(latents), 17)
        self.assertEqual(tail.shape, (5, 16, 68, 120))
        np.testing.assert_array_equal(tail, np.asarray(latents)[:, -5:].transpose(1, 0, 2, 3))

    def test_cancel_interrupts_the_pipeline(self):
        io = make_io()
        io.cancel = True
        pipe = FakePipe()
        pipe(**df.pipeline_kwargs(request(steps=10), None, df.prefix_callback(io, None, 10, fake_tensor)))
        self.assertEqual(len(io.steps), 1)
        self.assertTrue(pipe._interrupt)


if __name__ == "__main__":
    unittest.main()
