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

/* A denoise step that never ends, for the tests of a worker's stall
 * watchdog (params of the ref and sim backends, off by default):
 *  - hang_at_step=<n> (1..SPOOL_MAX_STEPS): step n of every run never ends
 *    and reports nothing; it still reads the cancel flag (every
 *    millisecond), and the run then ends SPOOL_ERR_CANCELLED: a stuck step
 *    that honours cancel.
 *  - hang_ignores_cancel=1 (0 or 1; needs hang_at_step): the step does not
 *    read the cancel flag either, so the run never returns, like a
 *    deadlocked device call; only a process exit ends it. */
typedef struct {
  uint32_t at_step; /* 0: no hang */
  int ignores_cancel;
} spool_hang;

/* Reads the hang params of backend ("ref", "sim") from params into h
 * (zeroed when absent). SPOOL_ERR_INVALID_ARGUMENT with a message naming
 * the param on a bad value. */
SPOOL_HIDDEN spool_status spool_hang_params(const char *backend, const char *params, spool_hang *h, char *err,
                                            size_t errlen);

/* The stuck step of h: returns once the cancel flag is set, never when h
 * ignores cancel. */
SPOOL_HIDDEN void spool_hang_wait(const spool_hang *h, const int32_t *cancel);

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
