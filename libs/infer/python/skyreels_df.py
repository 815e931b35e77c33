"""Spool's python-backend module for SkyReels-V2 diffusion forcing.

It drives diffusers' SkyReelsV2DiffusionForcingPipeline (diffusers >= 0.35)
one segment at a time, with latent hand-off between segments:

* the previous segment's tail (latents of its last `overlap` frames, in the
  pipeline's normalised latent space) comes in as request["cond"];
* one window of `frames` frames is denoised with output_type="latent"
  (base_num_frames = num_frames, overlap_history None, ar_step 0: the
  pipeline's single-window, synchronous branch; spool's planner decides the
  windows). The conditioning latents enter exactly where the pipeline's own
  long-video loop puts its history: prepare_latents hands them back as the
  prefix, so the pipeline writes them at the window's start, marks them
  "pre-ready" in the diffusion-forcing timestep matrix (never updated by the
  scheduler, seen by the model at timestep 0 or `addnoise_condition`);
* a step-end callback reports progress and interrupts the pipeline when the
  run is cancelled;
* the tail latents of this segment go out through io.tail before decode;
* the VAE decode is converted and handed to io.frame one frame at a time.

torch and diffusers are imported lazily, on the first segment: the mapping
and the segment's control flow run against any pipeline-like object and
tensor ops (see tests/test_skyreels_df.py, which uses numpy fakes).
Weights come from request["weights_dir"] (a local snapshot), else the
engine's parameter "weights" (the model catalog's, a Hugging Face repository),
else MODEL_ID; the scheduler's flow shift from the parameter "shift" (the
catalog's), else FLOW_SHIFT.
"""

import contextlib
import os
import threading

MODEL_ID = os.environ.get("SPOOL_SKYREELS_MODEL", "Skywork/SkyReels-V2-DF-1.3B-540P-Diffusers")
FLOW_SHIFT = float(os.environ.get("SPOOL_SKYREELS_FLOW_SHIFT", "8.0"))  # 8 for T2V (the model card)
ADDNOISE_CONDITION = float(os.environ.get("SPOOL_SKYREELS_ADDNOISE", "20"))  # noise on the prefix, per the card
NEGATIVE_PROMPT = os.environ.get(
    "SPOOL_SKYREELS_NEGATIVE_PROMPT", "static, blurry, low quality, distorted, watermark, subtitles"
)
TEMPORAL_SCALE = 4  # Wan VAE: n frames are (n - 1) // 4 + 1 latent frames
LATENT_CHANNELS = 16
LATENT_SCALE = 8
DEFAULT_FPS = 24


def source(params, weights_dir=""):
    """Where the weights come from: a local snapshot, the engine's "weights"
    parameter, or MODEL_ID."""
    return weights_dir or params.get("weights") or MODEL_ID


def flow_shift(params):
    """The scheduler's flow shift: the engine's "shift" parameter, or FLOW_SHIFT."""
    return float(params.get("shift", FLOW_SHIFT))


def info(params):
    return {
        "model_version": "skyreels-v2-df (%s, shift %g)" % (source(params), flow_shift(params)),
        "latent_channels": LATENT_CHANNELS,
        "latent_scale": LATENT_SCALE,
        "frame_align": TEMPORAL_SCALE,
        "temporal_scale": TEMPORAL_SCALE,
    }


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
        "addnoise_condition": ADDNOISE_CONDITION if request["cond"] is not None else 0,
        "num_inference_steps": request["steps"],
        "guidance_scale": request["guidance"],
        "fps": request.get("fps", DEFAULT_FPS),
        "generator": generator,
        "output_type": "latent",
        "callback_on_step_end": on_step_end,
        "callback_on_step_end_tensor_inputs": [],
    }


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
    block = getattr(getattr(pipe.transformer, "config", None), "num_frame_per_block", 1) or 1

    def prepare_latents(*args, **kwargs):
        out = original(*args, **kwargs)
        if not (isinstance(out, tuple) and len(out) == 4):
            raise RuntimeError("skyreels_df needs diffusers >= 0.35 (prepare_latents returning the prefix latents)")
        latents, n, own_prefix, _ = out
        if own_prefix is not None:
            raise RuntimeError("skyreels_df: the pipeline ran its long-video loop; base_num_frames must equal num_frames")
        usable = prefix.shape[2] - prefix.shape[2] % block
        return latents, n, prefix[:, :, :usable].to(latents.device, latents.dtype), usable

    pipe.prepare_latents = prepare_latents  # an instance attribute shadows the method
    try:
        yield
    finally:
        del pipe.prepare_latents


def step_callback(io, steps):
    """A callback_on_step_end that reports progress and interrupts the
    pipeline once the run is cancelled (the pipeline then skips its
    remaining steps and returns)."""

    def on_step_end(pipe, i, t, kwargs):
        io.progress(min(i + 1, steps), steps)
        if io.cancelled():
            pipe._interrupt = True
        return {}

    return on_step_end


def tail_latents(latents, tail_frames):
    """The last tail_frames video frames' latents, numpy [F, C, h, w], from
    the window's latents [C, F, h, w]."""
    n = latent_frames(tail_frames)
    return latents[:, -n:].transpose(1, 0, 2, 3)


class Cancelled(Exception):
    """The run was cancelled; the plugin reports SPOOL_ERR_CANCELLED."""


def run_segment(pipe, request, io, ops):
    """One segment on `pipe` with tensor operations `ops` (TorchOps on a GPU
    node, numpy fakes in the tests): progress per step, then the tail, then
    the frames one by one."""
    import numpy as np

    cond = request["cond"]
    prefix = None if cond is None else ops.to_tensor(cond.transpose(1, 0, 2, 3)[None])  # [1, C, L, h, w]
    generator = ops.seed(request["seed"] & 0xFFFFFFFFFFFFFFFF)
    with conditioned_on(pipe, prefix):
        out = pipe(**pipeline_kwargs(request, generator, step_callback(io, request["steps"])))
    if io.cancelled():
        raise Cancelled("cancelled")
    latents = out.frames[0]  # [C, F, h, w], normalised latent space
    if request["tail_frames"]:
        tail = ops.to_numpy(latents)
        if cond is not None and request["frames"] - request["tail_frames"] < request["overlap"]:
            tail[:, : cond.shape[0]] = cond.transpose(1, 0, 2, 3)  # the exact float32 prefix
        io.tail(np.ascontiguousarray(tail_latents(tail, request["tail_frames"]), dtype=np.float32))
    for f, rgb in enumerate(ops.decode(pipe, latents, request["frames"], request["height"], request["width"])):
        io.frame(f, rgb)


class TorchOps:
    """The tensor operations of run_segment, on torch."""

    def __init__(self, pipe):
        import torch

        self.torch, self.device = torch, pipe._execution_device

    def to_tensor(self, a):
        import numpy as np

        return self.torch.from_numpy(np.ascontiguousarray(a)).to(self.device)

    def to_numpy(self, t):
        return t.float().cpu().numpy()

    def seed(self, seed):
        # addnoise_condition draws from the device's global generator: seed
        # it too (this device only), so a retry regenerates the same frames.
        torch = self.torch
        if self.device.type == "cuda":
            with torch.cuda.device(self.device):
                torch.cuda.manual_seed(seed)
        else:
            torch.manual_seed(seed)
        return torch.Generator(device=self.device).manual_seed(seed)

    def decode(self, pipe, latents, frames, height, width):
        """Decodes [C, F, h, w] latents; yields uint8 [height, width, 3]
        frames (cropped from the padded size) one at a time, so only the
        decoded video and one frame are held."""
        torch, vae = self.torch, pipe.vae
        z = vae.config.z_dim
        mean = torch.tensor(vae.config.latents_mean).view(1, z, 1, 1, 1).to(self.device, vae.dtype)
        std = torch.tensor(vae.config.latents_std).view(1, z, 1, 1, 1).to(self.device, vae.dtype)
        with torch.no_grad():
            video = vae.decode(latents[None].to(vae.dtype) * std + mean, return_dict=False)[0][0]  # [3, F, H, W]
        for f in range(min(frames, video.shape[1])):
            rgb = ((video[:, f, :height, :width].float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
            yield rgb.permute(1, 2, 0).contiguous().cpu().numpy()
        del video


_pipes = {}  # (weights, shift, device) -> pipeline: loaded once, the engine stays warm
_pipes_lock = threading.Lock()


def load(request):
    """The pipeline for the request's weights, shift and device, loaded on
    first use (one per device: a worker opens one engine per GPU)."""
    params = request.get("params") or {}
    weights, shift = source(params, request.get("weights_dir")), flow_shift(params)
    device = request.get("device", -1)
    with _pipes_lock:
        pipe = _pipes.get((weights, shift, device))
        if pipe is None:
            import torch
            from diffusers import AutoencoderKLWan, SkyReelsV2DiffusionForcingPipeline, UniPCMultistepScheduler

            vae = AutoencoderKLWan.from_pretrained(weights, subfolder="vae", torch_dtype=torch.float32)
            pipe = SkyReelsV2DiffusionForcingPipeline.from_pretrained(weights, vae=vae, torch_dtype=torch.bfloat16)
            pipe.scheduler = UniPCMultistepScheduler.from_config(pipe.scheduler.config, flow_shift=shift)
            pipe.set_progress_bar_config(disable=True)
            pipe.to("cuda:%d" % device if device >= 0 else "cpu")
            _pipes[(weights, shift, device)] = pipe
    return pipe


def generate_segment(request, io):
    pipe = load(request)
    run_segment(pipe, request, io, TorchOps(pipe))
