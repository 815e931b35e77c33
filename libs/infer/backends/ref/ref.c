/*
 * ref.c - the reference backend: a deterministic CPU "latent video diffusion
 * model" with the structure of a real one (SkyReels-V2 diffusion forcing).
 *
 *  - Latents: REF_C channels × ceil(h/8) × ceil(w/8) per frame.
 *  - Scene: a target latent field per frame, from a hash of the prompt and
 *    the absolute frame index (blobs moving along Lissajous paths over a
 *    gradient), so motion continues across segments and prompts look
 *    different. The segment seed drives the noise (a counter-based hash of
 *    seed, frame and cell, so no draw depends on the order of evaluation),
 *    whose residue is the picture's grain.
 *  - Denoise: `steps` iterations over every frame and latent cell (cost ∝
 *    steps × frames × latent pixels). Each step shrinks the residual
 *    r = x − scene along a noise schedule and couples every new frame to the
 *    one before it (temporal attention, causal as in diffusion forcing).
 *    With overlap > 0 and no tail state (independent mode) every frame
 *    starts from noise.
 *  - Conditioning: the first `overlap` frames are the clean prefix, the tail
 *    state's latents bit for bit, or the prefix RGB frames encoded (see
 *    Encode). The segment continues from it as a
 *    diffusion-forcing model does, whatever its prompt: the last prefix
 *    frame's departure from this segment's scene, d = x[O−1] − scene(O−1),
 *    stays in the new frames and fades out along a smoothstep over them,
 *    x[f] = scene(f) + r[f] + (1 − ease((f − O + 1) / (F − O))) · d, gone
 *    by the last frame. With an unchanged prompt d is only the prefix's
 *    grain; after a prompt change it is the old scene, which dissolves into
 *    the new one over the segment, each frame changing about as much as
 *    ordinary motion does, instead of cutting at the first new frame.
 *  - Tail: the latents of the last tail_frames frames (the request says how
 *    many; a chain asks for `overlap`), handed out before decode.
 *  - Decode: per frame, a 3×REF_C channel mix, a ×8 bilinear upsample and a
 *    tone curve to RGB24, into one reusable buffer. A frame depends only on
 *    its own latents, so equal latents decode to equal bytes and a chain is
 *    seamless.
 *  - Encode (prefix frames): the inverse of decode as near as it goes, per
 *    frame: the inverse tone curve (byte to latent-space value), an 8×8 box
 *    average down to the latent grid (the inverse of the ×8 upsample for a
 *    field that is flat over a cell; it smooths what varies within one), and
 *    the minimal-norm least-squares inverse of the channel mix and bias (its
 *    pseudo-inverse; scene.h's ref_tables). decode(encode(x)) is close to x
 *    for smooth x whose colours the tone curve can make (bytes of about
 *    25..230); infer's tests state the error.
 *  - Talking head (reference frames given): the scene of frame f is no
 *    longer the prompt's but the encode of reference frame f with a mouth
 *    painted on it (scene.h), whose opening follows the loudness (RMS, in
 *    dBFS) of frame f's own audio samples, closed in silence or without
 *    audio. Everything else is as above: the seeded residuals, the
 *    denoise, the conditioning frames reproduced exactly, the drift of the
 *    last one from this segment's (talking) scene fading out, the tail
 *    before decode. The overlap frames of a chain own the same samples in
 *    both segments, so a chain stays seamless. Audio without reference
 *    frames is refused: it would have nothing to drive.
 *
 * Threads (spool_engine_options.threads): every loop is split into
 * independent element ranges (cells of a frame, whole frames, rows, latent
 * rows of the prefix frames or of the talking head's frames), and each
 * element is computed by exactly the same operations whatever the split, so
 * the bytes do not depend on the thread count. Callbacks and the cancel flag
 * stay on the calling thread.
 *
 * Params: hang_at_step and hang_ignores_cancel make a denoise step that
 * never ends (spool_hang_params, internal.h), for the tests of a worker's
 * stall watchdog on the model the oracle runs; off by default, and no other
 * param changes a picture.
 *
 * Determinism: the same request gives the same bytes on one machine build:
 * no reductions across elements, and ISO C (-std=c11, no -ffast-math), in
 * which GCC contracts no multiply-add.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "../../src/internal.h"
#include "pool.h"
#include "scene.h"

typedef struct {
  char model[64];
  ref_pool *pool;  /* NULL: run on the calling thread only */
  unsigned threads;
  spool_hang hang;  /* off unless params ask for it */
  float *lat;      /* frames × C × h × w: residuals while denoising, latents after */
  float *scratch;  /* threads × (C × h × w + h + w): a scene field per thread */
  float *drift;    /* C × h × w: the last conditioning frame's departure from the scene */
  float *lrgb;     /* 3 × h × w */
  float *hpass;    /* 3 × h × W */
  float *xa;       /* W: horizontal interpolation weights */
  uint32_t *x0;    /* W: left latent column of each pixel column */
  uint8_t *rgb;    /* H × W × 3 */
  uint8_t *tail;
  float *mouth;    /* frames: the talking head's mouth opening per frame */
  size_t lat_cap, scratch_cap, drift_cap, lrgb_cap, hpass_cap, xa_cap, x0_cap, rgb_cap, tail_cap, mouth_cap;
  ref_tables tab;   /* decode's tables and their inverses (scene.h) */
} ref_state;

/* One run's shapes and inputs, shared by the parallel tasks. */
typedef struct {
  ref_state *s;
  const spool_request *req;
  const ref_scene *sc;
  uint32_t h, w, H, W, O, F;
  size_t plane, fsz;
  float ratio;      /* denoise: sigma ratio of the step */
  const float *src; /* decode: the frame's latents */
  uint32_t talk0;   /* talking head: the first frame of task_talk's rows */
  int talk_drift;   /* talking head: task_talk makes the drift, not frames */
} ref_job;

/* Encode: the latents of latent rows [lo, hi) of the prefix frames, row r
 * being frame r / h's latent row r % h, into the first O frames of lat
 * (scene.h's ref_encode_cell, without a mouth). */
static void task_encode(void *arg, size_t lo, size_t hi, unsigned tid) {
  const ref_job *j = arg;
  const ref_tables *t = &j->s->tab;
  (void)tid;
  for (size_t r = lo; r < hi; r++) {
    size_t f = r / j->h;
    uint32_t ly = (uint32_t)(r % j->h);
    const uint8_t *rgb = j->req->prefix + f * (size_t)j->H * j->W * 3;
    float *out = j->s->lat + f * j->fsz + (size_t)ly * j->w;
    for (uint32_t lx = 0; lx < j->w; lx++)
      ref_encode_cell(t->tone, &t->pinv[0][0], t->bias, rgb, j->W, j->H, lx, ly, 0.0f, out + lx, j->plane);
  }
}

/* The talking head's scene, latent rows [lo, hi) of frames talk0 + [0, n):
 * row r is frame talk0 + r / h's latent row r % h, encoded from its
 * reference frame with the mouth at that frame's opening (ref_encode_cell).
 * For the drift (talk_drift, frame O − 1 only) it is subtracted from the
 * last conditioning frame into drift; else it is added to a new frame's
 * residual, with the fading drift, as task_compose adds the prompt's scene. */
static void task_talk(void *arg, size_t lo, size_t hi, unsigned tid) {
  const ref_job *j = arg;
  const ref_tables *t = &j->s->tab;
  float v[REF_C];
  (void)tid;
  for (size_t r = lo; r < hi; r++) {
    uint32_t f = j->talk0 + (uint32_t)(r / j->h), ly = (uint32_t)(r % j->h);
    const uint8_t *rgb = j->req->reference + (size_t)f * j->H * j->W * 3;
    const float k = j->O && !j->talk_drift ? ref_keep(f, j->O, j->F) : 0.0f;
    for (uint32_t lx = 0; lx < j->w; lx++) {
      ref_encode_cell(t->tone, &t->pinv[0][0], t->bias, rgb, j->W, j->H, lx, ly, j->s->mouth[f], v, 1);
      size_t cell = (size_t)ly * j->w + lx;
      if (j->talk_drift) {
        const float *last = j->s->lat + (size_t)(j->O - 1) * j->fsz + cell;
        for (int c = 0; c < REF_C; c++) j->s->drift[c * j->plane + cell] = last[c * j->plane] - v[c];
      } else {
        float *x = j->s->lat + (size_t)f * j->fsz + cell;
        const float *d = j->s->drift + cell;
        if (j->O)
          for (int c = 0; c < REF_C; c++) x[c * j->plane] += v[c] + k * d[c * j->plane];
        else
          for (int c = 0; c < REF_C; c++) x[c * j->plane] += v[c];
      }
    }
  }
}

/* The scene's latent field at absolute frame t into out (C × h × w);
 * gy (h) and gx (w) are scratch. */
static void render_scene(const ref_scene *sc, int64_t t, uint32_t h, uint32_t w, float *out, float *gy, float *gx) {
  size_t plane = (size_t)h * w;
  for (int c = 0; c < REF_C; c++) {
    float *o = out + c * plane;
    for (uint32_t y = 0; y < h; y++) {
      float v = sc->bg[c] + sc->grad[c] * ((float)y / (float)h - 0.5f);
      for (uint32_t x = 0; x < w; x++) o[(size_t)y * w + x] = v;
    }
  }
  float ft = ref_clock(t);
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

/* Grows *p to need bytes; keeps the old block on failure. */
static int grow(void *p, size_t *cap, size_t need) {
  void **pp = p;
  if (need <= *cap) return 1;
  void *q = realloc(*pp, need);
  if (!q) return 0;
  *pp = q;
  *cap = need;
  return 1;
}

static void ref_close(void *state) {
  ref_state *s = state;
  if (!s) return;
  ref_pool_free(s->pool);
  free(s->lat);
  free(s->scratch);
  free(s->drift);
  free(s->lrgb);
  free(s->hpass);
  free(s->xa);
  free(s->x0);
  free(s->rgb);
  free(s->tail);
  free(s->mouth);
  free(s);
}

static spool_status ref_open(const spool_engine_options *o, void **state, char *err, size_t errlen) {
  if (o->device >= 0) {
    snprintf(err, errlen, "the ref backend runs on the CPU; device %d asks for a GPU (use the cuda backend)", o->device);
    return SPOOL_ERR_INVALID_ARGUMENT;
  }
  ref_state *s = calloc(1, sizeof *s);
  if (!s) return SPOOL_ERR_OUT_OF_MEMORY;
  snprintf(s->model, sizeof s->model, "%s", o->model && *o->model ? o->model : "ref");
  spool_status st = spool_hang_params("ref", o->params, &s->hang, err, errlen);
  if (st != SPOOL_OK) {
    free(s);
    return st;
  }
  s->threads = o->threads > 1 ? (unsigned)o->threads : 1;
  if (s->threads > 1 && !(s->pool = ref_pool_new(s->threads))) {
    snprintf(err, errlen, "could not start %u threads", s->threads);
    free(s);
    return SPOOL_ERR_OUT_OF_MEMORY;
  }
  ref_make_tables(&s->tab);
  *state = s;
  return SPOOL_OK;
}

static void ref_info(void *state, spool_engine_info *info) {
  ref_state *s = state;
  info->model = s->model;
  info->model_version = REF_VERSION;
  info->latent_channels = REF_C;
  info->latent_scale = REF_SCALE;
  info->frame_align = 1;
}

/* Seeded noise residuals for frames O + [lo, hi). */
static void task_noise(void *arg, size_t lo, size_t hi, unsigned tid) {
  const ref_job *j = arg;
  (void)tid;
  for (size_t f = j->O + lo; f < j->O + hi; f++) {
    float *r = j->s->lat + f * j->fsz;
    uint64_t key = mix64(j->req->seed ^ mix64(f + 1));
    for (size_t i = 0; i < j->fsz; i++) r[i] = unit(key, i);
  }
}

/* One denoise step over cells [lo, hi) of every generated frame, in frame
 * order: a frame is coupled to the previous new frame's residual of this
 * step (the conditioning enters through the drift, at compose). */
static void task_step(void *arg, size_t lo, size_t hi, unsigned tid) {
  const ref_job *j = arg;
  const float ratio = j->ratio, kappa = REF_KAPPA;
  (void)tid;
  for (uint32_t f = j->O; f < j->F; f++) {
    float *r = j->s->lat + (size_t)f * j->fsz;
    if (f > j->O) {
      const float *p = r - j->fsz;
      for (size_t i = lo; i < hi; i++) r[i] = r[i] * ratio + kappa * (p[i] - r[i]);
    } else {
      for (size_t i = lo; i < hi; i++) r[i] = r[i] * ratio;
    }
  }
}

/* Latents = scene + residual for frames O + [lo, hi), plus the fading
 * drift of the conditioning when there is one. */
static void task_compose(void *arg, size_t lo, size_t hi, unsigned tid) {
  const ref_job *j = arg;
  float *scene = j->s->scratch + (size_t)tid * (j->fsz + j->h + j->w), *gy = scene + j->fsz, *gx = gy + j->h;
  for (size_t f = j->O + lo; f < j->O + hi; f++) {
    render_scene(j->sc, j->req->first_frame + (int64_t)f, j->h, j->w, scene, gy, gx);
    float *r = j->s->lat + f * j->fsz;
    if (j->O) {
      const float k = ref_keep((uint32_t)f, j->O, j->F), *d = j->s->drift;
      for (size_t i = 0; i < j->fsz; i++) r[i] += scene[i] + k * d[i];
    } else {
      for (size_t i = 0; i < j->fsz; i++) r[i] += scene[i];
    }
  }
}

/* Decode, first half: channel mix to RGB and the horizontal ×8 upsample of
 * latent rows [lo, hi). */
static void task_mix(void *arg, size_t lo, size_t hi, unsigned tid) {
  const ref_job *j = arg;
  ref_state *s = j->s;
  const uint32_t w = j->w, W = j->W;
  (void)tid;
  for (int ch = 0; ch < 3; ch++) {
    for (size_t ly = lo; ly < hi; ly++) {
      float *o = s->lrgb + ch * j->plane + ly * w;
      for (uint32_t x = 0; x < w; x++) o[x] = s->tab.bias[ch];
      for (int c = 0; c < REF_C; c++) {
        float m = s->tab.mix[ch][c];
        const float *l = j->src + c * j->plane + ly * w;
        for (uint32_t x = 0; x < w; x++) o[x] += m * l[x];
      }
      float *dst = s->hpass + ((size_t)ch * j->h + ly) * W;
      for (uint32_t X = 0; X < W; X++) {
        uint32_t x0 = s->x0[X];
        if (x0 >= w - 1) {
          dst[X] = o[w - 1];
        } else {
          float a = s->xa[X];
          dst[X] = o[x0] * (1.0f - a) + o[x0 + 1] * a;
        }
      }
    }
  }
}

/* Decode, second half: the vertical ×8 upsample and the tone curve of pixel
 * rows [lo, hi). */
static void task_rows(void *arg, size_t lo, size_t hi, unsigned tid) {
  const ref_job *j = arg;
  ref_state *s = j->s;
  const uint32_t h = j->h, W = j->W;
  (void)tid;
  for (size_t Y = lo; Y < hi; Y++) {
    float fy = ((float)Y + 0.5f) / REF_SCALE - 0.5f;
    if (fy < 0) fy = 0;
    uint32_t y0 = (uint32_t)fy, y1 = y0 + 1 < h ? y0 + 1 : h - 1;
    if (y0 >= h) y0 = h - 1;
    float b = y0 == y1 ? 0.0f : fy - (float)y0;
    uint8_t *out = s->rgb + Y * W * 3;
    for (int ch = 0; ch < 3; ch++) {
      const float *r0 = s->hpass + ((size_t)ch * h + y0) * W, *r1 = s->hpass + ((size_t)ch * h + y1) * W;
      for (uint32_t X = 0; X < W; X++) {
        float v = r0[X] * (1.0f - b) + r1[X] * b;
        int idx = (int)((v + 4.0f) * (REF_LUT / 8.0f));
        idx = idx < 0 ? 0 : idx >= REF_LUT ? REF_LUT - 1 : idx;
        out[3 * X + ch] = s->tab.lut[idx];
      }
    }
  }
}

/* Buffers of a run of F frames of W×H; 0 when one cannot be had. */
static int reserve(ref_state *s, const ref_job *j) {
  size_t T = s->threads;
  if (!grow(&s->lat, &s->lat_cap, j->fsz * j->F * sizeof(float)) ||
      !grow(&s->scratch, &s->scratch_cap, T * (j->fsz + j->h + j->w) * sizeof(float)) ||
      !grow(&s->drift, &s->drift_cap, j->fsz * sizeof(float)) ||
      !grow(&s->lrgb, &s->lrgb_cap, 3 * j->plane * sizeof(float)) ||
      !grow(&s->hpass, &s->hpass_cap, 3 * (size_t)j->h * j->W * sizeof(float)) ||
      !grow(&s->xa, &s->xa_cap, j->W * sizeof(float)) || !grow(&s->x0, &s->x0_cap, j->W * sizeof(uint32_t)) ||
      !grow(&s->rgb, &s->rgb_cap, (size_t)j->W * j->H * 3) ||
      !grow(&s->mouth, &s->mouth_cap, j->F * sizeof(float)))
    return 0;
  for (uint32_t X = 0; X < j->W; X++) {
    float fx = ((float)X + 0.5f) / REF_SCALE - 0.5f;
    if (fx < 0) fx = 0;
    s->x0[X] = (uint32_t)fx;
    s->xa[X] = fx - (float)s->x0[X];
  }
  return 1;
}

static spool_status ref_run(void *state, const spool_request *req, const spool_callbacks *cb, const int32_t *cancel,
                            char *err, size_t errlen) {
  ref_state *s = state;
  if (req->audio_rate && !req->reference) {
    snprintf(err, errlen, "audio: the ref backend animates a reference with audio; audio without reference frames "
                          "has nothing to drive");
    return SPOOL_ERR_INVALID_ARGUMENT;
  }
  ref_scene sc;
  make_scene(&sc, req->prompt);
  ref_job j = {.s = s, .req = req, .sc = &sc, .H = req->height, .W = req->width, .F = req->frames,
               .O = req->cond || req->prefix ? req->overlap : 0};
  j.h = spool_latent_dim(j.H, REF_SCALE);
  j.w = spool_latent_dim(j.W, REF_SCALE);
  j.plane = (size_t)j.h * j.w;
  j.fsz = j.plane * REF_C;
  const uint32_t F = j.F, O = j.O;
  if (!reserve(s, &j)) {
    snprintf(err, errlen, "out of memory for %u frames of %ux%u latents", F, j.w, j.h);
    return SPOOL_ERR_OUT_OF_MEMORY;
  }

  /* Initial state: clean conditioning latents for the first O frames (the
   * tail state's, or the prefix frames encoded) and the last one's drift
   * from this segment's scene; seeded noise residuals for the rest. */
  if (req->prefix) {
    ref_pool_for(s->pool, (size_t)O * j.h, task_encode, &j);
  } else if (O) {
    spool_tail_view v;
    spool_status st = spool_tail_parse(req->cond, req->cond_len, &v, s->lat, j.fsz * F, err, errlen);
    if (st != SPOOL_OK) return st;
  }
  if (req->reference) {
    /* A talking head: frame f's mouth opens with the loudness of its own
     * samples (none without audio). */
    int64_t base = req->audio_rate ? spool_sample_at(req->first_frame, req->fps, req->audio_rate) : 0;
    for (uint32_t f = 0; f < F; f++) {
      size_t a = 0, b = 0;
      if (req->audio_rate) {
        int64_t t = req->first_frame + (int64_t)f;
        a = (size_t)(spool_sample_at(t, req->fps, req->audio_rate) - base);
        b = (size_t)(spool_sample_at(t + 1, req->fps, req->audio_rate) - base);
      }
      s->mouth[f] = req->audio ? ref_mouth_opening(req->audio + a, b - a) : 0.0f;
    }
  }
  if (O && req->reference) {
    j.talk0 = O - 1, j.talk_drift = 1;
    ref_pool_for(s->pool, j.h, task_talk, &j);
  } else if (O) {
    render_scene(&sc, req->first_frame + O - 1, j.h, j.w, s->scratch, s->scratch + j.fsz, s->scratch + j.fsz + j.h);
    const float *last = s->lat + (size_t)(O - 1) * j.fsz;
    for (size_t i = 0; i < j.fsz; i++) s->drift[i] = last[i] - s->scratch[i];
  }
  ref_pool_for(s->pool, F - O, task_noise, &j);

  /* Denoise. */
  for (uint32_t step = 0; step < req->steps; step++) {
    if (spool_cancelled(cancel)) {
      snprintf(err, errlen, "cancelled at denoise step %u of %u", step, req->steps);
      return SPOOL_ERR_CANCELLED;
    }
    if (step + 1 == s->hang.at_step) {
      spool_hang_wait(&s->hang, cancel);
      snprintf(err, errlen, "cancelled in denoise step %u, which hung", step + 1);
      return SPOOL_ERR_CANCELLED;
    }
    j.ratio = ref_sigma(step + 1, req->steps, req->guidance) / ref_sigma(step, req->steps, req->guidance);
    ref_pool_for(s->pool, j.fsz, task_step, &j);
    if (cb->on_step && cb->on_step(cb->user, step + 1, req->steps)) {
      snprintf(err, errlen, "aborted by the step callback at step %u", step + 1);
      return SPOOL_ERR_ABORTED;
    }
  }
  if (req->reference) {
    j.talk0 = O, j.talk_drift = 0;
    ref_pool_for(s->pool, (size_t)(F - O) * j.h, task_talk, &j);
  } else {
    ref_pool_for(s->pool, F - O, task_compose, &j);
  }

  /* Tail state, before decode. */
  if (req->tail_frames) {
    uint32_t tf = req->tail_frames;
    size_t size = spool_tail_size(REF_C, j.h, j.w, tf);
    if (!grow(&s->tail, &s->tail_cap, size)) return SPOOL_ERR_OUT_OF_MEMORY;
    spool_tail_encode(s->tail, size, REF_C, j.h, j.w, tf, req->first_frame + F - tf, s->lat + (size_t)(F - tf) * j.fsz);
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
    j.src = s->lat + (size_t)f * j.fsz;
    ref_pool_for(s->pool, j.h, task_mix, &j);
    ref_pool_for(s->pool, j.H, task_rows, &j);
    spool_frame fr = {f, j.W, j.H, j.W * 3, s->rgb};
    if (cb->on_frame && cb->on_frame(cb->user, &fr)) {
      snprintf(err, errlen, "aborted by the frame callback at frame %u", f);
      return SPOOL_ERR_ABORTED;
    }
  }
  return SPOOL_OK;
}

/* The ref backend's table, built in. */
const spool_backend spool_backend_ref = {SPOOL_INFER_ABI_VERSION, "ref", ref_open, ref_close, ref_info, ref_run};
