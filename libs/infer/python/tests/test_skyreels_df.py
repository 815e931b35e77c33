"""The SkyReels module's argument mapping, latent hand-off and segment flow,
with a fake pipeline: torch, diffusers and the weights are not needed.

FakePipe follows diffusers' SkyReelsV2DiffusionForcingPipeline.__call__
(v0.35+) in its single-window, synchronous branch: latents [B, C, F, h, w];
prepare_latents returns (latents, frames, prefix, prefix_frames); the prefix
is written at the window's start and marked pre-ready, so the scheduler never
updates it; the step-end callback gets (pipe, i, t, kwargs); an interrupt
skips the remaining steps; output_type="latent" returns the latents."""

import types
import unittest

import numpy as np

import skyreels_df as df
from tests.fake_io import make_io


class FakeTensor(np.ndarray):
    """numpy standing in for a torch tensor: .to() is the identity."""

    device = "fake"

    def to(self, *args, **kwargs):
        return self


def fake_tensor(a):
    return np.asarray(a, dtype=np.float32).view(FakeTensor)


class FakePipe:
    def __init__(self, frame_per_block=1):
        self.kwargs = None
        self.calls = 0
        self._interrupt = False
        self.transformer = types.SimpleNamespace(config=types.SimpleNamespace(num_frame_per_block=frame_per_block))
        self.pre_ready = None
        self.model_saw = []  # (step, prefix timestep, prefix latents) as the model saw them

    def prepare_latents(self, batch, channels, height, width, num_frames, dtype, device, generator, latents=None,
                        base_latent_num_frames=None, video_latents=None, causal_block_size=None,
                        overlap_history_latent_frames=None, long_video_iter=None):
        n = df.latent_frames(num_frames)
        rng = np.random.default_rng(generator)
        latents = fake_tensor(rng.standard_normal((batch, channels, n, height // 8, width // 8)))
        return latents, n, None, 0

    def __call__(self, prompt, negative_prompt, height, width, num_frames, num_inference_steps, guidance_scale,
                 generator, output_type, callback_on_step_end, callback_on_step_end_tensor_inputs, overlap_history,
                 addnoise_condition, base_num_frames, ar_step, fps, causal_block_size=None):
        self.kwargs = dict(locals())
        del self.kwargs["self"]
        self.calls += 1
        assert num_frames <= base_num_frames and ar_step == 0 and output_type == "latent"
        self._interrupt = False
        latents, n, prefix, pre = self.prepare_latents(
            1, 16, height, width, num_frames, "f32", "dev", generator, None, video_latents=None,
            base_latent_num_frames=None, causal_block_size=self.transformer.config.num_frame_per_block,
            overlap_history_latent_frames=None, long_video_iter=None)
        if pre:
            latents[:, :, :pre] = prefix
        self.pre_ready = pre
        timesteps = np.linspace(1000, 0, num_inference_steps, endpoint=False)
        for i, t in enumerate(timesteps):
            if self._interrupt:
                continue
            step_t = np.full(n, t)
            step_t[:pre] = addnoise_condition if addnoise_condition > 0 else 0  # pre-ready frames
            self.model_saw.append((i, step_t[:pre].copy(), np.array(latents[:, :, :pre])))
            update = np.arange(n) >= pre  # the update mask: pre-ready frames never change
            latents[:, :, update] *= 0.5
            callback_on_step_end(self, i, step_t, {})
        return types.SimpleNamespace(frames=latents)


class NumpyOps:
    """run_segment's tensor operations on numpy."""

    def to_tensor(self, a):
        return fake_tensor(a)

    def to_numpy(self, t):
        return np.array(t, dtype=np.float32)

    def seed(self, seed):
        return seed

    def decode(self, pipe, latents, frames, height, width):
        for f in range(frames):
            lf = 0 if f == 0 else (f - 1) // df.TEMPORAL_SCALE + 1  # the causal VAE's frame → latent map
            v = np.asarray(latents[:3, lf]).repeat(8, 1).repeat(8, 2)
            yield np.ascontiguousarray((np.tanh(v) * 127 + 128).astype(np.uint8).transpose(1, 2, 0)[:height, :width])


def request(**kw):
    r = dict(prompt="a ship at sea", seed=5, width=160, height=96, frames=33, overlap=0, steps=3, guidance=6.0,
             first_frame=0, tail_frames=17, cond=None, model="skyreels", weights_dir="", device=0)
    r.update(kw)
    return r


class SkyReelsMappingTest(unittest.TestCase):
    def test_pipeline_kwargs(self):
        cb = object()
        kw = df.pipeline_kwargs(request(frames=97), "gen", cb)
        self.assertEqual(kw["num_frames"], 97)
        self.assertEqual(kw["base_num_frames"], 97)  # one window per segment
        self.assertIsNone(kw["overlap_history"])
        self.assertEqual(kw["ar_step"], 0)
        self.assertNotIn("causal_block_size", kw)  # synchronous: the model's own
        self.assertEqual(kw["addnoise_condition"], 0)  # nothing to condition on
        self.assertEqual((kw["height"], kw["width"]), (96, 160))
        self.assertEqual(kw["num_inference_steps"], 3)
        self.assertEqual(kw["guidance_scale"], 6.0)
        self.assertEqual(kw["output_type"], "latent")
        self.assertIs(kw["callback_on_step_end"], cb)
        self.assertEqual(kw["generator"], "gen")
        cond = np.zeros((5, 16, 12, 20), dtype=np.float32)
        self.assertEqual(df.pipeline_kwargs(request(overlap=17, cond=cond), None, cb)["addnoise_condition"], 20.0)

    def test_540p_is_padded_to_544_and_cropped_back(self):
        self.assertEqual(df.padded(540), 544)
        self.assertEqual(df.padded(960), 960)
        with self.assertRaisesRegex(ValueError, "size 968 is not supported"):
            df.padded(968)  # 121 latent cells, 976 would make 122
        io, pipe = make_io(), FakePipe()
        df.run_segment(pipe, request(height=540, width=960, frames=9, tail_frames=5), io, NumpyOps())
        self.assertEqual((pipe.kwargs["height"], pipe.kwargs["width"]), (544, 960))
        self.assertEqual(io.frames[0].shape, (540, 960, 3))
        self.assertEqual(io.tail_latents.shape, (2, 16, 68, 120))  # what the plugin wants for 540 rows

    def test_info_matches_the_wan_vae(self):
        i = df.info({})
        self.assertEqual((i["latent_channels"], i["latent_scale"], i["temporal_scale"], i["frame_align"]), (16, 8, 4, 4))
        self.assertEqual(df.latent_frames(97), 25)
        self.assertEqual(df.latent_frames(17), 5)

    def test_the_catalog_params_choose_weights_and_shift(self):
        params = {"weights": "Skywork/SkyReels-V2-DF-14B-720P-Diffusers", "shift": "5"}
        self.assertEqual(df.info(params)["model_version"], "skyreels-v2-df (Skywork/SkyReels-V2-DF-14B-720P-Diffusers, shift 5)")
        self.assertEqual(df.source(params, "/weights/14b"), "/weights/14b")  # a local snapshot wins
        self.assertEqual((df.source({}), df.flow_shift({})), (df.MODEL_ID, df.FLOW_SHIFT))

    def test_segment_order_and_shapes(self):
        io, pipe = make_io(), FakePipe()
        df.run_segment(pipe, request(), io, NumpyOps())
        self.assertEqual(io.steps, [(1, 3), (2, 3), (3, 3)])
        self.assertEqual(io.tail_latents.shape, (5, 16, 12, 20))  # 17 frames = 5 latent frames
        self.assertEqual(len(io.frames), 33)
        self.assertEqual(io.frames[0].shape, (96, 160, 3))
        self.assertEqual(pipe.pre_ready, 0)
        self.assertEqual(pipe.kwargs["callback_on_step_end_tensor_inputs"], [])

    def test_chain_conditions_on_the_tail(self):
        one = make_io()
        df.run_segment(FakePipe(), request(), one, NumpyOps())
        two, pipe = make_io(), FakePipe()
        df.run_segment(pipe, request(seed=6, overlap=17, first_frame=16, cond=one.tail_latents), two, NumpyOps())
        self.assertEqual(pipe.pre_ready, 5)
        self.assertEqual(pipe.kwargs["addnoise_condition"], 20.0)
        # The model saw the tail, clean, at the conditioning timestep, every step.
        self.assertEqual(len(pipe.model_saw), 3)
        for _, t, seen in pipe.model_saw:
            np.testing.assert_array_equal(t, [20.0] * 5)
            np.testing.assert_array_equal(seen[0], one.tail_latents.transpose(1, 0, 2, 3))
        # The hook is gone after the call.
        self.assertNotIn("prepare_latents", vars(pipe))

    def test_prefix_is_cut_to_whole_causal_blocks(self):
        io, pipe = make_io(), FakePipe(frame_per_block=2)
        cond = np.ones((5, 16, 12, 20), dtype=np.float32)
        df.run_segment(pipe, request(overlap=17, cond=cond), io, NumpyOps())
        self.assertEqual(pipe.pre_ready, 4)

    def test_hook_is_removed_when_the_pipeline_raises(self):
        pipe = FakePipe()

        def boom(**kw):
            raise RuntimeError("out of memory")

        with self.assertRaises(RuntimeError):
            with df.conditioned_on(pipe, fake_tensor(np.zeros((1, 16, 5, 12, 20)))):
                boom()
        self.assertNotIn("prepare_latents", vars(pipe))

    def test_old_diffusers_is_refused_clearly(self):
        pipe = FakePipe()
        pipe.prepare_latents = lambda *a, **k: fake_tensor(np.zeros((1, 16, 9, 12, 20)))
        with self.assertRaisesRegex(RuntimeError, "diffusers >= 0.35"):
            df.run_segment(pipe, request(overlap=17, cond=np.zeros((5, 16, 12, 20), dtype=np.float32)), make_io(),
                           NumpyOps())

    def test_cancel_interrupts_the_pipeline(self):
        io, pipe = make_io(), FakePipe()
        io.cancel = True
        with self.assertRaises(df.Cancelled):
            df.run_segment(pipe, request(steps=10), io, NumpyOps())
        self.assertEqual(len(io.steps), 1)
        self.assertTrue(pipe._interrupt)
        self.assertIsNone(io.tail_latents)
        self.assertEqual(io.frames, [])


if __name__ == "__main__":
    unittest.main()
