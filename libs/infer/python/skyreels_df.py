"""Spool's python-backend module for SkyReels-V2 diffusion forcing.

It drives diffusers' SkyReelsV2DiffusionForcingPipeline one segment at a
time, with latent hand-off between segments:

* the previous segment's tail (latents of its last `overlap` frames, in the
  pipeline's normalised latent space) comes in as request["cond"];
* one pipeline window of `frames` frames is denoised with output_type="latent";
  after every step a callback puts the conditioning latents back at the start
  of the window (the clean prefix of diffusion forcing), reports progress and
  honours cancellation;
* the tail latents of this segment go out through io.tail before decode;
* the VAE decode is streamed to io.frame one frame at a time.

torch and diffusers are imported lazily, on the first segment, so the
argument mapping can be tested anywhere (see tests/test_skyreels_df.py).
Weights come from request["weights_dir"] (a local snapshot) or MODEL_ID.
"""

import os

MODEL_ID = os.environ.get("SPOOL_SKYREELS_MODEL", "Skywork/SkyReels-V2-DF-1.3B-540P-Diffusers")
NEGATIVE_PROMPT = "static, blurry, low quality, distorted, watermark, subtitles"
TEMPORAL_SCALE = 4  # Wan VAE: n frames are (n - 1) // 4 + 1 latent frames
LATENT_CHANNELS = 16
LATENT_SCALE = 8
DEFAULT_FPS = 24

_pipe = None  # loaded once per process: the engine stays warm


def info():
    return {
        "model_version": "skyreels-v2-df (%s)" % MODEL_ID,
        "latent_channels": LATENT_CHANNELS,
        "latent_scale": LATENT_SCALE,
        "frame_align": TEMPORAL_SCALE,
        "temporal_scale": TEMPORAL_SCALE,
    }


def latent_frames(frames):
    """Latent frames of a window of `frames` video frames."""
    return (frames - 1) // TEMPORAL_SCALE + 1


def pipeline_kwargs(request, generator, on_step_end):
    """The pipeline's arguments for one segment: one window, latents out.

    base_num_frames = num_frames keeps the pipeline in its single-window
    branch: spool plans the windows (libs/plan), the pipeline denoises one.
    """
    return {
        "prompt": request["prompt"],
        "negative_prompt": NEGATIVE_PROMPT,
        "height": request["height"],
        "width": request["width"],
        "num_frames": request["frames"],
        "base_num_frames": request["frames"],
        "overlap_history": None,
        "ar_step": 0,
        "num_inference_steps": request["steps"],
        "guidance_scale": request["guidance"],
        "fps": request.get("fps", DEFAULT_FPS),
        "generator": generator,
        "output_type": "latent",
        "callback_on_step_end": on_step_end,
        "callback_on_step_end_tensor_inputs": ["latents"],
    }


def prefix_callback(io, cond, steps, to_tensor):
    """A callback_on_step_end that keeps the conditioning prefix clean,
    reports progress and stops the pipeline when the run is cancelled.

    cond: numpy float32 [F, C, h, w] latent frames, or None. The pipeline's
    latents inside the loop are [C, F, h, w].
    """
    prefix = None if cond is None else to_tensor(cond.transpose(1, 0, 2, 3))
    state = {"step": 0}

    def on_step_end(pipe, i, t, kwargs):
        latents = kwargs["latents"]
        if prefix is not None:
            latents[:, : prefix.shape[1]] = prefix.to(latents.dtype)
        state["step"] += 1
        io.progress(min(state["step"], steps), steps)
        if io.cancelled():
            pipe._interrupt = True
        return {"latents": latents}

    return on_step_end


def tail_latents(latents, tail_frames):
    """The last tail_frames video frames' latents as numpy [F, C, h, w]."""
    n = latent_frames(tail_frames)
    return latents[:, -n:].transpose(1, 0, 2, 3)


def _load(request):
    global _pipe
    if _pipe is None:
        import torch
        from diffusers import SkyReelsV2DiffusionForcingPipeline

        source = request.get("weights_dir") or MODEL_ID
        pipe = SkyReelsV2DiffusionForcingPipeline.from_pretrained(source, torch_dtype=torch.bfloat16)
        device = request.get("device", -1)
        pipe.to("cuda:%d" % device if device >= 0 else "cpu")
        _pipe = pipe
    return _pipe


def generate_segment(request, io):
    import numpy as np
    import torch

    pipe = _load(request)
    device = pipe._execution_device
    generator = torch.Generator(device=device).manual_seed(request["seed"] & 0xFFFFFFFFFFFFFFFF)
    to_tensor = lambda a: torch.from_numpy(np.ascontiguousarray(a)).to(device)  # noqa: E731
    callback = prefix_callback(io, request["cond"], request["steps"], to_tensor)
    out = pipe(**pipeline_kwargs(request, generator, callback))
    if io.cancelled():
        raise RuntimeError("cancelled")
    latents = out.frames[0]  # [C, F, h, w] in the normalised latent space
    if request["cond"] is not None:
        latents[:, : request["cond"].shape[0]] = to_tensor(request["cond"].transpose(1, 0, 2, 3)).to(latents.dtype)
    if request["tail_frames"]:
        io.tail(np.ascontiguousarray(tail_latents(latents.float().cpu().numpy(), request["tail_frames"]), dtype=np.float32))
    vae = pipe.vae
    mean = torch.tensor(vae.config.latents_mean).view(1, vae.config.z_dim, 1, 1, 1).to(device, vae.dtype)
    std = 1.0 / torch.tensor(vae.config.latents_std).view(1, vae.config.z_dim, 1, 1, 1).to(device, vae.dtype)
    with torch.no_grad():
        video = vae.decode(latents.unsqueeze(0).to(vae.dtype) / std + mean, return_dict=False)[0]  # [1, 3, F, H, W]
    video = ((video[0].float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)  # [3, F, H, W]
    for f in range(request["frames"]):
        io.frame(f, video[:, f].permute(1, 2, 0).contiguous().cpu().numpy())
