"""Seconds per window of SkyReels-V2 diffusion forcing run directly with
diffusers, without spool: the baseline of `make bench BENCH=python` (the
worker path's seconds per window over these).

    python bench_direct.py [--model DIR] [--n 5] [--warmup 1] [--frames 17]
        [--width 128] [--height 64] [--steps 4] [--guidance 5] [--shift 8]
        [--fps 24] [--device -1] [--deterministic] [--threads N]
        [--params 'init=random;dtype=bfloat16']

prints one JSON object: seconds_per_window (the median), mean, min, max,
every run's seconds, decode_seconds (the median of the windows' VAE
decodes), denoise_seconds_per_step (the median of each window's seconds
without its decode, over its steps: the text encoder's share included),
peak_mem_mib (the most GPU memory torch held allocated during the windows,
weights included, in MiB; 0 on the CPU), and what ran. --params are engine parameters as the worker gives them
(k=v;k=v): init=random builds the model from a folder of configurations
with random weights, dtype sets the transformer's and text encoder's.

A window is what skyreels_df.py does for an unconditioned segment of the
same request, minus spool: the pipeline loaded (or built, init=random) by
the same function (dtype, scheduler shift), called with the arguments
skyreels_df.pipeline_kwargs builds (a step callback that does nothing in
place of progress and cancel), then the whole window decoded by
AutoencoderKLWan.decode as the pipeline decodes it, to uint8 frames. The
pipeline is loaded once, before the timed runs, as a worker loads it at
open.
"""

import argparse
import json
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import skyreels_df as df  # noqa: E402

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
TINY = os.path.join(ROOT, ".spool", "models", "skyreels-v2-df-tiny")


def request(args):
    """The request a spool worker would give skyreels_df for this window."""
    return {"prompt": args.prompt, "seed": args.seed, "width": args.width, "height": args.height,
            "frames": args.frames, "overlap": 0, "steps": args.steps, "guidance": args.guidance,
            "first_frame": 0, "tail_frames": 0, "cond": None, "fps": args.fps}


def window(pipe, req, device, decode_seconds=None):
    """One window, directly: the pipeline's call, then its decode, to uint8
    frames. decode_seconds, a list, gets the decode's seconds (the device
    synchronised before it: the decode's own .cpu() would wait as long)."""
    import torch

    def on_step_end(pipe, i, t, kwargs):
        return {}

    generator = torch.Generator(device=device).manual_seed(req["seed"])
    latents = pipe(**df.pipeline_kwargs(req, generator, on_step_end)).frames
    if decode_seconds is not None and device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    vae = pipe.vae
    with torch.no_grad():
        std = 1.0 / torch.tensor(vae.config.latents_std).view(1, vae.config.z_dim, 1, 1, 1).to(device)
        mean = torch.tensor(vae.config.latents_mean).view(1, vae.config.z_dim, 1, 1, 1).to(device)
        video = vae.decode(latents.to(vae.dtype) / std + mean, return_dict=False)[0]
        video = ((video * 0.5 + 0.5).clamp(0, 1) * 255).round().to(torch.uint8)
    frames = video[0, :, :, : req["height"], : req["width"]].permute(1, 2, 3, 0).cpu().numpy()
    if decode_seconds is not None:
        decode_seconds.append(time.perf_counter() - start)
    assert frames.shape[0] == req["frames"]
    return frames


def parse_params(text):
    """Engine parameters k=v;k=v (the worker's form) as a dict."""
    params = {}
    for item in (text or "").split(";"):
        if not item.strip():
            continue
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ValueError("bench_direct: --params %r: %r is not k=v" % (text, item))
        params[key.strip()] = value.strip()
    return params


def bench(args):
    import torch

    import diffusers  # noqa: F401 - imported before load_seconds starts

    params = parse_params(args.params)
    if args.deterministic:
        params["deterministic"] = "1"
    if args.threads:
        params["threads"] = str(args.threads)
    deterministic = df.configure(params, args.device)
    source = df.weights_source(dict(params, weights_dir=args.model))
    dtype = df.torch_dtype(params, args.device)
    t = time.perf_counter()
    pipe = df.build_pipeline(source, args.device, args.shift, dtype, params)
    load = time.perf_counter() - t
    device = torch.device("cuda:%d" % args.device if args.device >= 0 else "cpu")
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)  # the windows' peak, not the load's
    req = request(args)
    for _ in range(args.warmup):
        window(pipe, req, device)
    runs, decodes = [], []
    for _ in range(args.n):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        t = time.perf_counter()
        window(pipe, req, device, decodes)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        runs.append(time.perf_counter() - t)
    peak = torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else 0
    return {
        "seconds_per_window": statistics.median(runs), "mean": statistics.fmean(runs), "min": min(runs),
        "max": max(runs), "runs": runs, "n": args.n, "warmup": args.warmup, "load_seconds": load,
        "decode_seconds": statistics.median(decodes),
        "denoise_seconds_per_step": statistics.median((r - d) / args.steps for r, d in zip(runs, decodes)),
        "peak_mem_mib": peak, "model": df.model_version(source, pipe, dtype, df.init_random(params)),
        "frames": args.frames, "width": args.width, "height": args.height, "steps": args.steps,
        "guidance": args.guidance, "shift": args.shift, "device": args.device, "deterministic": deterministic, "torch_threads": torch.get_num_threads(),
    }


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    p.add_argument("--model", default=os.environ.get("SPOOL_TINY_MODEL") or TINY, help="a diffusers model folder")
    p.add_argument("--n", type=int, default=5, help="timed windows")
    p.add_argument("--warmup", type=int, default=1, help="windows run first, untimed")
    p.add_argument("--frames", type=int, default=17)
    p.add_argument("--width", type=int, default=128)
    p.add_argument("--height", type=int, default=64)
    p.add_argument("--steps", type=int, default=4)
    p.add_argument("--guidance", type=float, default=5.0)
    p.add_argument("--shift", type=float, default=8.0)
    p.add_argument("--fps", type=int, default=24)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--prompt", default="a lighthouse in a storm")
    p.add_argument("--device", type=int, default=-1, help="a CUDA device index, -1 for the CPU")
    p.add_argument("--deterministic", action="store_true", help="as an engine with deterministic=1")
    p.add_argument("--threads", type=int, default=0, help="torch threads (deterministic: 1 unless given)")
    p.add_argument("--params", default="", help="engine parameters k=v;k=v, e.g. init=random (see skyreels_df)")
    args = p.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    print(json.dumps(bench(args)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
