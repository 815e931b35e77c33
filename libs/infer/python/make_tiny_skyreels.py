"""Builds a tiny SkyReels-V2 diffusion-forcing pipeline, offline.

    python make_tiny_skyreels.py OUT_DIR

Every part is one of diffusers' (or transformers') own classes at the
smallest sizes diffusers' own SkyReels-V2 tests use, with random weights
from a fixed seed, saved with save_pretrained into OUT_DIR (a diffusers
model folder: model_index.json, transformer/, vae/, text_encoder/,
tokenizer/, scheduler/). Nothing is downloaded: the tokenizer is ByT5's,
which needs no vocabulary file. skyreels_df.py loads the folder as it loads
a real snapshot (weights_dir, HF_HUB_OFFLINE=1).

The parts (the frame rules of the catalog's skyreels-v2-df-tiny follow):
  transformer  SkyReelsV2Transformer3DModel: 2 layers, 2 heads of 12, patch
               (1, 2, 2), 16 latent channels, text_dim 32, ffn 32
  vae          AutoencoderKLWan: base_dim 3, z_dim 16, 8x spatial and 4x
               temporal compression (frames = 4k+1), dim_mult [1, 1, 1, 1]
  text encoder UMT5EncoderModel: d_model 32, 2 layers, 4 heads, vocabulary
               of ByT5's 384 ids
  scheduler    UniPCMultistepScheduler with flow sigmas, flow_prediction,
               flow_shift 8 (SkyReels-V2's text-to-video shift)
Sizes are multiples of 16 (8x VAE, 2x patch). The folder is about 1 MB and
the same bytes for the same versions of torch, diffusers and transformers.
"""
import os
import sys

SEED = 20260

# The tiny parts' configurations, also read by the tests.
TRANSFORMER = dict(patch_size=(1, 2, 2), num_attention_heads=2, attention_head_dim=12,
                   in_channels=16, out_channels=16, text_dim=32, freq_dim=256, ffn_dim=32,
                   num_layers=2, cross_attn_norm=True, qk_norm="rms_norm_across_heads",
                   rope_max_seq_len=32)
VAE = dict(base_dim=3, z_dim=16, dim_mult=[1, 1, 1, 1], num_res_blocks=1,
           temperal_downsample=[False, True, True])
TEXT_ENCODER = dict(vocab_size=384, d_model=32, d_kv=8, d_ff=64, num_layers=2, num_heads=4,
                    relative_attention_num_buckets=8, relative_attention_max_distance=16,
                    dropout_rate=0.0, feed_forward_proj="gated-gelu", tie_word_embeddings=False,
                    pad_token_id=0, eos_token_id=1, decoder_start_token_id=0)
SCHEDULER = dict(prediction_type="flow_prediction", use_flow_sigmas=True, flow_shift=8.0,
                 num_train_timesteps=1000)


def build():
    """The pipeline, in float32 on the CPU, from SEED."""
    import torch
    from diffusers import (AutoencoderKLWan, SkyReelsV2DiffusionForcingPipeline,
                           SkyReelsV2Transformer3DModel, UniPCMultistepScheduler)
    from transformers import ByT5Tokenizer, UMT5Config, UMT5EncoderModel

    torch.manual_seed(SEED)
    vae = AutoencoderKLWan(**VAE)
    torch.manual_seed(SEED + 1)
    text_encoder = UMT5EncoderModel(UMT5Config(**TEXT_ENCODER)).eval()
    torch.manual_seed(SEED + 2)
    transformer = SkyReelsV2Transformer3DModel(**TRANSFORMER)
    return SkyReelsV2DiffusionForcingPipeline(
        tokenizer=ByT5Tokenizer(), text_encoder=text_encoder, transformer=transformer,
        vae=vae, scheduler=UniPCMultistepScheduler(**SCHEDULER))


def main(argv):
    if len(argv) != 2:
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    out = argv[1]
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    tmp = out.rstrip("/") + ".tmp"
    build().save_pretrained(tmp, safe_serialization=True)
    if os.path.isdir(out):
        import shutil
        shutil.rmtree(out)
    os.replace(tmp, out)
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
