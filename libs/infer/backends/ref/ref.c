/*
 * ref.c - the reference backend: a deterministic CPU "latent video diffusion
 * model" with the structure of a real one (SkyReels-V2 diffusion forcing).
 *
 *  - Latents: REF_C channels × ceil(h/8) × ceil(w/8) per frame.
 *  - Scene: a target latent field per frame, from a hash of the prompt and
 *    the absolute frame index (blobs moving along Lissajous paths over a
 *    gradient), so motion continues across segments and prompts look
 *    different. The segment seed drives the noise, whose residue is the
 *    picture's grain.
 *  - Denoise: `steps` iterations over every frame and latent cell (cost ∝
 *    steps × frames × latent pixels). Each step shrinks the residual
 *    r = x − scene along a noise schedule and couples every frame to the one
 *    before it (temporal attention, causal as in diffusion forcing). The
 *    first `overlap` frames are the clean conditioning prefix: they are the
 *    tail state's latents, bit for bit, and condition the first new frame.
 *  - Tail: the latents of the last tail_frames frames, handed out before
 *    decode.
 *  - Decode: per frame, a 3×REF_C channel mix, a ×8 bilinear upsample and a
 *    tone curve to RGB24. A frame depends only on its own latents, so equal
 *    latents decode to equal bytes and a chain is seamless.
 *
 * Determinism: the same request gives the same bytes on one machine build:
 * no threads, no reductions across elements, and ISO C (-std=c11), in which
 * GCC contracts no multiply-add.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "../../src/internal.h"
#include "scene.h"


/* The scene's latent field at absolute frame t into out (C × h × w). */
static void render_scene(const ref_scene *sc, uint64_t t, uint32_t h, uint32_t w, float *out, float *gy, float *gx) {
  size_t plane = (size_t)h * w;
  for (int c = 0; c < REF_C; c++) {
    float *o = out + c * plane;
    for (uint32_t y = 0; y < h; y++) {
      float v = sc->bg[c] + sc->grad[c] * ((float)y / (float)h - 0.5f);
      for (uint32_t x = 0; x < w; x++) o[(size_t)y * w + x] = v;
    }
  }
  float ft = (float)(t % 1000000);
  float dim = (float)(h < w ? h : w);
  for (int b = 0; b < REF_BLOBS; b++) {
    float cx = (0.5f + 0.35f * sinf(sc->wx[b] * ft + sc->px[b])) * (float)w;
    float cy = (0.5f + 0.30f * sinf(sc->wy[b] * ft + sc->py[b])) * (float)h;
    float inv = 1.0f / (2.0f * (sc->size[b] * dim) * (sc->size[b] * dim));
    for (uint32_t y = 0; y < h; y++) gy[y] = expf(-((float)y - cy) * ((float)y - cy) * inv);
    for (uint32_t x = 0; x < w; x++) gx[x] = expf(-((float)x - cx) * ((float)x - cx) * inv);
    for (int c = 0; c < REF_C; c++) {
      float *o = out + c * plane;
      float a = sc->amp[b][c];
      for (uint32_t y = 0; y < h; y++) {
        float ay = a * gy[y];
        float *row = o + (size_t)y * w;
        for (uint32_t x = 0; x < w; x++) row[x] += ay * gx[x];
      }
    }
  }
}

static int grow(void **p, size_t *cap, size_t need) {
  if (need <= *cap) return 1;
  void *q = realloc(*p, need);
  if (!q) return 0;
  *p = q;
  *cap = need;
  return 1;
}

static spool_status ref_open(const spool_engine_options *o, void **state, char *err, size_t errlen) {
  if (o->device >= 0) {
    snprintf(err, errlen, "the ref backend runs on the CPU; device %d asks for a GPU (use the cuda backend)", o->device);
    return SPOOL_ERR_INVALID_ARGUMENT;
  }
  ref_state *s = calloc(1, sizeof *s);
  if (!s) return SPOOL_ERR_OUT_OF_MEMORY;
  snprintf(s->model, sizeof s->model, "%s", o->model && *o->model ? o->model : "ref");
  for (int i = 0; i < REF_LUT; i++) {
    float v = -4.0f + 8.0f * ((float)i + 0.5f) / REF_LUT;
    float y = 0.5f + 0.5f * v / (1.0f + fabsf(v));
    s->lut[i] = (uint8_t)lrintf(255.0f * y);
  }
  uint64_t k = 0x5eed5eedULL;
  for (int ch = 0; ch < 3; ch++) {
    s->bias[ch] = 0.1f * unit(k, 100 + ch);
    for (int c = 0; c < REF_C; c++) s->mix[ch][c] = 0.9f * unit(k, (uint64_t)ch * REF_C + c);
  }
  *state = s;
  return SPOOL_OK;
}

static void ref_close(void *state) {
  ref_state *s = state;
  if (!s) return;
  free(s->lat);
  free(s->scene);
  free(s->rprev);
  free(s->lrgb);
  free(s->hpass);
  free(s->rgb);
  free(s->tail);
  free(s);
}

static void ref_info(void *state, spool_engine_info *info) {
  ref_state *s = state;
  info->model = s->model;
  info->model_version = REF_VERSION;
  info->latent_channels = REF_C;
  info->latent_scale = REF_SCALE;
  info->frame_align = 1;
}

/* Decodes latent frame lat (C × h × w) into s->rgb (H × W × 3). */
static void decode(ref_state *s, const float *lat, uint32_t h, uint32_t w, uint32_t H, uint32_t W) {
  size_t plane = (size_t)h * w;
  for (int ch = 0; ch < 3; ch++) {
    float *o = s->lrgb + ch * plane;
    for (size_t i = 0; i < plane; i++) o[i] = s->bias[ch];
    for (int c = 0; c < REF_C; c++) {
      float m = s->mix[ch][c];
      const float *l = lat + c * plane;
      for (size_t i = 0; i < plane; i++) o[i] += m * l[i];
    }
  }
  /* Horizontal pass: each latent row to W columns. */
  for (int ch = 0; ch < 3; ch++) {
    for (uint32_t ly = 0; ly < h; ly++) {
      const float *src = s->lrgb + ch * plane + (size_t)ly * w;
      float *dst = s->hpass + ((size_t)ch * h + ly) * W;
      for (uint32_t X = 0; X < W; X++) {
        float fx = ((float)X + 0.5f) / REF_SCALE - 0.5f;
        if (fx < 0) fx = 0;
        uint32_t x0 = (uint32_t)fx;
        if (x0 >= w - 1) { dst[X] = src[w - 1]; continue; }
        float a = fx - (float)x0;
        dst[X] = src[x0] * (1.0f - a) + src[x0 + 1] * a;
      }
    }
  }
  /* Vertical pass and tone curve. */
  for (uint32_t Y = 0; Y < H; Y++) {
    float fy = ((float)Y + 0.5f) / REF_SCALE - 0.5f;
    if (fy < 0) fy = 0;
    uint32_t y0 = (uint32_t)fy, y1 = y0 + 1 < h ? y0 + 1 : h - 1;
    if (y0 >= h) y0 = h - 1;
    float b = y0 == y1 ? 0.0f : fy - (float)y0;
    uint8_t *out = s->rgb + (size_t)Y * W * 3;
    for (int ch = 0; ch < 3; ch++) {
      const float *r0 = s->hpass + ((size_t)ch * h + y0) * W, *r1 = s->hpass + ((size_t)ch * h + y1) * W;
      for (uint32_t X = 0; X < W; X++) {
        float v = r0[X] * (1.0f - b) + r1[X] * b;
        int idx = (int)((v + 4.0f) * (REF_LUT / 8.0f));
        idx = idx < 0 ? 0 : idx >= REF_LUT ? REF_LUT - 1 : idx;
        out[3 * X + ch] = s->lut[idx];
      }
    }
  }
}

static spool_status ref_run(void *state, const spool_request *req, const spool_callbacks *cb, const int32_t *cancel,
                            char *err, size_t errlen) {
  ref_state *s = state;
  const uint32_t W = req->width, H = req->height, F = req->frames, O = req->cond ? req->overlap : 0;
  const uint32_t h = spool_latent_dim(H, REF_SCALE), w = spool_latent_dim(W, REF_SCALE);
  const size_t plane = (size_t)h * w, fsz = plane * REF_C, total = fsz * F;
  if (!grow((void **)&s->lat, &s->lat_cap, total * sizeof(float)) ||
      !grow((void **)&s->scene, &s->frame_cap, fsz * sizeof(float) + (h + w) * sizeof(float))) {
    snprintf(err, errlen, "out of memory for %zu latents", total);
    return SPOOL_ERR_OUT_OF_MEMORY;
  }
  size_t small = fsz * sizeof(float);
  float *tmp;
  if (!(tmp = realloc(s->rprev, small))) return SPOOL_ERR_OUT_OF_MEMORY;
  s->rprev = tmp;
  if (!(tmp = realloc(s->lrgb, 3 * plane * sizeof(float)))) return SPOOL_ERR_OUT_OF_MEMORY;
  s->lrgb = tmp;
  if (!grow((void **)&s->hpass, &s->hpass_cap, 3 * (size_t)h * W * sizeof(float)) ||
      !grow((void **)&s->rgb, &s->rgb_cap, (size_t)W * H * 3))
    return SPOOL_ERR_OUT_OF_MEMORY;
  float *gy = s->scene + fsz, *gx = gy + h;

  ref_scene sc;
  make_scene(&sc, req->prompt);

  /* Initial state: clean conditioning latents for the first O frames,
   * seeded noise residuals for the rest. */
  if (O) {
    spool_tail_view v;
    spool_status st = spool_tail_parse(req->cond, req->cond_len, &v, s->lat, total, err, errlen);
    if (st != SPOOL_OK) return st;
    render_scene(&sc, req->first_frame + O - 1, h, w, s->scene, gy, gx);
    const float *last = s->lat + (size_t)(O - 1) * fsz;
    for (size_t i = 0; i < fsz; i++) s->rprev[i] = last[i] - s->scene[i];
  }
  for (uint32_t f = O; f < F; f++) {
    float *r = s->lat + (size_t)f * fsz;
    uint64_t key = mix64(req->seed ^ mix64(f + 1));
    for (size_t i = 0; i < fsz; i++) r[i] = unit(key, i);
  }

  /* Denoise. */
  for (uint32_t step = 0; step < req->steps; step++) {
    if (spool_cancelled(cancel)) {
      snprintf(err, errlen, "cancelled at denoise step %u of %u", step, req->steps);
      return SPOOL_ERR_CANCELLED;
    }
    float ratio = ref_sigma(step + 1, req->steps, req->guidance) / ref_sigma(step, req->steps, req->guidance);
    const float kappa = REF_KAPPA;
    for (uint32_t f = O; f < F; f++) {
      float *r = s->lat + (size_t)f * fsz;
      const float *p = f > O ? r - fsz : (O ? s->rprev : NULL);
      if (p) {
        for (size_t i = 0; i < fsz; i++) r[i] = r[i] * ratio + kappa * (p[i] - r[i]);
      } else {
        for (size_t i = 0; i < fsz; i++) r[i] = r[i] * ratio;
      }
    }
    if (cb->on_step && cb->on_step(cb->user, step + 1, req->steps)) {
      snprintf(err, errlen, "aborted by the step callback at step %u", step + 1);
      return SPOOL_ERR_ABORTED;
    }
  }
  /* Latents = scene + residual for the generated frames. */
  for (uint32_t f = O; f < F; f++) {
    render_scene(&sc, req->first_frame + f, h, w, s->scene, gy, gx);
    float *r = s->lat + (size_t)f * fsz;
    for (size_t i = 0; i < fsz; i++) r[i] += s->scene[i];
  }

  /* Tail state, before decode. */
  if (req->tail_frames) {
    uint32_t tf = req->tail_frames;
    size_t size = spool_tail_size(REF_C, h, w, tf);
    if (!grow((void **)&s->tail, &s->tail_cap, size)) return SPOOL_ERR_OUT_OF_MEMORY;
    spool_tail_encode(s->tail, size, REF_C, h, w, tf, req->first_frame + F - tf, s->lat + (size_t)(F - tf) * fsz);
    if (cb->on_tail && cb->on_tail(cb->user, s->tail, size)) {
      snprintf(err, errlen, "aborted by the tail callback");
      return SPOOL_ERR_ABORTED;
    }
  }

  /* Decode, one frame at a time through one buffer. */
  for (uint32_t f = 0; f < F; f++) {
    if (spool_cancelled(cancel)) {
      snprintf(err, errlen, "cancelled while decoding frame %u of %u", f, F);
      return SPOOL_ERR_CANCELLED;
    }
    decode(s, s->lat + (size_t)f * fsz, h, w, H, W);
    spool_frame fr = {f, W, H, W * 3, s->rgb};
    if (cb->on_frame && cb->on_frame(cb->user, &fr)) {
      snprintf(err, errlen, "aborted by the frame callback at frame %u", f);
      return SPOOL_ERR_ABORTED;
    }
  }
  return SPOOL_OK;
}

const spool_backend spool_backend_ref = {SPOOL_INFER_ABI_VERSION, "ref", ref_open, ref_close, ref_info, ref_run};
