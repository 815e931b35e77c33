/*
 * cuda.cu - the cuda backend: the ref algorithm (backends/ref/ref.c) on an
 * NVIDIA GPU, built by `make -C libs/infer cuda` into
 * libspool_infer_cuda.so and loaded by the engine with dlopen.
 *
 * The math is ref's, step for step, so its frames match ref's within a
 * stated tolerance (device expf/sinf and float rounding differ from glibc's):
 * latents within 1e-3 absolute, decoded frames within 2 levels of 255 per
 * channel. gpu-check.sh measures both and times the two backends.
 *
 * Layout on the device: latents [frames][C][h][w]. The denoise step runs one
 * thread per latent cell looping over frames in order, which is exactly the
 * causal temporal coupling of ref (frame f reads frame f-1 of the same step).
 * A conditioned segment continues from its prefix as ref's does: the last
 * prefix frame's drift from the scene fades out over the new frames by
 * ref_keep (scene.h), computed on the host so both backends use the same
 * factor.
 *
 * Prefix frames (a segment that starts from media) are encoded as ref
 * encodes them, one thread per latent cell of each prefix frame: the inverse
 * tone curve, the 8×8 box average in the same order, and the pseudo-inverse
 * of the channel mix, with the tables of scene.h's ref_make_tables (computed
 * on the host by the same code as ref's); the latents then condition the
 * segment as a tail state's do.
 *
 * The talking head (reference frames given) is ref's too: the mouth's
 * opening per frame comes from the frame's own samples on the host, by
 * scene.h's ref_mouth_opening (the same code as ref's), and one thread per
 * latent cell paints the mouth over its reference pixels and encodes them
 * with scene.h's ref_encode_cell, the code ref runs, in the scene's stead.
 */
#include <cuda_runtime.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern "C" {
#include "internal.h"
}
#include "../ref/scene.h"

typedef ref_scene scene;

__global__ void k_noise(float *lat, size_t fsz, uint32_t O, uint32_t F, uint64_t seed) {
  size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x;
  if (i >= fsz) return;
  for (uint32_t f = O; f < F; f++) lat[(size_t)f * fsz + i] = unit(mix64(seed ^ mix64(f + 1)), i);
}

/* scene(t) into out [C][h][w]. mode 1 adds it to out, plus keep × src when
 * src is not NULL (a new frame: residual + scene + the fading drift of the
 * conditioning); mode -1 subtracts it from src into out (the drift of the
 * last conditioning frame). */
__global__ void k_scene(scene sc, int64_t t, uint32_t h, uint32_t w, float *out, const float *src, float keep,
                        int mode) {
  size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x, plane = (size_t)h * w;
  if (i >= plane * REF_C) return;
  int c = (int)(i / plane);
  uint32_t y = (uint32_t)((i % plane) / w), x = (uint32_t)(i % w);
  float v = sc.bg[c] + sc.grad[c] * ((float)y / (float)h - 0.5f);
  float ft = ref_clock(t), dim = (float)(h < w ? h : w);
  for (int b = 0; b < REF_BLOBS; b++) {
    float cx = (0.5f + 0.35f * sinf(sc.wx[b] * ft + sc.px[b])) * (float)w;
    float cy = (0.5f + 0.30f * sinf(sc.wy[b] * ft + sc.py[b])) * (float)h;
    float inv = 1.0f / (2.0f * (sc.size[b] * dim) * (sc.size[b] * dim));
    float gy = expf(-((float)y - cy) * ((float)y - cy) * inv), gx = expf(-((float)x - cx) * ((float)x - cx) * inv);
    v += sc.amp[b][c] * gy * gx;
  }
  if (mode > 0) out[i] += src ? v + keep * src[i] : v;
  else out[i] = src[i] - v;
}

/* One denoise step: a new frame is coupled to the previous new frame; the
 * first new frame to none (the conditioning enters through the drift). */
__global__ void k_step(float *lat, size_t fsz, uint32_t O, uint32_t F, float ratio, float kappa) {
  size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x;
  if (i >= fsz) return;
  for (uint32_t f = O; f < F; f++) {
    float *r = lat + (size_t)f * fsz;
    if (f > O) {
      const float *p = r - fsz;
      r[i] = r[i] * ratio + kappa * (p[i] - r[i]);
    } else {
      r[i] = r[i] * ratio;
    }
  }
}

/* The latents of prefix frames: thread i is latent cell i % plane of prefix
 * frame i / plane, encoded by ref_encode_cell (scene.h) as ref.c's
 * task_encode does. tone (256), pinv (REF_C × 3) and bias (3) are
 * ref_tables'. */
__global__ void k_encode(const uint8_t *prefix, float *lat, const float *tone, const float *pinv, const float *bias,
                         uint32_t O, uint32_t h, uint32_t w, uint32_t H, uint32_t W) {
  size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x, plane = (size_t)h * w;
  if (i >= plane * O) return;
  size_t f = i / plane, cell = i % plane;
  const uint8_t *rgb = prefix + f * (size_t)H * W * 3;
  ref_encode_cell(tone, pinv, bias, rgb, W, H, (uint32_t)(cell % w), (uint32_t)(cell / w), 0.0f,
                  lat + f * plane * REF_C + cell, plane);
}

/* The talking head's scene of one frame: its reference frame rgb with the
 * mouth at opening mouth, encoded (ref_encode_cell), one thread per latent
 * cell; modes as k_scene's: 1 adds it to out (plus keep × src when src is
 * not NULL), -1 subtracts it from src into out. */
__global__ void k_talk(const uint8_t *rgb, float mouth, const float *tone, const float *pinv, const float *bias,
                       uint32_t h, uint32_t w, uint32_t H, uint32_t W, float *out, const float *src, float keep,
                       int mode) {
  size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x, plane = (size_t)h * w;
  if (i >= plane) return;
  float v[REF_C];
  ref_encode_cell(tone, pinv, bias, rgb, W, H, (uint32_t)(i % w), (uint32_t)(i / w), mouth, v, 1);
  for (int c = 0; c < REF_C; c++) {
    size_t k = c * plane + i;
    if (mode > 0) out[k] += src ? v[c] + keep * src[k] : v[c];
    else out[k] = src[k] - v[c];
  }
}

__global__ void k_mix(const float *lat, float *lrgb, size_t plane, const float *mix, const float *bias) {
  size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x;
  if (i >= plane) return;
  for (int ch = 0; ch < 3; ch++) {
    float o = bias[ch];
    for (int c = 0; c < REF_C; c++) o += mix[ch * REF_C + c] * lat[c * plane + i];
    lrgb[ch * plane + i] = o;
  }
}

__global__ void k_upsample(const float *lrgb, uint8_t *rgb, const uint8_t *lut, uint32_t h, uint32_t w, uint32_t H,
                           uint32_t W) {
  uint32_t X = blockIdx.x * blockDim.x + threadIdx.x, Y = blockIdx.y;
  if (X >= W || Y >= H) return;
  size_t plane = (size_t)h * w;
  float fx = ((float)X + 0.5f) / REF_SCALE - 0.5f, fy = ((float)Y + 0.5f) / REF_SCALE - 0.5f;
  if (fx < 0) fx = 0;
  if (fy < 0) fy = 0;
  uint32_t x0 = (uint32_t)fx, y0 = (uint32_t)fy;
  uint32_t y1 = y0 + 1 < h ? y0 + 1 : h - 1;
  if (y0 >= h) y0 = h - 1;
  float a = x0 >= w - 1 ? 0.0f : fx - (float)x0, b = y0 == y1 ? 0.0f : fy - (float)y0;
  uint32_t xa = x0 >= w - 1 ? w - 1 : x0, xb = x0 >= w - 1 ? w - 1 : x0 + 1;
  for (int ch = 0; ch < 3; ch++) {
    const float *r0 = lrgb + ch * plane + (size_t)y0 * w, *r1 = lrgb + ch * plane + (size_t)y1 * w;
    float h0 = r0[xa] * (1.0f - a) + r0[xb] * a, h1 = r1[xa] * (1.0f - a) + r1[xb] * a;
    float v = h0 * (1.0f - b) + h1 * b;
    int idx = (int)((v + 4.0f) * (REF_LUT / 8.0f));
    idx = idx < 0 ? 0 : idx >= REF_LUT ? REF_LUT - 1 : idx;
    rgb[((size_t)Y * W + X) * 3 + ch] = lut[idx];
  }
}

struct cuda_state {
  int device;
  char model[64], version[96];
  float *lat = nullptr, *drift = nullptr, *lrgb = nullptr, *mix = nullptr, *bias = nullptr;
  float *tone = nullptr, *pinv = nullptr;
  uint8_t *rgb = nullptr, *lut = nullptr, *host_rgb = nullptr, *tail = nullptr, *prefix = nullptr;
  uint8_t *reference = nullptr; /* the talking head's reference frames O − 1 (or 0) .. F − 1 */
  float *host_lat = nullptr, *mouth = nullptr; /* mouth: the opening per frame, on the host */
  size_t lat_cap = 0, frame_cap = 0, rgb_cap = 0, tail_cap = 0, host_lat_cap = 0, prefix_cap = 0;
  size_t reference_cap = 0, mouth_cap = 0;
  ref_tables tab; /* on the host; uploaded at open */
};

#define CU(call)                                                                                   \
  do {                                                                                             \
    cudaError_t e_ = (call);                                                                       \
    if (e_ != cudaSuccess) {                                                                       \
      snprintf(err, errlen, "cuda: %s: %s", #call, cudaGetErrorString(e_));                        \
      return SPOOL_ERR_DEVICE;                                                                     \
    }                                                                                              \
  } while (0)

static spool_status grow_dev(void **p, size_t *cap, size_t need, char *err, size_t errlen) {
  if (need <= *cap) return SPOOL_OK;
  if (*p) cudaFree(*p);
  *p = nullptr;
  *cap = 0;
  CU(cudaMalloc(p, need));
  *cap = need;
  return SPOOL_OK;
}

static void c_close(void *state);

/* The decode tables (LUT, channel mix, bias) and the encoder's (inverse
 * tone, pseudo-inverse of the mix) onto the device. */
static spool_status upload_tables(cuda_state *s, char *err, size_t errlen) {
  const ref_tables *t = &s->tab;
  CU(cudaMalloc(&s->lut, REF_LUT));
  CU(cudaMalloc(&s->mix, sizeof t->mix));
  CU(cudaMalloc(&s->bias, sizeof t->bias));
  CU(cudaMalloc(&s->tone, sizeof t->tone));
  CU(cudaMalloc(&s->pinv, sizeof t->pinv));
  CU(cudaMemcpy(s->lut, t->lut, REF_LUT, cudaMemcpyHostToDevice));
  CU(cudaMemcpy(s->mix, t->mix, sizeof t->mix, cudaMemcpyHostToDevice));
  CU(cudaMemcpy(s->bias, t->bias, sizeof t->bias, cudaMemcpyHostToDevice));
  CU(cudaMemcpy(s->tone, t->tone, sizeof t->tone, cudaMemcpyHostToDevice));
  CU(cudaMemcpy(s->pinv, t->pinv, sizeof t->pinv, cudaMemcpyHostToDevice));
  return SPOOL_OK;
}

static spool_status c_open(const spool_engine_options *o, void **state, char *err, size_t errlen) {
  int n = 0;
  cudaError_t e = cudaGetDeviceCount(&n);
  /* No GPU, or no driver at all (the runtime reads a missing libcuda.so.1 as
   * an insufficient driver): the ordinary failure of a machine without one. */
  if (e == cudaErrorNoDevice || e == cudaErrorInsufficientDriver || (e == cudaSuccess && n == 0)) {
    snprintf(err, errlen, "cuda: no CUDA device: %s", e == cudaSuccess ? "none present" : cudaGetErrorString(e));
    return SPOOL_ERR_DEVICE;
  }
  if (e != cudaSuccess) {
    snprintf(err, errlen, "cuda: cudaGetDeviceCount: %s", cudaGetErrorString(e));
    return SPOOL_ERR_DEVICE;
  }
  int dev = o->device < 0 ? 0 : o->device;
  if (dev >= n) {
    snprintf(err, errlen, "cuda: device %d requested, %d present", dev, n);
    return SPOOL_ERR_DEVICE;
  }
  CU(cudaSetDevice(dev));
  cuda_state *s = new cuda_state();
  s->device = dev;
  snprintf(s->model, sizeof s->model, "%s", o->model && *o->model ? o->model : "ref");
  cudaDeviceProp prop;
  cudaGetDeviceProperties(&prop, dev);
  snprintf(s->version, sizeof s->version, REF_VERSION " on %.80s", prop.name);
  ref_make_tables(&s->tab);
  spool_status st = upload_tables(s, err, errlen);
  if (st != SPOOL_OK) {
    c_close(s); /* frees what was allocated before the failure */
    return st;
  }
  *state = s;
  return SPOOL_OK;
}

static void c_close(void *state) {
  cuda_state *s = (cuda_state *)state;
  if (!s) return;
  cudaFree(s->lat);
  cudaFree(s->drift);
  cudaFree(s->lrgb);
  cudaFree(s->rgb);
  cudaFree(s->lut);
  cudaFree(s->mix);
  cudaFree(s->bias);
  cudaFree(s->tone);
  cudaFree(s->pinv);
  cudaFree(s->prefix);
  cudaFree(s->reference);
  cudaFreeHost(s->host_rgb);
  free(s->host_lat);
  free(s->mouth);
  free(s->tail);
  delete s;
}

static void c_info(void *state, spool_engine_info *info) {
  cuda_state *s = (cuda_state *)state;
  info->model = s->model;
  info->model_version = s->version;
  info->latent_channels = REF_C;
  info->latent_scale = REF_SCALE;
  info->frame_align = 1;
}

static unsigned blocks(size_t n) { return (unsigned)((n + 255) / 256); }

static spool_status c_run(void *state, const spool_request *req, const spool_callbacks *cb, const int32_t *cancel,
                          char *err, size_t errlen) {
  cuda_state *s = (cuda_state *)state;
  if (req->audio_rate && !req->reference) {
    snprintf(err, errlen, "audio: the cuda backend animates a reference with audio; audio without reference frames "
                          "has nothing to drive");
    return SPOOL_ERR_INVALID_ARGUMENT;
  }
  CU(cudaSetDevice(s->device));
  const uint32_t W = req->width, H = req->height, F = req->frames, O = req->cond || req->prefix ? req->overlap : 0;
  const uint32_t h = (H + REF_SCALE - 1) / REF_SCALE, w = (W + REF_SCALE - 1) / REF_SCALE;
  const size_t plane = (size_t)h * w, fsz = plane * REF_C, total = fsz * F;
  spool_status st;
  if ((st = grow_dev((void **)&s->lat, &s->lat_cap, total * 4, err, errlen)) != SPOOL_OK) return st;
  size_t fcap = s->frame_cap;
  if ((st = grow_dev((void **)&s->drift, &fcap, fsz * 4, err, errlen)) != SPOOL_OK) return st;
  fcap = s->frame_cap;
  if ((st = grow_dev((void **)&s->lrgb, &fcap, fsz * 4, err, errlen)) != SPOOL_OK) return st;
  s->frame_cap = fcap;
  if (s->rgb_cap < (size_t)W * H * 3) {
    cudaFree(s->rgb);
    cudaFreeHost(s->host_rgb);
    CU(cudaMalloc(&s->rgb, (size_t)W * H * 3));
    CU(cudaMallocHost(&s->host_rgb, (size_t)W * H * 3));
    s->rgb_cap = (size_t)W * H * 3;
  }
  scene sc;
  make_scene(&sc, req->prompt);
  if (req->prefix) {
    if ((st = grow_dev((void **)&s->prefix, &s->prefix_cap, req->prefix_len, err, errlen)) != SPOOL_OK) return st;
    CU(cudaMemcpy(s->prefix, req->prefix, req->prefix_len, cudaMemcpyHostToDevice));
    k_encode<<<blocks((size_t)O * plane), 256>>>(s->prefix, s->lat, s->tone, s->pinv, s->bias, O, h, w, H, W);
    CU(cudaGetLastError());
  } else if (O) {
    if (s->host_lat_cap < (size_t)O * fsz) {
      free(s->host_lat);
      s->host_lat = (float *)malloc((size_t)O * fsz * 4);
      s->host_lat_cap = s->host_lat ? (size_t)O * fsz : 0;
      if (!s->host_lat) return SPOOL_ERR_OUT_OF_MEMORY;
    }
    spool_tail_view v;
    if ((st = spool_tail_parse(req->cond, req->cond_len, &v, s->host_lat, (size_t)O * fsz, err, errlen)) != SPOOL_OK)
      return st;
    CU(cudaMemcpy(s->lat, s->host_lat, (size_t)O * fsz * 4, cudaMemcpyHostToDevice));
  }
  /* The talking head: its reference frames from the last conditioning one
   * on, and each frame's mouth opening from its own samples (ref's code). */
  const uint32_t r0 = O ? O - 1 : 0;
  const size_t fb = (size_t)W * H * 3;
  if (req->reference) {
    if ((st = grow_dev((void **)&s->reference, &s->reference_cap, (F - r0) * fb, err, errlen)) != SPOOL_OK) return st;
    CU(cudaMemcpy(s->reference, req->reference + r0 * fb, (F - r0) * fb, cudaMemcpyHostToDevice));
    if (s->mouth_cap < F) {
      float *m = (float *)realloc(s->mouth, F * sizeof(float));
      if (!m) return SPOOL_ERR_OUT_OF_MEMORY;
      s->mouth = m, s->mouth_cap = F;
    }
    int64_t base = req->audio_rate ? spool_sample_at(req->first_frame, req->fps, req->audio_rate) : 0;
    for (uint32_t f = 0; f < F; f++) {
      s->mouth[f] = 0.0f;
      if (!req->audio) continue;
      int64_t t = req->first_frame + (int64_t)f;
      size_t a = (size_t)(spool_sample_at(t, req->fps, req->audio_rate) - base);
      size_t b = (size_t)(spool_sample_at(t + 1, req->fps, req->audio_rate) - base);
      s->mouth[f] = ref_mouth_opening(req->audio + a, b - a);
    }
  }
  if (O && req->reference)
    k_talk<<<blocks(plane), 256>>>(s->reference, s->mouth[O - 1], s->tone, s->pinv, s->bias, h, w, H, W, s->drift,
                                   s->lat + (size_t)(O - 1) * fsz, 0.0f, -1);
  else if (O)
    k_scene<<<blocks(fsz), 256>>>(sc, req->first_frame + O - 1, h, w, s->drift, s->lat + (size_t)(O - 1) * fsz, 0.0f,
                                  -1);
  k_noise<<<blocks(fsz), 256>>>(s->lat, fsz, O, F, req->seed);
  CU(cudaGetLastError());
  for (uint32_t step = 0; step < req->steps; step++) {
    if (cancel && __atomic_load_n(cancel, __ATOMIC_RELAXED)) {
      snprintf(err, errlen, "cancelled at denoise step %u of %u", step, req->steps);
      return SPOOL_ERR_CANCELLED;
    }
    float ratio = ref_sigma(step + 1, req->steps, req->guidance) / ref_sigma(step, req->steps, req->guidance);
    k_step<<<blocks(fsz), 256>>>(s->lat, fsz, O, F, ratio, REF_KAPPA);
    CU(cudaGetLastError());
    CU(cudaDeviceSynchronize());
    if (cb->on_step && cb->on_step(cb->user, step + 1, req->steps)) return SPOOL_ERR_ABORTED;
  }
  for (uint32_t f = O; f < F; f++) {
    if (req->reference)
      k_talk<<<blocks(plane), 256>>>(s->reference + (f - r0) * fb, s->mouth[f], s->tone, s->pinv, s->bias, h, w, H, W,
                                     s->lat + (size_t)f * fsz, O ? s->drift : nullptr, O ? ref_keep(f, O, F) : 0.0f, 1);
    else
      k_scene<<<blocks(fsz), 256>>>(sc, req->first_frame + (int64_t)f, h, w, s->lat + (size_t)f * fsz,
                                    O ? s->drift : nullptr, O ? ref_keep(f, O, F) : 0.0f, 1);
  }
  CU(cudaGetLastError());
  CU(cudaDeviceSynchronize());
  if (req->tail_frames) {
    uint32_t tf = req->tail_frames;
    size_t size = spool_tail_size(REF_C, h, w, tf);
    float *host = (float *)malloc((size_t)tf * fsz * 4);
    uint8_t *blob = (uint8_t *)realloc(s->tail, size);
    if (!host || !blob) {
      free(host);
      return SPOOL_ERR_OUT_OF_MEMORY;
    }
    s->tail = blob;
    cudaError_t e = cudaMemcpy(host, s->lat + (size_t)(F - tf) * fsz, (size_t)tf * fsz * 4, cudaMemcpyDeviceToHost);
    if (e != cudaSuccess) {
      free(host);
      snprintf(err, errlen, "cuda: tail copy: %s", cudaGetErrorString(e));
      return SPOOL_ERR_DEVICE;
    }
    spool_tail_encode(s->tail, size, REF_C, h, w, tf, req->first_frame + F - tf, host);
    free(host);
    if (cb->on_tail && cb->on_tail(cb->user, s->tail, size)) return SPOOL_ERR_ABORTED;
  }
  for (uint32_t f = 0; f < F; f++) {
    if (cancel && __atomic_load_n(cancel, __ATOMIC_RELAXED)) {
      snprintf(err, errlen, "cancelled while decoding frame %u of %u", f, F);
      return SPOOL_ERR_CANCELLED;
    }
    k_mix<<<blocks(plane), 256>>>(s->lat + (size_t)f * fsz, s->lrgb, plane, s->mix, s->bias);
    dim3 grid((W + 255) / 256, H);
    k_upsample<<<grid, 256>>>(s->lrgb, s->rgb, s->lut, h, w, H, W);
    CU(cudaGetLastError());
    CU(cudaMemcpy(s->host_rgb, s->rgb, (size_t)W * H * 3, cudaMemcpyDeviceToHost));
    spool_frame fr = {f, W, H, W * 3, s->host_rgb};
    if (cb->on_frame && cb->on_frame(cb->user, &fr)) return SPOOL_ERR_ABORTED;
  }
  return SPOOL_OK;
}

static const spool_backend backend = {SPOOL_INFER_ABI_VERSION, "cuda", c_open, c_close, c_info, c_run};

extern "C" SPOOL_API const spool_backend *spool_plugin_backend(uint32_t abi) {
  return abi == SPOOL_INFER_ABI_VERSION ? &backend : NULL;
}
