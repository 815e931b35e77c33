#!/usr/bin/env bash
# The GPU check, in one go on a machine with an NVIDIA GPU (nvcc, gcc, make
# and a python3 with torch and transformers; no network and no Go needed):
#
# 1. cuda against ref: builds the cuda plugin and compares it with the ref
#    backend: segment 1 of a chain (720p, 121 frames, 30 steps, 37-frame
#    tail by default) and segment 2 conditioned on ref's tail, on both, with
#    the same prompt and with a new one (prompt travel: the conditioning's
#    drift fades out over the segment), an extension from prefix frames and
#    a talking head (segment 1's frames as the reference, a voice); then
#    cuda chained on its own tail.
#    Tolerances: decoded frames within 2 levels of 255 per channel, tail
#    latents within 1e-3 absolute, cuda's own chain seam exact. Prints a
#    table with both backends' times.
# 2. the python backend (skyreels_df.py, diffusers' SkyReels-V2 diffusion
#    forcing) on python3: the carried wheels (make gpu-wheels: diffusers,
#    ftfy, ...) installed into build/gpu-pydeps, the python plugin built
#    against python3, then windows through the worker's path (Go, the C
#    engine, the embedded interpreter: bin/spool-python-bench) and directly
#    (python/bench_direct.py), in turn:
#    a. gpu_tiny: the tiny pipeline (python/make_tiny_skyreels.py, made
#       here) on CUDA, 3 windows per path: the path works on a GPU;
#    b. gpu: the real SkyReels-V2-DF-1.3B-540P architecture
#       (python/configs/skyreels-v2-df-1.3b-540p) with random weights
#       (init=random) in bf16 at 960x544, 97-frame windows of STEPS steps,
#       2 timed per path: seconds per window and per step, peak GPU memory,
#       NVML utilisation, the ratio direct / worker (target >= 0.98).
#    Without the plugin (no Python.h or no shared libpython on the machine)
#    or without bin/spool-python-bench, b runs directly alone.
# Then a table of everything, and the exit status says whether all passed.
# Figures are merged into bench/results.json (keys gpu_tiny and gpu).
#
# Time on an H200: about 5 minutes, under 8. The cuda part and the setup
# take about 1.5 minutes (nvcc, the ref backend's 720p segments on the CPU,
# imports, the tiny runs). The 1.3B part is two engine loads (about 15 s
# each: imports, then UMT5-XXL's 5.7B and the transformer's 1.4B random
# weights made on the GPU) and 6 windows (a warm-up and 2 timed, per path).
# A window is its steps plus the VAE decode (float32, 97 frames at 960x544:
# 5 to 15 s). A step is two transformer passes (guidance) over
# 25x34x60 = 51,000 tokens, about 6e14 FLOP each, mostly attention
# (30 layers x 4 x 51,000^2 x 1536 = 4.8e14): about 3.4 s a step at
# 350 TFLOP/s (FlashAttention-2's rate on Hopper; the dense bf16 matrix
# rate measured on an H200 is 790). STEPS=8: 6 x (27 + 10) s + 40 s, about
# 4.5 minutes; at 5 s a step and 15 s a decode, 5.5 minutes, and the whole
# check about 7. GPU_CHECK_STEPS changes it (the figures per step do not
# depend on it).
#
# Usage:
#   libs/infer/gpu-check.sh [-w W -h H -f frames -s steps]  # all; the flags are the cuda part's
#   libs/infer/gpu-check.sh --self-test         # the cuda part's harness alone: ref against ref, no GPU
#   libs/infer/gpu-check.sh --self-test-python  # the python part on the CPU at tiny sizes, no GPU
# Environment: GPU_CHECK_STEPS (8), GPU_CHECK_BUDGET (540: seconds for
# everything; a benchmark still running 20 s before it is interrupted, so
# the table comes before the device's own limit), GPU_CHECK_OUT (a folder
# that gets the results as they come), PYTHON (python3; --self-test-python:
# the repository's .spool/venv/bin/python).
#
# Prepared on a machine with Go and the package registries, at the
# repository's root:
#   make build gpu-wheels
# then copy the checkout to the GPU machine with bin/spool-python-bench and
# .spool/gpu-wheels (about 13 MB; the rest of bin/ is not needed), and run
# there, from the repository's root:
#   set -o pipefail; GPU_CHECK_OUT=out/gpu libs/infer/gpu-check.sh 2>&1 | tee gpu-check.log
set -euo pipefail
cd "$(dirname "$0")"
INFER=$PWD
ROOT=$(cd ../.. && pwd)
BUILD=$INFER/build
# The harness is plain C: it builds (and must build) without CUDA.
make -s build/gpu_check
if [ "${1:-}" = "--self-test" ]; then
  shift
  exec ./build/gpu_check -b ref -w 256 -h 144 -f 25 -s 6 "$@"
fi

START=$(date +%s)
BUDGET=${GPU_CHECK_BUDGET:-540}  # seconds for everything; the benchmarks stop 20 s before it
DEADLINE=$(( START + BUDGET - 20 ))
STATUS=()  # "stage<TAB>PASS|FAIL<TAB>note" per stage, for the table
say() { printf '\n== [+%ds] %s\n' $(( $(date +%s) - START )) "$*"; }
record() { STATUS+=("$1"$'\t'"$2"$'\t'"${3:-}"); }
keep() { # keep FILE...: copies files into GPU_CHECK_OUT as they are made
  [ -n "${GPU_CHECK_OUT:-}" ] || return 0
  mkdir -p "$GPU_CHECK_OUT" && cp -f "$@" "$GPU_CHECK_OUT"/ 2>/dev/null || true
}

# cuda_part [gpu_check flags]: the cuda plugin against ref.
cuda_part() {
  if ! command -v "${NVCC:-nvcc}" >/dev/null; then
    echo "gpu-check: nvcc not found: install the CUDA toolkit or run in a CUDA devel image (the harness built; try --self-test)" >&2
    return 1
  fi
  if ! command -v nvidia-smi >/dev/null || ! nvidia-smi -L >/dev/null 2>&1; then
    echo "gpu-check: no NVIDIA GPU visible (nvidia-smi -L failed)" >&2
    return 1
  fi
  make --no-print-directory cuda cuda-check
  nvidia-smi -L
  SPOOL_INFER_PLUGIN_DIR="$BUILD" ./build/gpu_check -b cuda "$@"
}

# install_wheels: the carried wheels into $PYDEPS (pip --target, or unzipped
# where python3 has no pip); no wheels is fine where $PY has diffusers.
install_wheels() {
  local wheels=("$ROOT"/.spool/gpu-wheels/*.whl)
  rm -rf "$PYDEPS" && mkdir -p "$PYDEPS"
  if [ ! -e "${wheels[0]}" ]; then
    if "$PY" -c 'import diffusers, ftfy' 2>/dev/null; then
      echo "gpu-check: no wheels in .spool/gpu-wheels; $PY has diffusers and ftfy of its own"
      return 0
    fi
    echo "gpu-check: $PY lacks diffusers or ftfy and .spool/gpu-wheels has no wheels: run \"make gpu-wheels\" where a registry is reachable and carry .spool/gpu-wheels" >&2
    return 1
  fi
  if "$PY" -m pip --version >/dev/null 2>&1; then
    "$PY" -m pip install -q --no-index --no-deps --no-compile --disable-pip-version-check --target "$PYDEPS" "${wheels[@]}"
  else
    echo "gpu-check: $PY has no pip: unzipping the wheels into $PYDEPS"
    "$PY" - "$PYDEPS" "${wheels[@]}" <<'EOF'
import sys, zipfile
for wheel in sys.argv[2:]:
    zipfile.ZipFile(wheel).extractall(sys.argv[1])
EOF
  fi
  PYTHONPATH=$PYDEPS "$PY" -c 'import diffusers, ftfy, transformers, torch, huggingface_hub as h; print("gpu-check: torch %s (CUDA %s, %s), transformers %s, huggingface_hub %s, diffusers %s from %s" % (torch.__version__, torch.version.cuda, "a GPU" if torch.cuda.is_available() else "no GPU", transformers.__version__, h.__version__, diffusers.__version__, diffusers.__file__.rsplit("/", 2)[0]))'
}

# build_plugin: the python plugin against $PY (its headers and a shared libpython).
build_plugin() {
  local exe inc libdir soname shared
  read -r exe inc libdir soname shared < <("$PY" -c 'import sys, sysconfig as s; v = s.get_config_var; print(sys.executable, s.get_paths()["include"], v("LIBDIR"), v("INSTSONAME"), v("Py_ENABLE_SHARED"))')
  if [ ! -f "$inc/Python.h" ]; then
    echo "gpu-check: $inc/Python.h not found: $exe has no C headers (Debian/Ubuntu: python3-dev), so the python plugin cannot be built and the worker's path is not measured" >&2
    return 1
  fi
  if [ "$shared" != 1 ] || { [ ! -e "$libdir/$soname" ] && ! ldconfig -p 2>/dev/null | grep -qF "$soname"; }; then
    echo "gpu-check: $exe has no shared libpython ($libdir/$soname, Py_ENABLE_SHARED=$shared): the plugin embeds one, so the worker's path is not measured" >&2
    return 1
  fi
  make --no-print-directory python PYTHON="$exe"
}

# make_tiny: the tiny pipeline in $TINY and a copy of its configurations alone in $TINY_CONFIGS.
make_tiny() {
  PYTHONPATH=$PYDEPS "$PY" -W ignore "$INFER/python/make_tiny_skyreels.py" "$TINY" >/dev/null
  rm -rf "$TINY_CONFIGS"
  local f
  for f in model_index.json transformer/config.json vae/config.json text_encoder/config.json scheduler/scheduler_config.json; do
    install -D -m 644 "$TINY/$f" "$TINY_CONFIGS/$f"
  done
}

# within COMMAND...: runs COMMAND in what is left of the budget (interrupted
# then, so that the table still comes before the device's own limit).
within() {
  local left=$(( DEADLINE - $(date +%s) ))
  if [ $left -lt 30 ]; then
    echo "gpu-check: out of time: ${left}s left of the ${BUDGET}s budget (GPU_CHECK_BUDGET)" >&2
    return 1
  fi
  timeout -s INT -k 15 $left "$@"
}

# bench KEY FLAGS...: spool-python-bench's figures under KEY in $RESULTS.
bench() {
  local key=$1
  shift
  within "$BENCH_BIN" -root "$ROOT" -python "$PY" -extra-path "$PYDEPS" -o "$RESULTS" -key "$key" "$@" \
    2> >(grep -v -e 'Warning' -e 'warn(' >&2)
}

# direct KEY FLAGS...: bench_direct.py alone (no plugin), its JSON in $BUILD/direct-KEY.json.
direct() {
  local key=$1
  shift
  PYTHONPATH=$PYDEPS HF_HUB_OFFLINE=1 within "$PY" -W ignore "$INFER/python/bench_direct.py" "$@" > "$BUILD/direct-$key.json"
  cat "$BUILD/direct-$key.json"
}

# stage NAME COMMAND...: runs one stage in a subshell that stops at its
# first failing command, records PASS or FAIL and leaves its status in
# STAGE_RC; the check goes on. (Never call it as a condition: bash then
# ignores set -e inside it.)
stage() {
  local name=$1 rc
  shift
  say "$name"
  set +e
  (set -e; "$@")
  rc=$?
  set -e
  if [ $rc = 0 ]; then record "$name" PASS; else record "$name" FAIL "exit $rc"; fi
  [ ! -f "$RESULTS" ] || keep "$RESULTS"
  STAGE_RC=$rc
}

# python_part DEVICE: the python backend's stages on DEVICE (-1: the CPU, tiny sizes).
python_part() {
  local device=$1 plugin=1
  PYDEPS=$BUILD/gpu-pydeps TINY=$BUILD/tiny TINY_CONFIGS=$BUILD/tiny-configs
  CONFIGS=$INFER/python/configs/skyreels-v2-df-1.3b-540p
  BENCH_BIN=$ROOT/bin/spool-python-bench
  export HF_HUB_OFFLINE=1 HF_HUB_DISABLE_PROGRESS_BARS=1 TQDM_DISABLE=1 PYTHONUNBUFFERED=1
  if ! command -v "$PY" >/dev/null; then
    echo "gpu-check: no python interpreter $PY (set PYTHON)" >&2
    record "python backend" FAIL "no $PY"
    return
  fi
  PY=$(command -v "$PY")
  # The plugin links libpython; a python3 of its own prefix (uv's, say) has it outside the loader's paths.
  local libdir
  libdir=$("$PY" -c 'import sysconfig; print(sysconfig.get_config_var("LIBDIR") or "")')
  [ -z "$libdir" ] || export LD_LIBRARY_PATH=$libdir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
  stage "wheels into build/gpu-pydeps" install_wheels
  [ $STAGE_RC = 0 ] || return 0
  stage "python plugin against $PY" build_plugin
  [ $STAGE_RC = 0 ] || plugin=0
  if [ ! -x "$BENCH_BIN" ] && command -v go >/dev/null; then
    (cd "$ROOT" && go build -o bin/ ./libs/infer/cmd/spool-python-bench)
  fi
  if [ ! -x "$BENCH_BIN" ] || ! "$BENCH_BIN" -h >/dev/null 2>&1; then
    echo "gpu-check: $BENCH_BIN missing or not runnable here: build it where Go is (go build -o bin/ ./libs/infer/cmd/spool-python-bench) and carry bin/spool-python-bench" >&2
    record "bin/spool-python-bench" FAIL "missing"
    plugin=0
  fi
  stage "tiny pipeline into build/tiny" make_tiny
  [ $STAGE_RC = 0 ] || return 0
  if [ "$device" -ge 0 ]; then
    if [ $plugin = 1 ]; then
      stage "gpu_tiny: tiny pipeline on GPU $device" bench gpu_tiny -device "$device" -model-dir "$TINY" -windows 3 -rounds 1
      stage "gpu: SkyReels-V2-DF-1.3B-540P, random weights, 960x544, 97 frames, $STEPS steps" \
        bench gpu -device "$device" -model-dir "$CONFIGS" -model skyreels-v2-df-1.3b-540p -params init=random \
        -width 960 -height 544 -frames 97 -steps "$STEPS" -windows 2 -rounds 1 -slots 1
    else
      stage "gpu (direct only): SkyReels-V2-DF-1.3B-540P, random weights, 960x544, 97 frames, $STEPS steps" \
        direct gpu --model "$CONFIGS" --params init=random --device "$device" --width 960 --height 544 \
        --frames 97 --steps "$STEPS" --n 2 --warmup 1
      keep "$BUILD/direct-gpu.json"
    fi
  else
    if [ $plugin = 1 ]; then
      stage "cpu_tiny: tiny pipeline on the CPU" bench cpu_tiny -device -1 -model-dir "$TINY" -windows 2 -rounds 1 -slots 1
      stage "cpu_random: tiny configurations, init=random, on the CPU" \
        bench cpu_random -device -1 -model-dir "$TINY_CONFIGS" -params init=random -windows 2 -rounds 1 -slots 1
      stage "configurations without init=random are refused" refused
    fi
    stage "direct only (the fallback): tiny configurations, init=random" \
      direct cpu_direct --model "$TINY_CONFIGS" --params init=random --device -1 --deterministic --n 2 --warmup 1
  fi
}

# refused: the engine refuses a folder of configurations without init=random, naming it.
refused() {
  local out
  if out=$("$BENCH_BIN" -root "$ROOT" -python "$PY" -extra-path "$PYDEPS" -o "$BUILD/refused.json" -key refused \
    -device -1 -model-dir "$TINY_CONFIGS" -windows 1 -rounds 1 -slots 1 2>&1); then
    echo "gpu-check: a folder of configurations ran without init=random" >&2
    return 1
  fi
  grep -o 'skyreels_df: [^:]* holds configurations only[^"]*init=random' <<<"$out" | head -1 | grep . || {
    echo "$out" | tail -5 >&2
    return 1
  }
}

# table: every stage's status and the python figures of $RESULTS and the direct-only runs.
table() {
  say "summary"
  "$PY" - "$RESULTS" "$BUILD" "${STATUS[@]}" <<'EOF' || printf '%s\n' "${STATUS[@]}"
import glob, json, os, sys
results, build, status = sys.argv[1], sys.argv[2], sys.argv[3:]
print("%-4s  %s" % ("", "stage"))
for line in status:
    name, verdict, note = (line.split("\t") + ["", ""])[:3]
    print("%-4s  %s%s" % (verdict, name, "  (%s)" % note if note else ""))
figures = {}
if os.path.isfile(results):
    with open(results) as f:
        figures = {k: v for k, v in json.load(f).items() if isinstance(v, dict) and "worker_s_per_window" in v}
for path in sorted(glob.glob(os.path.join(build, "direct-*.json"))):
    key = os.path.basename(path)[len("direct-"):-len(".json")]
    try:
        with open(path) as f:
            d = json.load(f)
    except ValueError:
        continue
    figures[key + " (direct only)"] = {"model": d["model"], "width": d["width"], "height": d["height"],
        "frames": d["frames"], "steps": d["steps"], "direct_s_per_window": d["seconds_per_window"],
        "direct_denoise_s_per_step": d.get("denoise_seconds_per_step"), "direct_decode_s": d.get("decode_seconds"),
        "direct_peak_mem_mib": d.get("peak_mem_mib", 0), "direct_load_s": d["load_seconds"]}
keys = [k for k in ("cpu_tiny", "cpu_random", "gpu_tiny", "gpu") if k in figures]
keys += sorted(k for k in figures if k not in keys and k != "python")
if not keys:
    sys.exit(0)
def num(v, fmt):
    return fmt % v if isinstance(v, (int, float)) and v else "-"
rows = [("key", "size", "steps", "worker s/win", "direct s/win", "ratio", "s/step", "decode s", "NVML peak MiB",
         "torch peak MiB", "util %", "open s", "model")]
for k in keys:
    f = figures[k]
    rows.append((k, "%dx%dx%d" % (f["width"], f["height"], f["frames"]), str(f["steps"]),
                 num(f.get("worker_s_per_window"), "%.3f"), num(f.get("direct_s_per_window"), "%.3f"),
                 num(f.get("ratio"), "%.3f"), num(f.get("direct_denoise_s_per_step"), "%.3f"),
                 num(f.get("direct_decode_s"), "%.3f"), num(f.get("gpu_peak_mem_mib"), "%.0f"),
                 num(f.get("direct_peak_mem_mib"), "%.0f"), num(f.get("gpu_util_pct"), "%.1f"),
                 " ".join("%.1f" % s for s in f.get("open_s_per_slot", [])) or num(f.get("direct_load_s"), "%.1f"),
                 f["model"]))
widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
print()
for r in rows:
    print("  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths))) + "  " + r[-1])
print("\nratio = direct / worker seconds per window (target >= 0.98 on a GPU, >= 0.95 on the CPU); s/step and "
      "decode s = the direct path's seconds per denoise step (two transformer passes with guidance) and per VAE "
      "decode of a window; NVML peak = GPU memory used during the worker's windows; torch peak = bench_direct's "
      "max_memory_allocated during its windows; util = NVML's mean GPU utilisation during the worker's windows; "
      "open s = each worker slot's engine open (the direct load when direct only)")
EOF
}

if [ "${1:-}" = "--self-test-python" ]; then
  shift
  PY=${PYTHON:-$ROOT/.spool/venv/bin/python}
  [ -x "$PY" ] || PY=python3
  RESULTS=$BUILD/gpu-check-self-test.json
  STEPS=4
  rm -f "$RESULTS" "$BUILD"/direct-*.json
  python_part -1
else
  PY=${PYTHON:-python3}
  RESULTS=$ROOT/bench/results.json
  STEPS=${GPU_CHECK_STEPS:-8}
  rm -f "$BUILD"/direct-*.json
  mkdir -p "$ROOT/bench"
  stage "cuda against ref" cuda_part "$@"
  python_part 0
fi
table
keep "$RESULTS"
say "done"
for s in "${STATUS[@]}"; do
  case $s in *$'\t'FAIL*) exit 1 ;; esac
done
