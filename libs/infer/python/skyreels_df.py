"""Spool's python-backend module for SkyReels-V2 diffusion forcing.

It drives diffusers' SkyReelsV2DiffusionForcingPipeline one diffusion-forcing
window per spool segment, handing latents from segment to segment:

* open(options) loads the pipeline of one engine (a worker slot): the
  weights from options["weights_dir"] (a local snapshot), else the engine's
  parameter "weights" (the model catalog's Hugging Face id); the
  scheduler's flow shift from the parameter "shift". Every engine owns its
  pipeline, generators and hooks: nothing is shared between slots. With the
  parameter init=random the folder needs only the parts' configurations:
  every part is built from its configuration with random weights, on the
  engine's device (the real architecture's speed and memory, without its
  weights; the GPU check's);
* the previous segment's tail (latents of its last `overlap` frames, in the
  pipeline's normalised latent space) comes in as request["cond"]; or the
  segment starts from media, request["prefix_frames"] (uint8 RGB
  [overlap, H, W, 3]: an image, 1 frame, or an input video's last frames),
  which encode_prefix encodes with the pipeline's VAE as diffusers'
  SkyReelsV2DiffusionForcingImageToVideoPipeline (1 frame) and
  SkyReelsV2DiffusionForcingVideoToVideoPipeline (n frames) encode their
  image or video (the same numbers: a test checks), into the same
  normalised latents as a tail;
* one window of `frames` frames is denoised with output_type="latent"
  (base_num_frames = num_frames, overlap_history None, ar_step 0: the
  pipeline's single-window, synchronous branch; spool's planner decides the
  windows, and a window longer than the engine's `max_window` is refused).
  The conditioning latents enter exactly where the pipeline's own
  long-video loop puts its history (and where the image-to-video and
  video-to-video pipelines put their encoded media): prepare_latents hands
  them back as the prefix, so the pipeline writes them at the window's
  start, marks them pre-ready in the diffusion-forcing timestep matrix
  (never updated by the scheduler) and shows them to the model with
  `addnoise_condition` noise;
* a step-end callback reports progress and interrupts the pipeline when the
  run is cancelled;
* the tail latents go out through io.tail before any frame;
* the VAE decodes one latent frame at a time (the Wan VAE's own causal
  chunking, its temporal cache carried from chunk to chunk), so the frames
  are those of a whole-window decode and go to io.frame as they come.

SkyReels-V2 diffusion forcing is not audio-driven and animates no
reference: a request carrying request["audio"] or
request["reference_frames"] is refused (ValueError), never run without them.
"""

import contextlib
import gc
import hashlib
import json
import os
import sys
import threading
import types
import warnings

import numpy as np
import torch

# SkyReels-V2's own negative prompt (generate_video_df.py of SkyworkAI/SkyReels-V2, Wan's).
DEFAULT_NEGATIVE_PROMPT = (
    "色调艳丽，过曝，静态，细节模糊不清，字幕，风格，作品，画作，画面，静止，整体发灰，最差质量，低质量，"
    "JPEG压缩残留，丑陋的，残缺的，多余的手指，画得不好的手部，画得不好的脸部，畸形的，毁容的，形态畸形的肢体，"
    "手指融合，静止不动的画面，杂乱的背景，三条腿，背景人很多，倒着走"
)
NEGATIVE_PROMPT = os.environ.get("SPOOL_SKYREELS_NEGATIVE_PROMPT") or DEFAULT_NEGATIVE_PROMPT
ADDNOISE_CONDITION = float(os.environ.get("SPOOL_SKYREELS_ADDNOISE", "20"))  # noise on the prefix, per the card
FLOW_SHIFT = 8.0  # SkyReels-V2's text-to-video shift, when the engine has no "shift" parameter
TEMPORAL_SCALE = 4  # Wan VAE: n frames are (n - 1) // 4 + 1 latent frames
LATENT_SCALE = 8
DEFAULT_FPS = 24


def latent_frames(frames):
    """Latent frames of a window of `frames` video frames."""
    return (frames - 1) // TEMPORAL_SCALE + 1


def padded(pixels):
    """The pipeline's size for a requested size: the next multiple of 16 (its
    check), e.g. 540 -> 544; frames are cropped back to the request. Refused
    when it would change the latent grid the tail state is sized by
    (ceil(pixels / 8) latent cells)."""
    p = -(-pixels // 16) * 16
    if p // LATENT_SCALE != -(-pixels // LATENT_SCALE):
        raise ValueError(
            "skyreels_df: size %d is not supported: the pipeline needs multiples of 16, and %d would change "
            "the latent grid (use a multiple of 16, or of 8 with an even number of 8-pixel cells)" % (pixels, p)
        )
    return p


def flow_shift(params):
    """The scheduler's flow shift: the engine's "shift" parameter, or FLOW_SHIFT."""
    shift = float(params.get("shift") or FLOW_SHIFT)
    if shift <= 0:
        raise ValueError("skyreels_df: shift=%s: the flow shift must be positive" % params.get("shift"))
    return shift


def hub_offline():
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def weights_source(options):
    """Where the engine's weights come from: options["weights_dir"] (a local
    diffusers folder), else the parameter "weights" (a local folder or a
    Hugging Face id, refused when HF_HUB_OFFLINE is set). A local folder
    without weights (configurations only) is refused unless init=random."""
    weights_dir = options.get("weights_dir") or ""
    weights = weights_dir or options.get("weights") or ""
    if not weights:
        raise ValueError("skyreels_df: no weights: the engine needs weights_dir or the parameter weights "
                         "(the model catalog's Hugging Face id)")
    random_init = init_random(options)
    if weights_dir or os.path.isdir(weights):
        if not os.path.isfile(os.path.join(weights, "model_index.json")):
            raise FileNotFoundError("skyreels_df: %s is not a diffusers model folder (no model_index.json)" % weights)
        if not random_init and not has_weights(weights):
            raise FileNotFoundError(
                "skyreels_df: %s holds configurations only (no weights in transformer/): give the engine the "
                "parameter init=random to build every part from its configuration with random weights (for "
                "timings), or a folder with the model's weights" % weights
            )
        return weights
    if random_init:
        raise ValueError("skyreels_df: init=random builds the model from a local folder of configurations; "
                         "%r is not a folder" % weights)
    if hub_offline():
        raise RuntimeError(
            "skyreels_df: weights %r are a Hugging Face id and HF_HUB_OFFLINE=1 forbids fetching them: give the "
            "worker a local snapshot, SPOOL_WORKER_MODELS_DIR (a folder per model, named as the catalog) or "
            "SPOOL_WORKER_WEIGHTS_DIR (one model's folder)" % weights
        )
    return weights


WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".ckpt", ".gguf")


def has_weights(folder):
    """Whether a diffusers folder's transformer/ holds a weights file (or an index of shards)."""
    part = os.path.join(folder, "transformer")
    if not os.path.isdir(part):
        return False
    return any(name.endswith(WEIGHT_SUFFIXES) or name.endswith(".index.json") for name in os.listdir(part))


def init_random(params):
    """Whether the engine's parameter init asks for random weights. init has
    one value, random; anything else is refused, never ignored."""
    init = (params.get("init") or "").strip().lower()
    if init not in ("", "random"):
        raise ValueError("skyreels_df: init=%s: the only init is random (every part built from its "
                         "configuration with random weights)" % params.get("init"))
    return init == "random"


def configure(params, device):
    """Applies the engine's thread and determinism parameters (process-wide
    in torch, so every engine of a worker passes the same): threads=N fixes
    torch's intra-op threads; deterministic=1 turns on
    torch.use_deterministic_algorithms, with 1 thread unless threads says
    otherwise. Returns whether the engine is deterministic."""
    deterministic = params.get("deterministic", "").strip().lower() in ("1", "true", "yes")
    threads = params.get("threads") or ("1" if deterministic else "")
    if threads:
        torch.set_num_threads(int(threads))
    if deterministic:
        if device >= 0:
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # deterministic cuBLAS, before its first use
            torch.backends.cudnn.benchmark = False
        torch.use_deterministic_algorithms(True)
    return deterministic


def torch_dtype(params, device):
    """The transformer's and text encoder's dtype: the parameter dtype, else
    bfloat16 on a GPU (the model card's) and float32 on the CPU. The VAE is
    always float32."""
    name = params.get("dtype") or ("bfloat16" if device >= 0 else "float32")
    dtype = getattr(torch, name, None)
    if not isinstance(dtype, torch.dtype):
        raise ValueError("skyreels_df: dtype=%s is not a torch dtype (bfloat16, float16, float32)" % name)
    return dtype


# from_pretrained changes process-wide torch state while it builds a model
# (torch.set_default_dtype, torch.nn.init replaced by no-ops, accelerate's
# patched nn.Module.register_parameter) and restores it after: two loads at
# once on two threads corrupt each other. Loads from disk are serialised; the
# copy to the engine's device, the long part on a GPU, is not.
_load_lock = threading.Lock()


def load_pipeline(source, device, shift, dtype):
    """The pipeline of one engine, on its device (-1: the CPU)."""
    from diffusers import AutoencoderKLWan, SkyReelsV2DiffusionForcingPipeline, UniPCMultistepScheduler
    from diffusers.utils import logging as diffusers_logging
    from transformers.utils import logging as transformers_logging

    diffusers_logging.disable_progress_bar()
    transformers_logging.disable_progress_bar()
    with _load_lock:
        engine_noise.install(sys.modules[SkyReelsV2DiffusionForcingPipeline.__module__])
        vae = AutoencoderKLWan.from_pretrained(source, subfolder="vae", dtype=torch.float32)
        pipe = SkyReelsV2DiffusionForcingPipeline.from_pretrained(source, vae=vae, dtype=dtype)
    pipe.scheduler = UniPCMultistepScheduler.from_config(pipe.scheduler.config, flow_shift=shift)
    pipe.set_progress_bar_config(disable=True)
    return pipe.to("cuda:%d" % device if device >= 0 else "cpu")


RANDOM_SEED = 20260  # init=random: the same weights every time, whatever the process's generators


def random_pipeline(source, device, shift, dtype):
    """init=random: the pipeline of the configurations in `source`
    (model_index.json and each part's config), every part built from its
    configuration with random weights directly on the engine's device, the
    transformer and text encoder then cast to `dtype` as from_pretrained
    casts them (see cast; the VAE stays float32, as loaded ones do). The
    weights are the same at every open (RANDOM_SEED), and the process's
    generators are left as they were. The tokenizer is ByT5's, which needs no
    vocabulary file; its ids are below any UMT5 vocabulary's size, and the
    pipeline pads every prompt to its 512 tokens, so the text encoder's work
    is a real tokenizer's. The speed of a window does not depend on the
    weights' values."""
    from diffusers import (AutoencoderKLWan, SkyReelsV2DiffusionForcingPipeline, SkyReelsV2Transformer3DModel,
                           UniPCMultistepScheduler)
    from diffusers.utils import logging as diffusers_logging
    from transformers import ByT5Tokenizer, UMT5Config, UMT5EncoderModel

    diffusers_logging.disable_progress_bar()
    dev = torch.device("cuda:%d" % device if device >= 0 else "cpu")
    transformer_cfg = SkyReelsV2Transformer3DModel.load_config(source, subfolder="transformer")
    vae_cfg = AutoencoderKLWan.load_config(source, subfolder="vae")
    text_cfg = UMT5Config.from_pretrained(source, subfolder="text_encoder")
    scheduler_cfg = UniPCMultistepScheduler.load_config(source, subfolder="scheduler")
    with _load_lock:
        engine_noise.install(sys.modules[SkyReelsV2DiffusionForcingPipeline.__module__])
        gpus = list(range(torch.cuda.device_count())) if dev.type == "cuda" else []
        with torch.random.fork_rng(devices=gpus), torch.device(dev):
            torch.manual_seed(RANDOM_SEED)
            transformer = SkyReelsV2Transformer3DModel.from_config(transformer_cfg)
            vae = AutoencoderKLWan.from_config(vae_cfg)
            text_encoder = UMT5EncoderModel(text_cfg)
        cast(transformer, dtype, transformer._keep_in_fp32_modules)
        cast(vae, torch.float32)
        cast(text_encoder, dtype, text_encoder._keep_in_fp32_modules if dtype == torch.float16 else ())
    pipe = SkyReelsV2DiffusionForcingPipeline(
        tokenizer=ByT5Tokenizer(), text_encoder=text_encoder.eval(), transformer=transformer.eval(), vae=vae.eval(),
        scheduler=UniPCMultistepScheduler.from_config(scheduler_cfg, flow_shift=shift))
    pipe.set_progress_bar_config(disable=True)
    if dev.type == "cuda":
        with torch.cuda.device(dev):
            torch.cuda.empty_cache()  # the float32 copies the cast freed: memory figures are the windows'
    return pipe


def cast(model, dtype, keep=()):
    """Casts a model's floating-point parameters to `dtype` as from_pretrained
    loads them: those with a name component in `keep` (the class's
    _keep_in_fp32_modules: diffusers keeps them float32 at any dtype,
    transformers at float16) stay float32. Buffers are computed at build, in
    float32, and from_pretrained leaves them so."""
    keep = set(keep or ())
    for prefix, module in model.named_modules():
        parts = prefix.split(".") if prefix else []
        for name, p in module.named_parameters(recurse=False):
            if p.is_floating_point():
                p.data = p.data.to(torch.float32 if keep.intersection(parts + [name]) else dtype)
    return model


def build_pipeline(source, device, shift, dtype, params):
    """The engine's pipeline: loaded from `source`, or with init=random built
    from its configurations with random weights."""
    if init_random(params):
        return random_pipeline(source, device, shift, dtype)
    return load_pipeline(source, device, shift, dtype)


def model_version(source, pipe, dtype, random_init=False):
    """What was loaded: the folder's name or the hub id ("random weights"
    when built with init=random), a hash of the transformer's, VAE's and
    scheduler's configurations, the diffusers version and the dtype."""
    import diffusers

    configs = {name: dict(getattr(pipe, name).config) for name in ("transformer", "vae", "scheduler")}
    for c in configs.values():
        for k in [k for k in c if k.startswith("_")]:
            del c[k]  # _name_or_path, _diffusers_version: where and by what it was saved
    digest = hashlib.sha256(json.dumps(configs, sort_keys=True, default=str).encode()).hexdigest()[:10]
    name = os.path.basename(os.path.normpath(source)) if os.path.isdir(source) else source
    name = name[:64] + (" random weights" if random_init else "")
    return "%s cfg %s diffusers %s %s" % (name, digest, diffusers.__version__, str(dtype).replace("torch.", ""))


def pipeline_kwargs(request, generator, on_step_end):
    """The pipeline's arguments for one segment: one window, latents out."""
    return {
        "prompt": request["prompt"],
        "negative_prompt": NEGATIVE_PROMPT,
        "height": padded(request["height"]),
        "width": padded(request["width"]),
        "num_frames": request["frames"],
        "base_num_frames": request["frames"],  # one window: the single-window branch
        "overlap_history": None,  # spool hands the history over (conditioned_on)
        "ar_step": 0,  # synchronous: causal_block_size stays the model's own
        "addnoise_condition": ADDNOISE_CONDITION if conditioned(request) else 0,
        "num_inference_steps": request["steps"],
        "guidance_scale": request["guidance"],
        "fps": int(request.get("fps") or DEFAULT_FPS),
        "generator": generator,
        "output_type": "latent",
        "callback_on_step_end": on_step_end,
        "callback_on_step_end_tensor_inputs": ["latents"],
    }


def conditioned(request):
    """Whether the segment starts from a tail state or from prefix frames."""
    return request["cond"] is not None or request.get("prefix_frames") is not None


def conditioning_frames(request):
    """Latent frames of the segment's conditioning: the tail state's, or those
    the VAE makes of the prefix frames; None without either."""
    if request["cond"] is not None:
        return request["cond"].shape[0]
    if request.get("prefix_frames") is not None:
        return latent_frames(request["prefix_frames"].shape[0])
    return None


def encode_prefix(pipe, frames, device):
    """The normalised latents [1, C, L, h, w] (float32) of prefix frames,
    uint8 RGB [n, H, W, 3], encoded as diffusers' diffusion-forcing pipelines
    encode their media: SkyReelsV2DiffusionForcingImageToVideoPipeline an
    image (n = 1), SkyReelsV2DiffusionForcingVideoToVideoPipeline a video's
    last n frames. Both take the frames through the pipeline's
    video_processor ([0, 1] floats, as its PIL path makes them, normalised to
    [-1, 1]), encode them in the VAE's dtype with the mode of the latent
    distribution (retrieve_latents, sample_mode "argmax") and cast to float32,
    then normalise with the VAE's latents_mean and latents_std: image to
    video with statistics in float32, video to video in the VAE's dtype (the
    same numbers for a float32 VAE). The frames come at the request's size;
    the pipeline runs at its padded size (multiples of 16), so they are padded
    by repeating their last row and column (the inverse of the crop of
    decode_frames), where diffusers would resize media of another size."""
    from diffusers.pipelines.skyreels_v2.pipeline_skyreels_v2_diffusion_forcing_v2v import retrieve_latents

    n, height, width, _ = frames.shape
    ph, pw = padded(height), padded(width)
    x = np.pad(frames, ((0, 0), (0, ph - height), (0, pw - width), (0, 0)), mode="edge")
    x = x.astype(np.float32) / 255.0  # PIL to numpy, as the pipelines' preprocessing does it
    video = pipe.video_processor.preprocess_video(x, height=ph, width=pw).to(device, dtype=torch.float32)
    vae = pipe.vae
    stats = torch.float32 if n == 1 else vae.dtype
    with torch.no_grad():
        latents = retrieve_latents(vae.encode(video.to(vae.dtype)), sample_mode="argmax").to(torch.float32)
    mean = torch.tensor(vae.config.latents_mean).view(1, vae.config.z_dim, 1, 1, 1).to(device, stats)
    inv_std = 1.0 / torch.tensor(vae.config.latents_std).view(1, vae.config.z_dim, 1, 1, 1).to(device, stats)
    return (latents - mean) * inv_std


def usable_prefix(prefix_frames, block):
    """The latent frames of a prefix the pipeline keeps: whole causal blocks,
    as its long-video loop keeps of its history."""
    return prefix_frames - prefix_frames % block


def check_request(request, max_window, block, model="the model"):
    """Refuses what the pipeline would run wrongly without saying so."""
    given = [k for k in ("audio", "reference_frames") if request.get(k) is not None]
    if given:
        raise ValueError(
            "skyreels_df: the request carries %s, but %s (SkyReels-V2 diffusion forcing) is not audio-driven and "
            "animates no reference frames; it would ignore them: run an audio-driven or talking-head model"
            % (" and ".join(given), model)
        )
    frames = request["frames"]
    if max_window and frames > max_window:
        raise ValueError(
            "skyreels_df: a window of %d frames is longer than %s's window of %d frames (max_window): the model "
            "was not trained on it; spool's planner splits longer videos into windows" % (frames, model, max_window)
        )
    if frames % TEMPORAL_SCALE != 1:
        raise ValueError("skyreels_df: frames=%d: the Wan VAE needs 4k+1 frames" % frames)
    if latent_frames(frames) % block:
        raise ValueError(
            "skyreels_df: a window of %d frames is %d latent frames, not whole causal blocks of %d: the pipeline "
            "would never denoise the last %d" % (frames, latent_frames(frames), block, latent_frames(frames) % block)
        )
    if request["cond"] is not None and request.get("prefix_frames") is not None:
        raise ValueError("skyreels_df: both cond and prefix_frames: a segment starts from one or the other")
    latent = conditioning_frames(request)
    if latent is not None and usable_prefix(latent, block) == 0:
        overlap = request["overlap"]
        raise ValueError(
            "skyreels_df: an overlap of %d frames is %d latent frames, shorter than one causal block of %d latent "
            "frames: the pipeline would drop the conditioning and the segment would not continue from it; "
            "use an overlap of at least %d frames" % (overlap, latent, block, (block - 1) * TEMPORAL_SCALE + 1)
        )


@contextlib.contextmanager
def conditioned_on(pipe, prefix):
    """Makes the next pipe(...) call condition on `prefix` (a tensor
    [1, C, L, h, w]), as its long-video loop conditions on its own history:
    the pipeline's prepare_latents returns it as the prefix latents, and the
    pipeline does the rest (writes it at the window's start, marks the frames
    pre-ready in the timestep matrix, adds `addnoise_condition`). The prefix
    is cut to whole causal blocks, as the pipeline cuts its own. prefix None
    changes nothing."""
    if prefix is None:
        yield
        return
    original = pipe.prepare_latents

    def prepare_latents(*args, **kwargs):
        out = original(*args, **kwargs)
        if not (isinstance(out, tuple) and len(out) == 4):
            raise RuntimeError("skyreels_df needs diffusers >= 0.35 (prepare_latents returning the prefix latents)")
        latents, n, own_prefix, _ = out
        if own_prefix is not None:
            raise RuntimeError("skyreels_df: the pipeline ran its long-video loop; base_num_frames must equal num_frames")
        usable = usable_prefix(prefix.shape[2], kwargs.get("causal_block_size") or 1)
        return latents, n, prefix[:, :, :usable].to(latents.device, latents.dtype), usable

    pipe.prepare_latents = prepare_latents  # an instance attribute shadows the method
    try:
        yield
    finally:
        del pipe.prepare_latents


class EngineNoise:
    """The pipeline draws addnoise_condition's noise with torch.randn_like,
    from the process's global generator, which every CPU engine of a process
    shares (and which another engine may reseed mid-segment). install()
    gives the pipeline's module a torch whose randn_like draws from the
    generator the calling thread's engine set (use()), and from the global
    one otherwise: the same numbers as the global generator seeded alike."""

    def __init__(self):
        self.local = threading.local()

    def install(self, module):
        if isinstance(module.torch, _PipelineTorch):
            return
        module.torch = _PipelineTorch(module.torch, self)

    @contextlib.contextmanager
    def use(self, generator):
        self.local.generator = generator
        try:
            yield
        finally:
            self.local.generator = None

    def randn_like(self, real, input, *args, **kwargs):
        g = getattr(self.local, "generator", None)
        if g is None or args or kwargs.get("dtype") not in (None, input.dtype):
            return real.randn_like(input, *args, **kwargs)
        kwargs.pop("dtype", None)
        return real.empty_like(input, **kwargs).normal_(generator=g)  # randn_like is empty_like().normal_()


class _PipelineTorch(types.ModuleType):
    """torch, but for randn_like (see EngineNoise)."""

    def __init__(self, real, noise):
        super().__init__(real.__name__)
        self._real, self._noise = real, noise

    def __getattr__(self, name):
        return getattr(self._real, name)

    def randn_like(self, input, *args, **kwargs):
        return self._noise.randn_like(self._real, input, *args, **kwargs)


engine_noise = EngineNoise()


def addnoise_seed(seed):
    """The seed of a segment's addnoise_condition draws: not the window
    noise's own, whose first numbers it would repeat."""
    return (seed ^ 0x5DEECE66D) & 0xFFFFFFFFFFFFFFFF


def decode_frames(vae, latents, height, width):
    """Decodes latents [1, C, F, h, w] (normalised, as the pipeline returns
    them) as AutoencoderKLWan.decode does, one latent frame at a time with
    its causal cache carried over, and yields uint8 [height, width, 3] frames
    (cropped from the padded size) as each chunk is decoded: the bytes of a
    whole-window decode, with memory for one chunk. The conversion to uint8
    is diffusers' own (postprocess_video, then numpy_to_pil's)."""
    from diffusers.models.autoencoders.autoencoder_kl_wan import WanCausalConv3d, unpatchify

    config = vae.config
    with torch.no_grad():
        z = latents.to(vae.dtype)
        mean = torch.tensor(config.latents_mean).view(1, config.z_dim, 1, 1, 1).to(z.device, z.dtype)
        inv_std = 1.0 / torch.tensor(config.latents_std).view(1, config.z_dim, 1, 1, 1).to(z.device, z.dtype)
        x = vae.post_quant_conv(z / inv_std + mean)  # the pipeline's de-normalisation, then _decode's
        del z, mean, inv_std
    cache = [None] * sum(1 for m in vae.decoder.modules() if isinstance(m, WanCausalConv3d))
    for i in range(x.shape[2]):
        with torch.no_grad():  # never held across a yield: grad mode is the thread's
            out = vae.decoder(x[:, :, i : i + 1], feat_cache=cache, feat_idx=[0], first_chunk=i == 0)
            if config.patch_size is not None:
                out = unpatchify(out, patch_size=config.patch_size)
            out = (out.clamp(-1.0, 1.0) * 0.5 + 0.5).clamp(0, 1)
            rgb = (out[0, :, :, :height, :width].float() * 255).round().to(torch.uint8)
            rgb = rgb.permute(1, 2, 3, 0).contiguous().cpu()  # [frames, height, width, 3]
            del out
        for f in range(rgb.shape[0]):
            yield rgb[f].numpy()


class Cancelled(Exception):
    """The run was cancelled; the plugin reports SPOOL_ERR_CANCELLED."""


def drop_locals(exc):
    """Clears the finished frames of exc's tracebacks (and of the exceptions
    it chains), so the tensors a failed segment held are freed now, not when
    the plugin drops the exception."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        tb = exc.__traceback__
        while tb is not None:
            with contextlib.suppress(RuntimeError):  # a frame still running
                tb.tb_frame.clear()
                tb.tb_frame.f_locals  # noqa: B018 - empties the snapshot a locals() call left on it (3.11, 3.12)
            tb = tb.tb_next
        exc = exc.__cause__ or exc.__context__


def open(options):  # noqa: A001 - the protocol's name
    """The engine of one worker slot (see Engine). A CPU engine never uses
    CUDA: torch's warning that the machine's CUDA driver is too old for it
    (a CPU machine with a driver library installed) is no news there."""
    if int(options.get("device", -1)) >= 0:
        return Engine(options)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="CUDA initialization", category=UserWarning)
        return Engine(options)


class Engine:
    """One engine: its pipeline on its device, loaded at open.

    options: every engine parameter (str -> str: module, path, the catalog's
    weights, shift, max_window, and the worker's own: deterministic,
    threads, dtype, init) plus "model", "weights_dir" and "device" (-1: the CPU)."""

    def __init__(self, options):
        self.params = {k: v for k, v in options.items() if isinstance(v, str)}
        self.device = int(options.get("device", -1))
        self.model = options.get("model") or "skyreels-v2-df"  # the catalog's name, for messages
        self.max_window = int(self.params.get("max_window") or 0)
        self.deterministic = configure(self.params, self.device)
        self.source = weights_source(options)
        dtype = torch_dtype(self.params, self.device)
        self.pipe = build_pipeline(self.source, self.device, flow_shift(self.params), dtype, self.params)
        self.torch_device = torch.device("cuda:%d" % self.device if self.device >= 0 else "cpu")
        self.version = model_version(self.source, self.pipe, dtype, init_random(self.params))

    def info(self):
        vae = self.pipe.vae
        return {
            "model_version": self.version,
            "latent_channels": vae.config.z_dim,
            "latent_scale": self.pipe.vae_scale_factor_spatial,
            "frame_align": self.pipe.vae_scale_factor_temporal,
            "temporal_scale": self.pipe.vae_scale_factor_temporal,
        }

    def close(self):
        self.pipe = None
        self.release(collect=True)

    def generate_segment(self, request, io):
        try:
            self.segment(request, io)
        except BaseException as exc:
            drop_locals(exc)
            self.release(collect=True)
            raise
        self.release()

    def release(self, collect=False):
        """Gives back what a segment held: its tensors are gone by now (on
        failure once drop_locals cleared them and gc collected their
        cycles); the CUDA allocator's cache goes back to the device."""
        if self.pipe is not None:
            self.pipe._current_timestep = None  # left set by a run that raised
        if collect:
            gc.collect()
        if self.device >= 0 and torch.cuda.is_available():
            with torch.cuda.device(self.device):
                torch.cuda.empty_cache()

    def step_callback(self, io, steps):
        """A callback_on_step_end that reports progress and interrupts the
        pipeline once the run is cancelled (the pipeline then skips its
        remaining steps and returns)."""

        def on_step_end(pipe, i, t, kwargs):
            io.progress(min(i + 1, steps), steps)
            if io.cancelled():
                pipe._interrupt = True
            return {}

        return on_step_end

    def conditioning(self, request):
        """The latents [1, C, L, h, w] the window starts from: the tail
        state's, or the prefix frames encoded; None without either."""
        if request.get("prefix_frames") is not None:
            return encode_prefix(self.pipe, request["prefix_frames"], self.torch_device)
        cond = request["cond"]
        if cond is not None:
            return torch.from_numpy(np.ascontiguousarray(cond.transpose(1, 0, 2, 3)[None])).to(self.torch_device)
        return None

    def denoise(self, request, io):
        """The window's latents [1, C, F, h, w], conditioned on request["cond"]
        or request["prefix_frames"]."""
        pipe = self.pipe
        check_request(request, self.max_window, pipe.transformer.config.num_frame_per_block, self.model)
        prefix = self.conditioning(request)
        seed = request["seed"] & 0xFFFFFFFFFFFFFFFF
        generator = torch.Generator(device=self.torch_device).manual_seed(seed)  # the window's noise
        noise = torch.Generator(device=self.torch_device).manual_seed(addnoise_seed(seed))
        kwargs = pipeline_kwargs(request, generator, self.step_callback(io, request["steps"]))
        with conditioned_on(pipe, prefix), engine_noise.use(noise):
            return pipe(**kwargs).frames

    def segment(self, request, io):
        """progress per step, then the tail, then the frames one by one."""
        latents = self.denoise(request, io)
        if io.cancelled():
            raise Cancelled("cancelled")
        if request["tail_frames"]:
            tail = latents[0, :, -latent_frames(request["tail_frames"]) :].transpose(0, 1)
            io.tail(np.ascontiguousarray(tail.float().cpu().numpy(), dtype=np.float32))
            del tail
        frames = decode_frames(self.pipe.vae, latents, request["height"], request["width"])
        for f, rgb in enumerate(frames):
            io.frame(f, rgb)
