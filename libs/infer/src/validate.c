/* validate.c - request validation, done once by the engine for every backend,
 * and the parameters the built-in backends share. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "internal.h"

#define FAIL(...) do { snprintf(err, errlen, __VA_ARGS__); return SPOOL_ERR_INVALID_ARGUMENT; } while (0)

static int valid_utf8(const unsigned char *s, size_t n) {
  size_t i = 0;
  while (i < n) {
    unsigned char c = s[i];
    size_t len;
    uint32_t cp;
    if (c < 0x80) { i++; continue; }
    else if ((c & 0xE0) == 0xC0) { len = 2; cp = c & 0x1F; }
    else if ((c & 0xF0) == 0xE0) { len = 3; cp = c & 0x0F; }
    else if ((c & 0xF8) == 0xF0) { len = 4; cp = c & 0x07; }
    else return 0;
    if (i + len > n) return 0;
    for (size_t k = 1; k < len; k++) {
      if ((s[i + k] & 0xC0) != 0x80) return 0;
      cp = cp << 6 | (s[i + k] & 0x3F);
    }
    if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)) ||
        (cp >= 0xD800 && cp <= 0xDFFF))
      return 0;
    i += len;
  }
  return 1;
}

int spool_param(const char *params, const char *key, char *out, size_t outlen) {
  if (!params || !key) return 0;
  size_t klen = strlen(key);
  const char *p = params;
  while (*p) {
    const char *end = strchr(p, ';');
    size_t n = end ? (size_t)(end - p) : strlen(p);
    if (n > klen && strncmp(p, key, klen) == 0 && p[klen] == '=') {
      size_t vlen = n - klen - 1;
      if (vlen >= outlen) vlen = outlen - 1;
      memcpy(out, p + klen + 1, vlen);
      out[vlen] = 0;
      return 1;
    }
    if (!end) break;
    p = end + 1;
  }
  return 0;
}

spool_status spool_hang_params(const char *backend, const char *params, spool_hang *h, char *err, size_t errlen) {
  char v[32];
  memset(h, 0, sizeof *h);
  if (spool_param(params, "hang_at_step", v, sizeof v)) {
    char *end;
    long n = strtol(v, &end, 10);
    if (*end || end == v || n < 1 || n > (long)SPOOL_MAX_STEPS)
      FAIL("%s param hang_at_step=%s: want a step number, 1..%u", backend, v, SPOOL_MAX_STEPS);
    h->at_step = (uint32_t)n;
  }
  if (spool_param(params, "hang_ignores_cancel", v, sizeof v)) {
    if (strcmp(v, "0") != 0 && strcmp(v, "1") != 0) FAIL("%s param hang_ignores_cancel=%s: want 0 or 1", backend, v);
    h->ignores_cancel = v[0] == '1';
    if (h->ignores_cancel && !h->at_step) FAIL("%s param hang_ignores_cancel=1 needs hang_at_step", backend);
  }
  return SPOOL_OK;
}

void spool_hang_wait(const spool_hang *h, const int32_t *cancel) {
  const struct timespec ms = {0, 1000 * 1000};
  while (h->ignores_cancel || !spool_cancelled(cancel)) nanosleep(&ms, NULL);
}

spool_status spool_validate_request(const spool_request *req, const spool_engine_info *info, char *err,
                                    size_t errlen) {
  if (!req) FAIL("request: NULL");
  if (req->struct_size < sizeof(spool_request)) /* the engine widens an older caller's request first */
    FAIL("request: struct_size %u, want %zu (built against another header?)", req->struct_size, sizeof(spool_request));
  uint32_t w = req->width, h = req->height;
  uint32_t lo = w < h ? w : h, hi = w < h ? h : w;
  if (w % 2 || h % 2 || lo < 16 || hi > SPOOL_MAX_WIDTH || lo > SPOOL_MAX_HEIGHT)
    FAIL("size %ux%u: want even sides, 16..%u on the long side and 16..%u on the short side", w, h, SPOOL_MAX_WIDTH,
         SPOOL_MAX_HEIGHT);
  if (req->frames == 0 || req->frames > SPOOL_MAX_FRAMES) FAIL("frames %u: want 1..%u", req->frames, SPOOL_MAX_FRAMES);
  if (req->overlap >= req->frames) FAIL("overlap %u: want fewer than frames (%u)", req->overlap, req->frames);
  if (info->frame_align > 1 && (req->frames - 1) % info->frame_align != 0)
    FAIL("frames %u: this model wants frames ≡ 1 (mod %u)", req->frames, info->frame_align);
  if (req->fps > SPOOL_MAX_FPS) FAIL("fps %u: want 0 (not given) or 1..%u", req->fps, SPOOL_MAX_FPS);
  if (req->tail_frames > req->frames) FAIL("tail_frames %u: want at most frames (%u)", req->tail_frames, req->frames);
  if (req->steps == 0 || req->steps > SPOOL_MAX_STEPS) FAIL("steps %u: want 1..%u", req->steps, SPOOL_MAX_STEPS);
  if (!isfinite(req->guidance) || req->guidance < 0 || req->guidance > 50)
    FAIL("guidance %g: want a finite value in 0..50", (double)req->guidance);
  if (!req->prompt) FAIL("prompt: NULL");
  size_t plen = strnlen(req->prompt, SPOOL_MAX_PROMPT_BYTES + 1);
  if (plen == 0 || plen > SPOOL_MAX_PROMPT_BYTES) FAIL("prompt: %zu bytes, want 1..%u", plen, SPOOL_MAX_PROMPT_BYTES);
  if (!valid_utf8((const unsigned char *)req->prompt, plen)) FAIL("prompt: not valid UTF-8");
  if (req->first_frame > INT64_MAX - (int64_t)req->frames)
    FAIL("first_frame %lld: the segment's last frame would be past the largest index", (long long)req->first_frame);
  if ((req->cond == NULL) != (req->cond_len == 0)) FAIL("cond: pointer and length disagree");
  if ((req->prefix == NULL) != (req->prefix_len == 0)) FAIL("prefix: pointer and length disagree");
  if (req->cond && req->prefix)
    FAIL("cond and prefix: both given; a segment starts from a tail state (cond) or from media (prefix), not both");
  if (req->first_frame < 0) {
    if (!req->prefix && !req->cond)
      FAIL("first_frame %lld: negative only for a segment of an extension, whose conditioning frames (prefix or cond) "
           "may come before frame 0",
           (long long)req->first_frame);
    if (req->first_frame < -(int64_t)req->overlap)
      FAIL("first_frame %lld: at least -overlap (%lld): only conditioning frames come before frame 0",
           (long long)req->first_frame, -(long long)req->overlap);
  }
  if (req->prefix) {
    if (req->overlap == 0) FAIL("prefix: frames were given but overlap is 0");
    uint64_t want = (uint64_t)req->overlap * w * h * 3; /* ≤ 1024 × 1920 × 1080 × 3: no overflow */
    if ((uint64_t)req->prefix_len != want)
      FAIL("prefix: %zu bytes, want overlap × width × height × 3 = %u × %u × %u × 3 = %llu (packed RGB24 frames)",
           req->prefix_len, req->overlap, w, h, (unsigned long long)want);
  }
  if ((req->audio == NULL) != (req->audio_len == 0)) FAIL("audio: pointer and length (audio_len) disagree");
  if (req->audio_rate == 0 && req->audio)
    FAIL("audio_rate 0: samples were given; want their rate, %u..%u Hz", SPOOL_MIN_AUDIO_RATE, SPOOL_MAX_AUDIO_RATE);
  if (req->audio_rate) {
    if (req->audio_rate < SPOOL_MIN_AUDIO_RATE || req->audio_rate > SPOOL_MAX_AUDIO_RATE)
      FAIL("audio_rate %u: want %u..%u Hz", req->audio_rate, SPOOL_MIN_AUDIO_RATE, SPOOL_MAX_AUDIO_RATE);
    if (req->fps == 0)
      FAIL("audio: fps is 0 (not given); audio needs the frame rate, 1..%u, to know which samples each frame owns",
           SPOOL_MAX_FPS);
    int64_t end = req->first_frame + (int64_t)req->frames; /* no overflow: checked above */
    if (req->first_frame < -SPOOL_MAX_AUDIO_FRAME || end > SPOOL_MAX_AUDIO_FRAME)
      FAIL("first_frame %lld: with audio, frames [first_frame, first_frame + frames) must lie within ±2^40",
           (long long)req->first_frame);
    int64_t lo = spool_sample_at(req->first_frame, req->fps, req->audio_rate);
    int64_t hi = spool_sample_at(end, req->fps, req->audio_rate);
    if ((uint64_t)req->audio_len != (uint64_t)(hi - lo))
      FAIL("audio_len %zu: want %lld, the samples of frames [%lld, %lld) at %u Hz and %u fps: [%lld, %lld)",
           req->audio_len, (long long)(hi - lo), (long long)req->first_frame, (long long)end, req->audio_rate,
           req->fps, (long long)lo, (long long)hi);
    for (size_t i = 0; i < req->audio_len; i++)
      if (!isfinite(req->audio[i])) FAIL("audio: sample %zu is %g; want finite samples", i, (double)req->audio[i]);
  }
  if ((req->reference == NULL) != (req->reference_len == 0))
    FAIL("reference: pointer and length (reference_len) disagree");
  if (req->reference) {
    uint64_t want = (uint64_t)req->frames * w * h * 3; /* ≤ 1024 × 1920 × 1080 × 3: no overflow */
    if ((uint64_t)req->reference_len != want)
      FAIL("reference_len %zu: want frames × width × height × 3 = %u × %u × %u × 3 = %llu (packed RGB24 frames, "
           "one per frame of the segment)",
           req->reference_len, req->frames, w, h, (unsigned long long)want);
  }
  if (req->cond) {
    if (req->overlap == 0) FAIL("cond: a tail state was given but overlap is 0");
    spool_tail_view v;
    spool_status st = spool_tail_parse(req->cond, req->cond_len, &v, NULL, 0, err, errlen);
    if (st != SPOOL_OK) return st;
    uint32_t lh = spool_latent_dim(h, info->latent_scale), lw = spool_latent_dim(w, info->latent_scale);
    if (v.channels != info->latent_channels || v.latent_h != lh || v.latent_w != lw)
      FAIL("cond: tail state of %ux%ux%u latents, this request needs %ux%ux%u", v.channels, v.latent_h, v.latent_w,
           info->latent_channels, lh, lw);
    uint32_t lf = spool_latent_frames(req->overlap, info->temporal_scale);
    if (v.frames != lf)
      FAIL("cond: tail state holds %u latent frames, overlap %u needs %u", v.frames, req->overlap, lf);
    /* The blob holds the int64's two's complement bits: compare bits. */
    if (v.first_frame != (uint64_t)req->first_frame)
      FAIL("cond: tail state starts at frame %lld, this segment at %lld", (long long)(int64_t)v.first_frame,
           (long long)req->first_frame);
  }
  return SPOOL_OK;
}
