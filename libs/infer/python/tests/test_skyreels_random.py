"""skyreels_df's init=random: a folder of configurations alone (no weights)
builds every part from its configuration with random weights on the
engine's device and runs windows; without init=random such a folder is
refused. And the configurations of the real SkyReels-V2-DF-1.3B-540P
(configs/) build the published architecture."""

import json
import os
import shutil
import tempfile
import unittest

import numpy as np
import torch

import skyreels_df as df
from tests import tiny
from tests.fake_io import make_io

HERE = os.path.dirname(os.path.abspath(__file__))
REAL = os.path.join(HERE, "..", "configs", "skyreels-v2-df-1.3b-540p")


def configs_only(model, out):
    """A copy of a diffusers folder's configurations (model_index.json, each
    part's config), none of its weights or tokenizer files."""
    for dirpath, _, files in os.walk(model):
        for name in files:
            if name in ("model_index.json", "config.json", "scheduler_config.json"):
                rel = os.path.relpath(os.path.join(dirpath, name), model)
                if rel.startswith("tokenizer"):
                    continue
                os.makedirs(os.path.dirname(os.path.join(out, rel)), exist_ok=True)
                shutil.copy(os.path.join(model, rel), os.path.join(out, rel))
    return out


class RandomInitTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        tiny.quiet_torch()
        cls.tmp = tempfile.TemporaryDirectory()
        cls.configs = None
        if tiny.missing() is None:
            cls.configs = configs_only(tiny.TINY, os.path.join(cls.tmp.name, "skyreels-v2-df-tiny-configs"))

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def setUp(self):
        why = tiny.missing()
        if why:
            self.fail(why)

    def test_configs_only_folder_holds_no_weights(self):
        self.assertFalse(df.has_weights(self.configs))
        self.assertTrue(df.has_weights(tiny.TINY))
        self.assertEqual(sorted(os.listdir(self.configs)), ["model_index.json", "scheduler", "text_encoder",
                                                            "transformer", "vae"])

    def test_random_weights_run_a_window(self):
        rng = torch.get_rng_state()
        engine = df.open(tiny.options(weights_dir=self.configs, init="random"))
        self.assertTrue(torch.equal(rng, torch.get_rng_state()), "init=random moved the process's generator")
        self.assertRegex(engine.info()["model_version"],
                         r"^skyreels-v2-df-tiny-configs random weights cfg [0-9a-f]{10} diffusers \S+ float32$")
        pipe = engine.pipe
        for part in (pipe.transformer, pipe.text_encoder, pipe.vae):
            self.assertEqual({p.device.type for p in part.parameters()}, {"cpu"})
        self.assertEqual(pipe.transformer.dtype, torch.float32)
        self.assertEqual(pipe.vae.dtype, torch.float32)
        self.assertEqual(type(pipe.tokenizer).__name__, "ByT5Tokenizer")
        self.assertEqual(pipe.scheduler.config.flow_shift, tiny.SHIFT)
        # The architecture of the configurations: the same parameters as the tiny model's, other values.
        ref = df.open(tiny.options())
        for name in ("transformer", "text_encoder", "vae"):
            mine = dict(getattr(pipe, name).named_parameters())
            theirs = dict(getattr(ref.pipe, name).named_parameters())
            self.assertEqual({k: v.shape for k, v in mine.items()}, {k: v.shape for k, v in theirs.items()}, name)
        self.assertEqual(engine.version.split(" cfg ")[1], ref.version.split(" cfg ")[1])  # same configuration
        w = pipe.transformer.proj_out.weight
        self.assertFalse(torch.equal(w, ref.pipe.transformer.proj_out.weight))
        self.assertGreater(w.std().item(), 0)

        io = make_io()
        engine.generate_segment(tiny.request(), io)
        self.assertEqual(io.steps, [(1, 4), (2, 4), (3, 4), (4, 4)])
        self.assertEqual(len(io.frames), tiny.WINDOW)
        self.assertEqual(io.frames[0].shape, (tiny.HEIGHT, tiny.WIDTH, 3))
        self.assertEqual(io.tail_latents.shape, (2, 16, tiny.HEIGHT // 8, tiny.WIDTH // 8))
        self.assertTrue(np.isfinite(io.tail_latents).all())

        again = df.open(tiny.options(weights_dir=self.configs, init="random"))
        self.assertTrue(torch.equal(w, again.pipe.transformer.proj_out.weight), "random weights differ per open")
        for e in (engine, ref, again):
            e.close()

    def test_dtypes_are_those_from_pretrained_loads(self):
        for dtype in (torch.bfloat16, torch.float16):
            loaded = df.load_pipeline(tiny.TINY, -1, tiny.SHIFT, dtype)
            built = df.random_pipeline(self.configs, -1, tiny.SHIFT, dtype)
            for name in ("transformer", "text_encoder", "vae"):
                for tensors in ("named_parameters", "named_buffers"):
                    want = {k: v.dtype for k, v in getattr(getattr(loaded, name), tensors)()}
                    got = {k: v.dtype for k, v in getattr(getattr(built, name), tensors)()}
                    self.assertEqual(got, want, (dtype, name, tensors))
            self.assertIn(torch.float32, {p.dtype for p in built.transformer.parameters()})  # norms, time embedder

    def test_configs_only_refused_without_init_random(self):
        with self.assertRaisesRegex(FileNotFoundError, "holds configurations only.*init=random"):
            df.open(tiny.options(weights_dir=self.configs))

    def test_init_has_one_value(self):
        with self.assertRaisesRegex(ValueError, "init=zeros: the only init is random"):
            df.open(tiny.options(weights_dir=self.configs, init="zeros"))

    def test_init_random_needs_a_folder(self):
        with self.assertRaisesRegex(ValueError, "init=random builds the model from a local folder"):
            df.weights_source({"weights": "Skywork/SkyReels-V2-DF-1.3B-540P-Diffusers", "init": "random"})


def count(module):
    return sum(p.numel() for p in module.parameters())


class RealConfigurationTest(unittest.TestCase):
    """configs/skyreels-v2-df-1.3b-540p: built on the meta device (shapes, no memory)."""

    def test_model_index_names_the_pipeline_parts(self):
        with open(os.path.join(REAL, "model_index.json")) as f:
            index = json.load(f)
        self.assertEqual(index["_class_name"], "SkyReelsV2DiffusionForcingPipeline")
        self.assertEqual(index["transformer"], ["diffusers", "SkyReelsV2Transformer3DModel"])
        self.assertEqual(index["vae"], ["diffusers", "AutoencoderKLWan"])
        self.assertEqual(index["text_encoder"], ["transformers", "UMT5EncoderModel"])
        self.assertEqual(index["scheduler"], ["diffusers", "UniPCMultistepScheduler"])
        self.assertFalse(df.has_weights(REAL))

    def test_transformer_is_wan_1_3b_with_fps_injection(self):
        from diffusers import SkyReelsV2Transformer3DModel

        cfg = SkyReelsV2Transformer3DModel.load_config(REAL, subfolder="transformer")
        with torch.device("meta"):
            model = SkyReelsV2Transformer3DModel.from_config(cfg)
        c = model.config
        self.assertEqual((c.num_attention_heads * c.attention_head_dim, c.ffn_dim, c.num_layers), (1536, 8960, 30))
        self.assertEqual((c.num_frame_per_block, c.inject_sample_info, c.rope_max_seq_len), (1, True, 1024))
        fps = count(model.fps_embedding) + count(model.fps_projection)
        # Wan2.1 T2V-1.3B's 1,418,996,800 parameters, and SkyReels-V2's fps embedding.
        self.assertEqual(count(model) - fps, 1_418_996_800)
        self.assertEqual(count(model), 1_435_525_696)

    def test_vae_is_wan_2_1s(self):
        from diffusers import AutoencoderKLWan

        cfg = AutoencoderKLWan.load_config(REAL, subfolder="vae")
        with torch.device("meta"):
            vae = AutoencoderKLWan.from_config(cfg)
        self.assertEqual((vae.config.base_dim, vae.config.z_dim, list(vae.config.dim_mult)), (96, 16, [1, 2, 4, 4]))
        self.assertEqual(list(vae.config.temperal_downsample), [False, True, True])
        self.assertEqual(len(vae.config.latents_mean), 16)
        self.assertEqual(count(vae), 126_892_531)

    def test_text_encoder_is_umt5_xxls_encoder(self):
        from transformers import UMT5Config, UMT5EncoderModel

        cfg = UMT5Config.from_pretrained(REAL, subfolder="text_encoder")
        self.assertEqual((cfg.d_model, cfg.d_ff, cfg.num_layers, cfg.num_heads, cfg.d_kv, cfg.vocab_size),
                         (4096, 10240, 24, 64, 64, 256384))
        self.assertTrue(cfg.is_gated_act)
        with torch.device("meta"):
            encoder = UMT5EncoderModel(cfg)
        self.assertEqual(count(encoder), 5_680_910_336)

    def test_scheduler_is_flow_unipc_with_shift_8(self):
        from diffusers import UniPCMultistepScheduler

        s = UniPCMultistepScheduler.from_config(UniPCMultistepScheduler.load_config(REAL, subfolder="scheduler"))
        self.assertEqual((s.config.prediction_type, s.config.use_flow_sigmas, s.config.flow_shift),
                         ("flow_prediction", True, 8.0))


if __name__ == "__main__":
    unittest.main()
