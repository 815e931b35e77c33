/*
 * sim.c - the simulation backend, FOR CONTROL-PLANE AND SCALING BENCHMARKS
 * ONLY. It generates no picture worth watching: it sleeps step_ms per
 * denoise step (and frame_us per frame), emits flat frames whose colour
 * comes from the seed and the frame index (a request's prefix frames, when it
 * has them, come out as its first frames, unchanged, and its reference
 * frames, when it has them, as the others: a talking head's traffic, with
 * no mouth drawn; audio is accepted only with reference frames, as ref
 * accepts it, and not looked at), and hands out a zero
 * tail state of the right shape, so the control plane sees the timing and the
 * traffic of a real model at no compute cost. Params: "step_ms=<ms>;frame_us=<µs>".
 *
 * hang_at_step and hang_ignores_cancel make a step that never ends, for the
 * tests of the worker's stall watchdog (spool_hang_params, internal.h).
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "../../src/internal.h"

#define SIM_C 16
#define SIM_SCALE 8

typedef struct {
  char model[64];
  long step_us, frame_us;
  spool_hang hang;
  uint8_t *rgb, *tail;
  size_t rgb_cap, tail_cap;
} sim_state;

static void sleep_us(long us) {
  if (us <= 0) return;
  struct timespec ts = {us / 1000000, (us % 1000000) * 1000};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}

static spool_status sim_open(const spool_engine_options *o, void **state, char *err, size_t errlen) {
  sim_state *s = calloc(1, sizeof *s);
  if (!s) return SPOOL_ERR_OUT_OF_MEMORY;
  snprintf(s->model, sizeof s->model, "%s", o->model && *o->model ? o->model : "sim");
  char v[32];
  if (spool_param(o->params, "step_ms", v, sizeof v)) {
    char *end;
    double ms = strtod(v, &end);
    if (*end || ms < 0 || ms > 600000) {
      snprintf(err, errlen, "sim param step_ms=%s: want a number of milliseconds, 0..600000", v);
      free(s);
      return SPOOL_ERR_INVALID_ARGUMENT;
    }
    s->step_us = (long)(ms * 1000);
  }
  if (spool_param(o->params, "frame_us", v, sizeof v)) {
    char *end;
    long us = strtol(v, &end, 10);
    if (*end || us < 0 || us > 10000000) {
      snprintf(err, errlen, "sim param frame_us=%s: want microseconds, 0..10000000", v);
      free(s);
      return SPOOL_ERR_INVALID_ARGUMENT;
    }
    s->frame_us = us;
  }
  spool_status st = spool_hang_params("sim", o->params, &s->hang, err, errlen);
  if (st != SPOOL_OK) {
    free(s);
    return st;
  }
  *state = s;
  return SPOOL_OK;
}

static void sim_close(void *state) {
  sim_state *s = state;
  if (!s) return;
  free(s->rgb);
  free(s->tail);
  free(s);
}

static void sim_info(void *state, spool_engine_info *info) {
  sim_state *s = state;
  info->model = s->model;
  info->model_version = "sim-1 (benchmark only)";
  info->latent_channels = SIM_C;
  info->latent_scale = SIM_SCALE;
  info->frame_align = 1;
}

static int grow(uint8_t **p, size_t *cap, size_t need) {
  if (need <= *cap) return 1;
  uint8_t *q = realloc(*p, need);
  if (!q) return 0;
  *p = q;
  *cap = need;
  return 1;
}

static spool_status sim_run(void *state, const spool_request *req, const spool_callbacks *cb, const int32_t *cancel,
                            char *err, size_t errlen) {
  sim_state *s = state;
  if (req->audio_rate && !req->reference) {
    snprintf(err, errlen, "audio: the sim backend stands in for a talking head, which animates a reference with "
                          "audio; audio without reference frames has nothing to drive");
    return SPOOL_ERR_INVALID_ARGUMENT;
  }
  for (uint32_t step = 0; step < req->steps; step++) {
    if (spool_cancelled(cancel)) {
      snprintf(err, errlen, "cancelled at step %u", step);
      return SPOOL_ERR_CANCELLED;
    }
    if (step + 1 == s->hang.at_step) {
      /* The stuck step: no progress, ever; only cancel ends it, when the
       * hang honours it. */
      spool_hang_wait(&s->hang, cancel);
      snprintf(err, errlen, "cancelled in step %u, which hung", step + 1);
      return SPOOL_ERR_CANCELLED;
    }
    sleep_us(s->step_us);
    if (cb->on_step && cb->on_step(cb->user, step + 1, req->steps)) return SPOOL_ERR_ABORTED;
  }
  uint32_t h = spool_latent_dim(req->height, SIM_SCALE), w = spool_latent_dim(req->width, SIM_SCALE);
  if (req->tail_frames) {
    size_t size = spool_tail_size(SIM_C, h, w, req->tail_frames);
    if (!grow(&s->tail, &s->tail_cap, size)) return SPOOL_ERR_OUT_OF_MEMORY;
    float *zeros = calloc((size - SPOOL_TAIL_HEADER) / 4, sizeof(float));
    if (!zeros) return SPOOL_ERR_OUT_OF_MEMORY;
    spool_tail_encode(s->tail, size, SIM_C, h, w, req->tail_frames, req->first_frame + req->frames - req->tail_frames,
                      zeros);
    free(zeros);
    if (cb->on_tail && cb->on_tail(cb->user, s->tail, size)) return SPOOL_ERR_ABORTED;
  }
  size_t fb = (size_t)req->width * req->height * 3;
  if (!grow(&s->rgb, &s->rgb_cap, fb)) return SPOOL_ERR_OUT_OF_MEMORY;
  for (uint32_t f = 0; f < req->frames; f++) {
    if (spool_cancelled(cancel)) {
      snprintf(err, errlen, "cancelled at frame %u", f);
      return SPOOL_ERR_CANCELLED;
    }
    sleep_us(s->frame_us);
    const uint8_t *rgb = s->rgb;
    if (req->prefix && f < req->overlap) rgb = req->prefix + (size_t)f * fb;
    else if (req->reference) rgb = req->reference + (size_t)f * fb;
    else memset(s->rgb, (int)((req->seed + (uint64_t)req->first_frame + f) & 0xFF), fb);
    spool_frame fr = {f, req->width, req->height, req->width * 3, rgb};
    if (cb->on_frame && cb->on_frame(cb->user, &fr)) return SPOOL_ERR_ABORTED;
  }
  return SPOOL_OK;
}

const spool_backend spool_backend_sim = {SPOOL_INFER_ABI_VERSION, "sim", sim_open, sim_close, sim_info, sim_run};
