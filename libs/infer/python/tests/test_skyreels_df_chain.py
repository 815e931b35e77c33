"""skyreels_df.py's hand-off between segments and its decode, against
diffusers' own code on the tiny SkyReels-V2 pipeline (tests/tiny.py).

The chain test pins down how a spool chain relates to the pipeline's own
long-video mode (num_frames > base_num_frames, overlap_history,
addnoise_condition): on the same noise its latents are the same, bit for
bit, and its frames differ only where spool decodes each window on its own."""

import threading
from unittest import mock

import numpy as np
import torch

import skyreels_df as df
from tests import tiny
from tests.fake_io import make_io

SEEDS = (11, 12)


def run(engine, **kw):
    io = make_io()
    engine.generate_segment(tiny.request(**kw), io)
    return io


def whole_decode(vae, latents):
    """diffusers' AutoencoderKLWan.decode of a whole window, as the pipeline
    de-normalises and post-processes it: uint8 frames [F, H, W, 3]."""
    with torch.no_grad():
        std = 1.0 / torch.tensor(vae.config.latents_std).view(1, vae.config.z_dim, 1, 1, 1)
        mean = torch.tensor(vae.config.latents_mean).view(1, vae.config.z_dim, 1, 1, 1)
        video = vae.decode(latents.to(vae.dtype) / std + mean, return_dict=False)[0]
    video = (video * 0.5 + 0.5).clamp(0, 1)[0].permute(1, 2, 3, 0).float().numpy()
    return (video * 255).round().astype(np.uint8)


class ChainTest(tiny.TinyTestCase):
    def capture(self):
        """Patches the engine's denoise to keep each window's latents."""
        got, denoise = [], self.engine.denoise
        return got, mock.patch.object(self.engine, "denoise", lambda r, io: got.append(denoise(r, io)) or got[-1])

    def chain(self):
        """Two 17-frame windows, overlapping by 5 frames (2 latent frames)."""
        got, patch = self.capture()
        with patch:
            one = run(self.engine, seed=SEEDS[0])
            two = run(self.engine, seed=SEEDS[1], overlap=5, first_frame=12, cond=one.tail_latents)
        return one, two, got

    def long_video(self):
        """The pipeline's own long-video mode over the same 29 frames (8 latent
        frames: a 5-frame window, then 3 new frames after 2 of history), with
        the arguments skyreels_df passes, on the chain's noise: window k's
        initial noise from a generator seeded SEEDS[k], and its
        addnoise_condition draws from the global generator seeded
        addnoise_seed(SEEDS[k]) (the chain draws them from its segment's seed
        and the engine's generator seeded so)."""
        pipe = self.engine.pipe
        original, windows = pipe.prepare_latents, []

        def prepare_latents(*args, **kwargs):
            k = len(windows)
            windows.append(kwargs.get("long_video_iter"))
            torch.manual_seed(df.addnoise_seed(SEEDS[k]))
            args = list(args)
            args[7] = torch.Generator().manual_seed(SEEDS[k])  # the generator argument
            return original(*args, **kwargs)

        kw = df.pipeline_kwargs(tiny.request(frames=29, overlap=5, cond=np.zeros(1)), None, None)
        kw.update(base_num_frames=17, overlap_history=5, callback_on_step_end=None,
                  callback_on_step_end_tensor_inputs=None)
        self.assertEqual(kw["addnoise_condition"], 20.0)
        with mock.patch.object(pipe, "prepare_latents", prepare_latents):
            latents = pipe(**kw).frames
        self.assertEqual(windows, [0, 1])  # two windows
        return latents

    def test_chain_equals_the_pipelines_long_video_mode(self):
        one, two, (w1, w2) = self.chain()
        ref = self.long_video()
        self.assertEqual(tuple(ref.shape), (1, 16, 8, 8, 16))
        # Window 1 is the long video's first window.
        torch.testing.assert_close(w1, ref[:, :, :5], rtol=0, atol=0)
        # The tail handed over is the long video's history for its second window.
        np.testing.assert_array_equal(one.tail_latents, ref[0, :, 3:5].transpose(0, 1).numpy())
        # Window 2 starts with that history and goes on as the long video does.
        torch.testing.assert_close(w2[:, :, :2], ref[:, :, 3:5], rtol=0, atol=0)
        torch.testing.assert_close(w2[:, :, 2:], ref[:, :, 5:], rtol=0, atol=0)

        # In pixels: the causal VAE makes window 1's frames the long video's first 17.
        vae = self.engine.pipe.vae
        long_frames = whole_decode(vae, ref)
        self.assertEqual(long_frames.shape[0], 29)
        np.testing.assert_array_equal(np.stack(one.frames), long_frames[:17])
        # Window 2 is its own latents decoded on their own: the VAE's causal cache
        # starts again at its first latent frame (a lone first frame, as frame 0
        # of a video), so its 17 frames are not the long video's frames 12..28.
        np.testing.assert_array_equal(np.stack(two.frames), whole_decode(vae, ref[:, :, 3:]))
        diff = np.abs(np.stack(two.frames).astype(int) - long_frames[12:].astype(int)).mean(axis=(1, 2, 3))
        self.assertTrue((diff > 0).all(), diff)

    def test_the_prefix_is_the_tail_after_every_step(self):
        one = run(self.engine, seed=SEEDS[0])
        cond = torch.from_numpy(one.tail_latents).transpose(0, 1)[None]  # [1, C, L, h, w]
        seen, make = [], self.engine.step_callback

        def step_callback(io, steps):
            on_step_end = make(io, steps)

            def spy(pipe, i, t, kwargs):
                seen.append((int(t[0]), kwargs["latents"][:, :, :2].clone(), kwargs["latents"][:, :, 2:].clone()))
                return on_step_end(pipe, i, t, kwargs)

            return spy

        with mock.patch.object(self.engine, "step_callback", step_callback):
            run(self.engine, seed=SEEDS[1], overlap=5, first_frame=12, cond=one.tail_latents)
        self.assertEqual(len(seen), tiny.STEPS)
        for t, prefix, _ in seen:
            self.assertEqual(t, 0)  # pre-ready in the timestep matrix
            torch.testing.assert_close(prefix, cond, rtol=0, atol=0)
        self.assertFalse(torch.equal(seen[0][2], seen[-1][2]))  # the rest was denoised

    def test_chunked_decode_is_the_pipelines_whole_decode(self):
        io = run(self.engine, seed=SEEDS[0])
        kw = df.pipeline_kwargs(tiny.request(seed=SEEDS[0]), torch.Generator().manual_seed(SEEDS[0]), None)
        kw.update(output_type="np", callback_on_step_end_tensor_inputs=None)
        video = self.engine.pipe(**kw).frames[0]  # the pipeline's own decode of the whole window
        np.testing.assert_array_equal(np.stack(io.frames), (video * 255).round().astype(np.uint8))

    def test_chunked_decode_is_a_whole_decode_byte_for_byte(self):
        latents = torch.randn((1, 16, 9, 8, 16), generator=torch.Generator().manual_seed(3))
        vae = self.engine.pipe.vae
        chunked = np.stack(list(df.decode_frames(vae, latents, tiny.HEIGHT, tiny.WIDTH)))
        self.assertEqual(chunked.shape, (33, tiny.HEIGHT, tiny.WIDTH, 3))
        np.testing.assert_array_equal(chunked, whole_decode(vae, latents))

    def test_frames_stream_as_they_are_decoded(self):
        """io.frame sees the first frame before the last latent frame is decoded."""
        calls, decoder = [], self.engine.pipe.vae.decoder
        io = make_io()
        frame = io.frame
        io.frame = lambda i, rgb: (calls.append("frame"), frame(i, rgb))
        hook = decoder.register_forward_hook(lambda *a: calls.append("decode"))
        try:
            self.engine.generate_segment(tiny.request(), io)
        finally:
            hook.remove()
        self.assertEqual(calls[:3], ["decode", "frame", "decode"])
        self.assertEqual(calls.count("decode"), 5)
        self.assertEqual(calls.count("frame"), 17)


class EnginesTest(tiny.TinyTestCase):
    def test_two_engines_at_once_make_what_each_makes_alone(self):
        """Each engine draws addnoise_condition's noise from its own generator:
        two CPU engines of one process running at once (sharing torch's global
        generator) make the bytes each makes alone."""
        engines = [self.engine, df.open(tiny.options())]

        def chain(engine, seed):
            one = run(engine, seed=seed, tail_frames=5)
            out = [one]
            for k in range(3):
                out.append(run(engine, seed=seed + k + 1, overlap=5, first_frame=12, cond=out[-1].tail_latents))
            return [np.stack(io.frames) for io in out]

        alone = [chain(e, 100 * i) for i, e in enumerate(engines)]
        together = [None, None]

        def work(i):
            together[i] = chain(engines[i], 100 * i)

        threads = [threading.Thread(target=work, args=(i,)) for i in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for a, b in zip(alone, together):
            for x, y in zip(a, b):
                np.testing.assert_array_equal(x, y)
