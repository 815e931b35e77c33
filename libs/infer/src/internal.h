/* internal.h - helpers shared by the engine core and the built-in backends. */
#ifndef SPOOL_INTERNAL_H
#define SPOOL_INTERNAL_H

#include <stdint.h>
#include <string.h>

#include "spool_infer_backend.h"
#include "tailstate.h"

/* The built-in backends. */
extern const spool_backend spool_backend_ref;
extern const spool_backend spool_backend_sim;

/* Reads the cancel flag. */
static inline int spool_cancelled(const int32_t *cancel) {
  return cancel && __atomic_load_n(cancel, __ATOMIC_RELAXED) != 0;
}

/* Latent grid of a frame size: ceil(px / scale). */
static inline uint32_t spool_latent_dim(uint32_t px, uint32_t scale) { return (px + scale - 1) / scale; }

/* Latent frames of n video frames at temporal scale t. */
static inline uint32_t spool_latent_frames(uint32_t n, uint32_t t) { return t > 1 ? (n - 1) / t + 1 : n; }

/* The first audio sample of video frame t at fps frames and rate samples per
 * second: round(t × rate / fps), halves rounded up, floor((2·t·rate + fps) /
 * (2·fps)) for any t (negative in an extension). fps ≥ 1; |t| ≤
 * SPOOL_MAX_AUDIO_FRAME and rate ≤ SPOOL_MAX_AUDIO_RATE keep it in range.
 * Frames [a, b) own samples [spool_sample_at(a), spool_sample_at(b)). */
static inline int64_t spool_sample_at(int64_t t, uint32_t fps, uint32_t rate) {
  int64_t n = 2 * t * (int64_t)rate + (int64_t)fps, d = 2 * (int64_t)fps;
  int64_t q = n / d;
  return n % d != 0 && n < 0 ? q - 1 : q;
}

/* Looks up key in "k=v;k=v" params, copying its value into out (outlen
 * bytes). Returns 1 when found. */
SPOOL_HIDDEN int spool_param(const char *params, const char *key, char *out, size_t outlen);

/* Checks a full-size request (struct_size ≥ sizeof(spool_request):
 * spool_engine_run widens an older caller's first) against the engine's
 * info: sizes, frames, steps, prompt (UTF-8), guidance, first_frame, the
 * tail-state blob's header, checksum and shape, the prefix frames' size,
 * the audio's sample count, rate and values, and the reference frames'
 * size. Writes a message naming the field into err on failure. Whether a
 * backend can use audio or reference frames is the backend's to check. */
SPOOL_HIDDEN spool_status spool_validate_request(const spool_request *req, const spool_engine_info *info,
                                                 char *err, size_t errlen);

#endif
