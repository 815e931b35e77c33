"""skyreels_df.py's segments that start from media (request["prefix_frames"]):
image to video (1 frame) and an extension of a video (its last frames), on
the tiny SkyReels-V2 pipeline (tests/tiny.py). The encoding is diffusers'
own image-to-video and video-to-video pipelines', number for number; the
encoded latents are held through every step as a tail's are; the window is
whole and deterministic."""

from unittest import mock

import numpy as np
import PIL.Image
import torch
from diffusers import (
    SkyReelsV2DiffusionForcingImageToVideoPipeline,
    SkyReelsV2DiffusionForcingVideoToVideoPipeline,
)

import skyreels_df as df
from tests import tiny
from tests.fake_io import make_io


def media(n, height=tiny.HEIGHT, width=tiny.WIDTH, seed=0):
    """n smooth RGB frames, uint8 [n, height, width, 3], drifting a little."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    base = rng.uniform(0.2, 0.8, size=3)
    frames = []
    for f in range(n):
        r = base[0] + 0.3 * np.sin(xx / 19.0 + 0.2 * f)
        g = base[1] + 0.3 * np.cos(yy / 13.0 - 0.1 * f)
        b = base[2] + 0.2 * np.sin((xx + yy) / 23.0)
        frames.append(np.stack([r, g, b], axis=-1))
    return np.clip(np.rint(np.stack(frames) * 255), 0, 255).astype(np.uint8)


def extension(n, **kw):
    """A request that extends a video from its last n frames."""
    return tiny.request(overlap=n, first_frame=-n, prefix_frames=media(n), **kw)


class EncodingTest(tiny.TinyTestCase):
    def pipeline(self, cls):
        """diffusers' pipeline of class cls on the engine's own parts."""
        return cls(**{k: v for k, v in self.engine.pipe.components.items()})

    def test_an_image_is_encoded_as_the_image_to_video_pipeline_does(self):
        frame = media(1)
        i2v = self.pipeline(SkyReelsV2DiffusionForcingImageToVideoPipeline)
        image = i2v.video_processor.preprocess(PIL.Image.fromarray(frame[0]), height=tiny.HEIGHT, width=tiny.WIDTH)
        _, _, want, n = i2v.prepare_latents(
            image.to(torch.float32), 1, 16, tiny.HEIGHT, tiny.WIDTH, tiny.WINDOW, torch.float32, torch.device("cpu"),
            torch.Generator().manual_seed(0), causal_block_size=1)
        got = df.encode_prefix(self.engine.pipe, frame, torch.device("cpu"))
        self.assertEqual((n, tuple(got.shape)), (1, (1, 16, 1, tiny.HEIGHT // 8, tiny.WIDTH // 8)))
        torch.testing.assert_close(got, want, rtol=0, atol=0)

    def test_a_video_is_encoded_as_the_video_to_video_pipeline_does(self):
        frames = media(5)
        v2v = self.pipeline(SkyReelsV2DiffusionForcingVideoToVideoPipeline)
        video = v2v.video_processor.preprocess_video([PIL.Image.fromarray(f) for f in frames], height=tiny.HEIGHT,
                                                     width=tiny.WIDTH).to(torch.float32)
        _, _, want, n = v2v.prepare_latents(
            video, 1, 16, tiny.HEIGHT, tiny.WIDTH, tiny.WINDOW, torch.float32, torch.device("cpu"),
            torch.Generator().manual_seed(0), base_latent_num_frames=df.latent_frames(tiny.WINDOW), overlap_history=5,
            causal_block_size=1, overlap_history_latent_frames=df.latent_frames(5), long_video_iter=0)
        got = df.encode_prefix(self.engine.pipe, frames, torch.device("cpu"))
        self.assertEqual((n, tuple(got.shape)), (2, (1, 16, 2, tiny.HEIGHT // 8, tiny.WIDTH // 8)))
        torch.testing.assert_close(got, want, rtol=0, atol=0)

    def test_frames_of_a_size_the_pipeline_pads(self):
        """60 rows run as 64 (the pipeline's size): the frames are padded by
        their last row, as decode crops it away again."""
        frames = media(1, height=60)
        got = df.encode_prefix(self.engine.pipe, frames, torch.device("cpu"))
        edge = np.concatenate([frames, np.repeat(frames[:, -1:], 4, axis=1)], axis=1)
        torch.testing.assert_close(got, df.encode_prefix(self.engine.pipe, edge, torch.device("cpu")), rtol=0, atol=0)


class WindowTest(tiny.TinyTestCase):
    def spy_steps(self):
        """Patches the engine's step callback to keep every step's latents and timesteps."""
        seen, make = [], self.engine.step_callback

        def step_callback(io, steps):
            on_step_end = make(io, steps)

            def spy(pipe, i, t, kwargs):
                seen.append((t.clone(), kwargs["latents"].clone()))
                return on_step_end(pipe, i, t, kwargs)

            return spy

        return seen, mock.patch.object(self.engine, "step_callback", step_callback)

    def check_window(self, request, latent):
        seen, patch = self.spy_steps()
        with patch:
            io = make_io()
            self.engine.generate_segment(request, io)
        self.assertEqual(len(io.frames), request["frames"])  # every frame, the prefix's included
        for f in io.frames:
            self.assertEqual((f.dtype, f.shape), (np.uint8, (request["height"], request["width"], 3)))
        self.assertEqual(io.tail_latents.shape, (df.latent_frames(tiny.OVERLAP), 16, 8, 16))
        # The encoded prefix is written at the window's start, pre-ready (timestep 0), and held after every step.
        prefix = df.encode_prefix(self.engine.pipe, request["prefix_frames"], torch.device("cpu"))
        self.assertEqual(prefix.shape[2], latent)
        self.assertEqual(len(seen), tiny.STEPS)
        for t, latents in seen:
            self.assertTrue((t[:latent] == 0).all(), t)
            torch.testing.assert_close(latents[:, :, :latent], prefix, rtol=0, atol=0)
        self.assertFalse(torch.equal(seen[0][1][:, :, latent:], seen[-1][1][:, :, latent:]))  # the rest was denoised
        return io

    def test_image_to_video(self):
        request = tiny.request(overlap=1, prefix_frames=media(1))
        self.assertEqual(df.pipeline_kwargs(request, None, None)["addnoise_condition"], df.ADDNOISE_CONDITION)
        self.check_window(request, 1)

    def test_an_extension(self):
        self.check_window(extension(5), 2)

    def test_deterministic_for_a_seed(self):
        a, b, c = (self.check_window(extension(5, seed=s), 2) for s in (8, 8, 9))
        np.testing.assert_array_equal(np.stack(a.frames), np.stack(b.frames))
        np.testing.assert_array_equal(a.tail_latents, b.tail_latents)
        self.assertFalse(np.array_equal(a.tail_latents, c.tail_latents))

    def test_cond_and_prefix_together_are_refused(self):
        cond = np.zeros((2, 16, 8, 16), dtype=np.float32)
        with self.assertRaisesRegex(ValueError, "both cond and prefix_frames"):
            self.engine.generate_segment(extension(5, cond=cond), make_io())
