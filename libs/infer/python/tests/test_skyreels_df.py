"""skyreels_df.py on the tiny SkyReels-V2 pipeline: diffusers' own classes
with random weights (tests/tiny.py), run on the CPU as a GPU node runs the
real one. The window, its order of calls, what is refused, cancellation and
what a failed segment leaves behind."""

import gc
import os
import tempfile
import threading
import unittest
import warnings
import weakref
from unittest import mock

import numpy as np
import torch

import skyreels_df as df
from tests import tiny
from tests.fake_io import make_io


def run(engine, **kw):
    io = make_io()
    engine.generate_segment(tiny.request(**kw), io)
    return io


def live_tensors():
    gc.collect()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # isinstance on torch's deprecated module attributes
        return sum(1 for o in gc.get_objects() if isinstance(o, torch.Tensor))


class Abort(BaseException):
    """What the plugin's io raises once a run is cancelled or aborted."""


class WindowTest(tiny.TinyTestCase):
    def test_one_window(self):
        io = run(self.engine)
        self.assertEqual(io.steps, [(1, 4), (2, 4), (3, 4), (4, 4)])
        self.assertEqual(len(io.frames), tiny.WINDOW)
        for f in io.frames:
            self.assertEqual((f.dtype, f.shape), (np.uint8, (tiny.HEIGHT, tiny.WIDTH, 3)))
        self.assertGreater(np.std([f.astype(float).mean() for f in io.frames] + [io.frames[0].std()]), 0)
        tail = io.tail_latents
        self.assertEqual(tail.shape, (df.latent_frames(tiny.OVERLAP), 16, tiny.HEIGHT // 8, tiny.WIDTH // 8))
        self.assertEqual(tail.shape[0], 2)  # 5 frames: 2 latent frames
        self.assertTrue(np.isfinite(tail).all())
        # Denoised, not the window's initial noise (drawn from the seed as the pipeline draws it).
        noise = torch.randn((1, 16, 5, 8, 16), generator=torch.Generator().manual_seed(5))
        initial = noise[0, :, -2:].transpose(0, 1).numpy()
        self.assertGreater(np.abs(tail - initial).mean(), 0.2)
        self.assertTrue(0.2 < tail.std() < 5, tail.std())

    def test_deterministic_for_a_seed(self):
        a, b, c = run(self.engine), run(self.engine), run(self.engine, seed=6)
        np.testing.assert_array_equal(a.tail_latents, b.tail_latents)
        np.testing.assert_array_equal(np.stack(a.frames), np.stack(b.frames))
        self.assertFalse(np.array_equal(a.tail_latents, c.tail_latents))

    def test_no_tail_when_none_is_asked(self):
        io = run(self.engine, tail_frames=0)
        self.assertIsNone(io.tail_latents)
        self.assertEqual(len(io.frames), tiny.WINDOW)

    def test_size_padded_to_16_and_cropped_back(self):
        self.assertEqual((df.padded(540), df.padded(960), df.padded(60)), (544, 960, 64))
        with self.assertRaisesRegex(ValueError, "size 968 is not supported"):
            df.padded(968)  # 121 latent cells; 976 would make 122
        io = run(self.engine, height=60, frames=5, tail_frames=5)
        self.assertEqual(io.frames[0].shape, (60, tiny.WIDTH, 3))
        self.assertEqual(io.tail_latents.shape, (2, 16, 8, 16))  # ceil(60 / 8) = 8 rows, as the plugin sizes it

    def test_fps_reaches_the_model(self):
        seen = []
        hook = self.engine.pipe.transformer.register_forward_pre_hook(
            lambda module, args, kwargs: seen.append(list(kwargs["fps"])), with_kwargs=True)
        try:
            run(self.engine, fps=16, frames=5)
            sixteen, seen[:] = seen[:], []
            run(self.engine, fps=24, frames=5)
            twenty_four, seen[:] = seen[:], []
            request = tiny.request(frames=5)
            del request["fps"]
            self.engine.generate_segment(request, make_io())
            unknown = seen[:]
        finally:
            hook.remove()
        # The pipeline embeds fps as 0 for 16 fps and 1 otherwise (SkyReels-V2's two training rates).
        self.assertEqual(sixteen, [[0]] * 8)  # 4 steps, conditional and unconditional
        self.assertEqual(twenty_four, [[1]] * 8)
        self.assertEqual(unknown, [[1]] * 8)
        self.assertEqual(df.pipeline_kwargs(tiny.request(fps=30), None, None)["fps"], 30)


class MappingTest(unittest.TestCase):
    def test_pipeline_kwargs(self):
        cb = object()
        kw = df.pipeline_kwargs(tiny.request(frames=97, height=540, width=960), "gen", cb)
        self.assertEqual((kw["num_frames"], kw["base_num_frames"]), (97, 97))  # one window per segment
        self.assertIsNone(kw["overlap_history"])
        self.assertEqual(kw["ar_step"], 0)
        self.assertNotIn("causal_block_size", kw)  # synchronous: the model's own
        self.assertEqual(kw["addnoise_condition"], 0)  # nothing to condition on
        self.assertEqual((kw["height"], kw["width"]), (544, 960))
        self.assertEqual((kw["num_inference_steps"], kw["guidance_scale"]), (4, 5.0))
        self.assertEqual((kw["output_type"], kw["generator"], kw["fps"]), ("latent", "gen", 24))
        self.assertIs(kw["callback_on_step_end"], cb)
        cond = np.zeros((5, 16, 68, 120), dtype=np.float32)
        self.assertEqual(df.pipeline_kwargs(tiny.request(overlap=17, cond=cond), None, cb)["addnoise_condition"], 20.0)

    def test_negative_prompt_is_skyreels_own(self):
        self.assertTrue(df.DEFAULT_NEGATIVE_PROMPT.startswith("色调艳丽，过曝，静态，细节模糊不清，字幕"))
        self.assertTrue(df.DEFAULT_NEGATIVE_PROMPT.endswith("三条腿，背景人很多，倒着走"))
        if not os.environ.get("SPOOL_SKYREELS_NEGATIVE_PROMPT"):
            self.assertEqual(df.pipeline_kwargs(tiny.request(), None, None)["negative_prompt"], df.DEFAULT_NEGATIVE_PROMPT)

    def test_a_hub_id_is_refused_offline(self):
        with mock.patch.dict(os.environ, {"HF_HUB_OFFLINE": "1"}):
            with self.assertRaises(RuntimeError) as cm:
                df.weights_source({"weights": "Skywork/SkyReels-V2-DF-1.3B-540P-Diffusers", "weights_dir": ""})
        msg = str(cm.exception)
        for want in ("Skywork/SkyReels-V2-DF-1.3B-540P-Diffusers", "HF_HUB_OFFLINE", "SPOOL_WORKER_MODELS_DIR",
                     "SPOOL_WORKER_WEIGHTS_DIR"):
            self.assertIn(want, msg)
        with mock.patch.dict(os.environ, {"HF_HUB_OFFLINE": "0"}):
            self.assertEqual(df.weights_source({"weights": "Skywork/x", "weights_dir": ""}), "Skywork/x")

    def test_weights_dir_wins_and_must_be_a_model(self):
        with tempfile.TemporaryDirectory() as d:
            with open(os.path.join(d, "model_index.json"), "w") as f:
                f.write("{}")
            os.mkdir(os.path.join(d, "transformer"))
            open(os.path.join(d, "transformer", "diffusion_pytorch_model.safetensors"), "w").close()
            self.assertEqual(df.weights_source({"weights": "Skywork/x", "weights_dir": d}), d)
            self.assertEqual(df.weights_source({"weights": d, "weights_dir": ""}), d)  # a folder as the weights
        with self.assertRaisesRegex(FileNotFoundError, "no model_index.json"):
            df.weights_source({"weights": "Skywork/x", "weights_dir": os.path.dirname(__file__)})
        with self.assertRaisesRegex(ValueError, "no weights"):
            df.weights_source({"weights_dir": ""})


class ModelVersionTest(tiny.TinyTestCase):
    def test_reports_what_was_loaded(self):
        import diffusers

        v = self.engine.info()["model_version"]
        self.assertTrue(v.startswith("skyreels-v2-df-tiny cfg "), v)
        self.assertIn("diffusers %s float32" % diffusers.__version__, v)
        self.assertLess(len(v), 128)  # the plugin keeps 127 bytes
        other = df.open(tiny.options(shift="5"))
        self.assertNotEqual(other.info()["model_version"], v)  # another scheduler configuration
        other.close()
        self.assertEqual(df.open(tiny.options()).info()["model_version"], v)

    def test_info_is_the_wan_vae(self):
        i = self.engine.info()
        self.assertEqual((i["latent_channels"], i["latent_scale"], i["frame_align"], i["temporal_scale"]), (16, 8, 4, 4))


class RefusedTest(tiny.TinyTestCase):
    def test_a_window_over_max_window(self):
        with self.assertRaisesRegex(ValueError, "a window of 37 frames is longer than skyreels-v2-df-tiny's window of 33 frames"):
            run(self.engine, frames=37)
        run(self.engine, frames=33, tail_frames=0)  # the trained window itself runs

    def test_frames_not_4k_plus_1(self):
        with self.assertRaisesRegex(ValueError, "frames=16: the Wan VAE needs 4k\\+1 frames"):
            run(self.engine, frames=16)

    def test_audio_and_reference_frames_are_refused(self):
        # Not audio-driven, no talking head: never run as if they were not there.
        audio = np.zeros(11334, dtype=np.float32)  # 17 frames at 24 fps, 16 kHz
        reference = np.zeros((17, tiny.HEIGHT, tiny.WIDTH, 3), dtype=np.uint8)
        for kw, named in [(dict(audio=audio, audio_rate=16000), "carries audio,"),
                          (dict(reference_frames=reference), "carries reference_frames,"),
                          (dict(audio=audio, audio_rate=16000, reference_frames=reference),
                           "carries audio and reference_frames, but skyreels-v2-df-tiny .* is not audio-driven")]:
            io = make_io()
            with self.assertRaisesRegex(ValueError, named):
                self.engine.generate_segment(tiny.request(**kw), io)
            self.assertEqual((io.steps, io.frames, io.tail_latents), ([], [], None), "work done before refusing")
        run(self.engine, audio=None, audio_rate=0, reference_frames=None)  # none given: runs


class CausalBlockTest(tiny.TinyTestCase):
    """A transformer of causal blocks of 2 latent frames."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        if cls.engine:
            cls.engine.pipe.transformer._set_ar_attention(2)

    def cond(self, latent):
        return np.random.default_rng(1).standard_normal((latent, 16, 8, 16)).astype(np.float32)

    def test_a_prefix_shorter_than_a_block_is_refused(self):
        with self.assertRaisesRegex(ValueError, "an overlap of 1 frames is 1 latent frames, shorter than one causal block "
                                                "of 2 .* at least 5 frames"):
            run(self.engine, frames=13, overlap=1, first_frame=12, cond=self.cond(1))

    def test_a_window_of_part_blocks_is_refused(self):
        with self.assertRaisesRegex(ValueError, "17 frames is 5 latent frames, not whole causal blocks of 2"):
            run(self.engine, frames=17)

    def test_a_prefix_is_cut_to_whole_blocks(self):
        cond, got = self.cond(3), []
        denoise = self.engine.denoise
        with mock.patch.object(self.engine, "denoise", lambda r, io: got.append(denoise(r, io)) or got[-1]):
            run(self.engine, frames=13, overlap=9, first_frame=4, cond=cond)
        window = got[0][0].transpose(0, 1).numpy()  # [F, C, h, w]
        np.testing.assert_array_equal(window[:2], cond[:2])  # as the pipeline cuts its own history
        self.assertGreater(np.abs(window[2] - cond[2]).mean(), 0.1)  # generated again


class CancelTest(tiny.TinyTestCase):
    def test_cancel_interrupts_the_pipeline(self):
        io = make_io()
        io.cancel = True
        with self.assertRaises(df.Cancelled):
            self.engine.generate_segment(tiny.request(steps=10), io)
        self.assertEqual(io.steps, [(1, 10)])
        self.assertIsNone(io.tail_latents)
        self.assertEqual(io.frames, [])

    def test_progress_raising_stops_the_run(self):
        io = make_io()
        io.progress = lambda step, steps: (_ for _ in ()).throw(Abort()) if step == 2 else None
        with self.assertRaises(Abort):
            self.engine.generate_segment(tiny.request(), io)
        self.assertIsNone(io.tail_latents)
        self.assertEqual(io.frames, [])
        self.assertNotIn("prepare_latents", vars(self.engine.pipe))
        np.testing.assert_array_equal(np.stack(run(self.engine).frames), np.stack(run(self.engine).frames))


class ReleaseTest(tiny.TinyTestCase):
    """A failed segment frees what it held, before it returns."""

    def fail_run(self, io, exc_type, **kw):
        """Runs a segment that fails; returns a weak reference to its window's
        latents and the exception, traceback and all, as the plugin holds it
        while it formats it."""
        got = []
        denoise = self.engine.denoise

        def spy(r, io):
            latents = denoise(r, io)
            got.append(weakref.ref(latents))
            return latents

        with mock.patch.object(self.engine, "denoise", spy):
            try:
                self.engine.generate_segment(tiny.request(**kw), io)
            except exc_type as e:
                exc = e
            else:
                self.fail("the segment did not fail")
        self.assertIsNotNone(exc.__traceback__)
        return got, exc

    def test_a_failed_frame_frees_the_window(self):
        run(self.engine, cond=None)  # lazily made state, once
        before = live_tensors()
        io = make_io()
        real = io.frame
        io.frame = lambda i, rgb: real(i, rgb) if i < 3 else (_ for _ in ()).throw(ValueError("encoder gone"))
        got, exc = self.fail_run(io, ValueError)
        self.assertTrue(got[0]() is None, "the window's latents outlived the failed segment")
        self.assertEqual(live_tensors(), before)
        del exc

    def test_a_run_aborted_mid_pipeline_frees_its_tensors(self):
        cond = run(self.engine).tail_latents
        run(self.engine, overlap=5, first_frame=12, cond=cond)
        before = live_tensors()
        io = make_io()
        io.progress = lambda step, steps: (_ for _ in ()).throw(Abort()) if step == 3 else None
        _, exc = self.fail_run(io, Abort, overlap=5, first_frame=12, cond=cond)
        # The traceback still references the pipeline's frames; their tensors are gone.
        self.assertEqual(live_tensors(), before)
        del exc


class DeterministicParamTest(unittest.TestCase):
    def setUp(self):
        why = tiny.missing()
        if why:
            self.fail(why)
        self.threads = torch.get_num_threads()

    def tearDown(self):
        torch.use_deterministic_algorithms(False)
        torch.set_num_threads(self.threads)

    def test_deterministic_sets_torch(self):
        e = df.open(tiny.options(deterministic="1"))
        self.assertTrue(torch.are_deterministic_algorithms_enabled())
        self.assertEqual(torch.get_num_threads(), 1)
        self.assertTrue(e.deterministic)
        a, b = run(e), run(e)
        np.testing.assert_array_equal(np.stack(a.frames), np.stack(b.frames))
        df.open(tiny.options(deterministic="1", threads="2"))
        self.assertEqual(torch.get_num_threads(), 2)


class LoadTest(unittest.TestCase):
    def setUp(self):
        why = tiny.missing()
        if why:
            self.fail(why)

    def test_engines_opened_at_once_load_alike(self):
        alone = df.open(tiny.options())
        want = {k: v.clone() for k, v in alone.pipe.transformer.state_dict().items()}
        dtype, init = torch.get_default_dtype(), torch.nn.init.normal_
        engines, errors = [None] * 4, []

        def open_one(i):
            try:
                engines[i] = df.open(tiny.options())
            except Exception as e:  # reported below
                errors.append(e)

        threads = [threading.Thread(target=open_one, args=(i,)) for i in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual(errors, [])
        for e in engines:
            self.assertIsNot(e.pipe, alone.pipe)  # an engine's own pipeline
            for k, v in e.pipe.transformer.state_dict().items():
                torch.testing.assert_close(v, want[k], rtol=0, atol=0)
        self.assertEqual((torch.get_default_dtype(), torch.nn.init.normal_), (dtype, init))

    def test_open_on_a_missing_folder_fails_clearly(self):
        with self.assertRaisesRegex(FileNotFoundError, "not a diffusers model folder"):
            df.open(tiny.options(weights_dir="/nonexistent/skyreels"))


if __name__ == "__main__":
    unittest.main()
