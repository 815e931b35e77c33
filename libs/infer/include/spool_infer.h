/*
 * spool_infer.h - the C ABI of spool's inference library.
 *
 * One engine runs one model on one device. It is opened once, stays warm, and
 * generates one video segment per spool_engine_run call: a denoise loop over a
 * latent grid, then a decode to RGB frames. Frames, progress and the tail state
 * (the latents of the segment's last `overlap` frames, which condition the next
 * segment of a chain) are streamed out through callbacks. A segment starts
 * from nothing, from the tail state of the previous one, or from media:
 * prefix RGB frames (an image, the last frames of an input video) that the
 * backend encodes into its latent space. An audio-driven model also gets
 * the segment's audio samples, and a talking-head model the reference
 * frames (the avatar) it animates.
 *
 * Conventions:
 *  - Every exported symbol is prefixed spool_ and marked SPOOL_API.
 *  - Handles are opaque; the library allocates and frees them.
 *  - Functions return spool_status; SPOOL_OK (0) is success. Error text is
 *    owned by the engine (spool_engine_last_error) or written into a buffer
 *    the caller owns (spool_engine_open).
 *  - Structs passed in carry struct_size = sizeof(struct) so the ABI can grow.
 *  - Ownership and thread-safety are written on every function.
 */
#ifndef SPOOL_INFER_H
#define SPOOL_INFER_H

#include <stddef.h>
#include <stdint.h>

#if defined(_WIN32)
#define SPOOL_API __declspec(dllexport)
#elif defined(__GNUC__)
#define SPOOL_API __attribute__((visibility("default")))
#else
#define SPOOL_API
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* ABI version of this header. A plugin built against another ABI version is
 * refused with SPOOL_ERR_ABI_MISMATCH (rebuild it: make -C libs/infer <name>).
 *   1: the first.
 *   2: spool_request gains prefix and prefix_len (RGB frames to start from);
 *      first_frame becomes int64_t.
 *   3: spool_request gains audio, audio_len, audio_rate, reference,
 *      reference_len. */
#define SPOOL_INFER_ABI_VERSION 3u

/* Largest frame accepted, in pixels (either orientation). */
#define SPOOL_MAX_WIDTH 1920u
#define SPOOL_MAX_HEIGHT 1080u
/* Named size presets (16:9, landscape); any even size within the limits
 * above is accepted too, portrait included. */
#define SPOOL_540P_WIDTH 960u
#define SPOOL_540P_HEIGHT 540u
#define SPOOL_720P_WIDTH 1280u
#define SPOOL_720P_HEIGHT 720u
#define SPOOL_1080P_WIDTH 1920u
#define SPOOL_1080P_HEIGHT 1080u
/* Largest prompt accepted, in bytes (UTF-8, without the NUL). */
#define SPOOL_MAX_PROMPT_BYTES 8192u
/* Largest segment accepted, in frames. */
#define SPOOL_MAX_FRAMES 1024u
/* Most denoise steps accepted. */
#define SPOOL_MAX_STEPS 1000u
#define SPOOL_MAX_FPS 240u
/* Audio sample rates accepted (spool_request.audio_rate), in Hz. */
#define SPOOL_MIN_AUDIO_RATE 8000u
#define SPOOL_MAX_AUDIO_RATE 192000u
/* With audio, frame indices (first_frame and first_frame + frames) stay
 * within ±SPOOL_MAX_AUDIO_FRAME, so that sample positions fit an int64. */
#define SPOOL_MAX_AUDIO_FRAME (INT64_C(1) << 40)
/* Most CPU threads an engine may be given (spool_engine_options.threads). */
#define SPOOL_MAX_THREADS 256

typedef enum spool_status {
  SPOOL_OK = 0,
  SPOOL_ERR_INVALID_ARGUMENT = 1, /* a request or option is out of range */
  SPOOL_ERR_BACKEND_NOT_FOUND = 2, /* unknown backend, or its plugin is missing */
  SPOOL_ERR_ABI_MISMATCH = 3,      /* a plugin was built for another ABI */
  SPOOL_ERR_CANCELLED = 4,         /* the cancel flag was set */
  SPOOL_ERR_ABORTED = 5,           /* a callback returned non-zero */
  SPOOL_ERR_OUT_OF_MEMORY = 6,
  SPOOL_ERR_DEVICE = 7,            /* the device (GPU) failed or is absent */
  SPOOL_ERR_BACKEND = 8,           /* the backend failed (e.g. a Python exception) */
  SPOOL_ERR_INTERNAL = 9
} spool_status;

/* Opaque engine handle. */
typedef struct spool_engine spool_engine_t;

/* Options of spool_engine_open. Strings are borrowed for the call only.
 * Fields are only ever appended: a caller built against an older header
 * passes its smaller struct_size (at least SPOOL_ENGINE_OPTIONS_V1_SIZE) and
 * the fields it lacks read as 0. */
typedef struct spool_engine_options {
  uint32_t struct_size;    /* sizeof(spool_engine_options) */
  const char *backend;     /* "ref", "sim", "python" or "cuda"; required */
  const char *model;       /* model name; NULL or "" = the backend's default */
  const char *weights_dir; /* directory of the model weights; may be NULL */
  int32_t device;          /* device ordinal; -1 = CPU */
  const char *plugin_dir;  /* where plugin .so files live, searched first; then
                              $SPOOL_INFER_PLUGIN_DIR, then the directory of
                              the running executable (/proc/self/exe) */
  const char *params;      /* backend parameters, "key=value;key=value"; may be NULL
                              (sim: step_ms, frame_us, and hang_at_step,
                              hang_ignores_cancel for tests of a stuck step;
                              python: module, path). */
  int32_t threads;         /* CPU threads the backend may use, calling thread
                              included: 0 = the backend's default (1), else
                              1..SPOOL_MAX_THREADS. ref splits its loops over
                              them with bit-identical results for any count;
                              other backends ignore it. Callbacks always run on
                              the thread that called spool_engine_run. */
} spool_engine_options;

/* struct_size of the first version of spool_engine_options (up to params). */
#define SPOOL_ENGINE_OPTIONS_V1_SIZE (offsetof(spool_engine_options, params) + sizeof(const char *))

/* Facts about an open engine. Strings are owned by the engine and live as
 * long as it does. */
typedef struct spool_engine_info {
  uint32_t struct_size;      /* sizeof(spool_engine_info) */
  const char *backend;       /* backend name */
  const char *model;         /* model name */
  const char *model_version; /* model version string */
  uint32_t latent_channels;  /* channels of the latent grid */
  uint32_t latent_scale;     /* pixels per latent cell along each axis (8) */
  uint32_t frame_align;      /* frames must be ≡ 1 mod frame_align; 1 = any */
  uint32_t temporal_scale;   /* video frames per latent frame: 1, or 4 for
                                Wan-style VAEs, where n frames have
                                (n - 1) / 4 + 1 latent frames; tail states
                                count latent frames */
} spool_engine_info;

/* One segment request. Pointers are borrowed for the duration of
 * spool_engine_run; the engine copies nothing it does not need and keeps
 * nothing after the call.
 * Fields are only ever appended: a caller built against an older header
 * passes its smaller struct_size (at least SPOOL_REQUEST_V1_SIZE) and the
 * fields it lacks read as 0 (prefix, audio and reference NULL). */
typedef struct spool_request {
  uint32_t struct_size;   /* sizeof(spool_request) */
  const char *prompt;     /* UTF-8, NUL-terminated, 1..SPOOL_MAX_PROMPT_BYTES bytes */
  uint64_t seed;          /* segment seed */
  uint32_t width;         /* even, 16..SPOOL_MAX_WIDTH (either orientation) */
  uint32_t height;        /* even, 16..SPOOL_MAX_HEIGHT (either orientation) */
  uint32_t frames;        /* frames generated, overlap included; overlap < frames ≤ SPOOL_MAX_FRAMES */
  uint32_t overlap;       /* leading frames conditioned on cond or prefix; 0 = none */
  uint32_t steps;         /* denoise steps, 1..SPOOL_MAX_STEPS */
  float guidance;         /* classifier-free guidance scale, 0..50 */
  int64_t first_frame;    /* index of the segment's first frame in the video;
                             negative only in an extension, when some of the
                             segment's conditioning frames (prefix, or cond
                             for a window shorter than twice its overlap)
                             come before frame 0 of the output: then
                             -overlap ≤ first_frame < 0 */
  const uint8_t *cond;    /* tail state of the previous segment, or NULL; when
                             given it holds exactly `overlap` frames starting
                             at first_frame, and those frames are reproduced */
  size_t cond_len;        /* bytes at cond; 0 when cond is NULL */
  uint32_t tail_frames;   /* trailing frames whose latents on_tail hands out,
                             ≤ frames; 0 = no tail (last segment, independent mode) */
  uint32_t fps;           /* frames per second of the video, 1..SPOOL_MAX_FPS;
                             0 = not given (backends that need it assume 24) */
  /* Since ABI 2. */
  const uint8_t *prefix;  /* media to start from, or NULL: `overlap` packed
                             RGB24 frames of width × height, each height rows
                             top to bottom of 3 × width bytes, frame after
                             frame. The backend encodes them into its latent
                             space and holds them clean, as it holds a tail
                             state's latents, and the first `overlap` frames
                             come out decoded from them (≈ these frames, as
                             near as the backend's encode and decode go).
                             Mutually exclusive with cond. */
  size_t prefix_len;      /* bytes at prefix: exactly overlap × width × height
                             × 3; 0 when prefix is NULL */
  /* Since ABI 3. */
  const float *audio;     /* the segment's sound, or NULL: mono float32
                             samples (full scale ±1) at audio_rate Hz, exactly
                             those of the segment's frames, overlap included.
                             Frame t of the video owns the samples
                             [S(t), S(t + 1)), S(t) = round(t × audio_rate /
                             fps) with halves rounded up, that is
                             floor((2 × t × audio_rate + fps) / (2 × fps)),
                             so audio holds samples [S(first_frame),
                             S(first_frame + frames)) of the track and frame
                             f of the segment owns audio[S(first_frame + f) −
                             S(first_frame) .. S(first_frame + f + 1) −
                             S(first_frame)). Zeros (silence) where the track
                             has none. Needs fps ≥ 1; every sample finite. */
  size_t audio_len;       /* samples at audio: exactly S(first_frame + frames)
                             − S(first_frame) (0 only when audio is NULL) */
  uint32_t audio_rate;    /* Hz, SPOOL_MIN_AUDIO_RATE..SPOOL_MAX_AUDIO_RATE;
                             0 exactly when audio is NULL */
  const uint8_t *reference; /* what a talking-head model animates, or NULL:
                             exactly `frames` packed RGB24 frames of width ×
                             height (laid out as prefix), frame i being what
                             segment frame i shows of the reference (an
                             image repeated, or a template video's frame,
                             its loop applied by the caller) */
  size_t reference_len;   /* bytes at reference: exactly frames × width ×
                             height × 3; 0 when reference is NULL */
} spool_request;

/* struct_size of the first version of spool_request (up to fps). Its
 * first_frame was a uint64_t: the same bits for every index ≥ 0. */
#define SPOOL_REQUEST_V1_SIZE (offsetof(spool_request, fps) + sizeof(uint32_t))
/* struct_size of the second version of spool_request (up to prefix_len). */
#define SPOOL_REQUEST_V2_SIZE (offsetof(spool_request, prefix_len) + sizeof(size_t))

/* One decoded frame. rgb is owned by the engine and valid only during the
 * callback; copy what must outlive it. */
typedef struct spool_frame {
  uint32_t index;      /* frame index within the segment, from 0 */
  uint32_t width;      /* pixels */
  uint32_t height;     /* pixels */
  uint32_t stride;     /* bytes per row (≥ 3 × width) */
  const uint8_t *rgb;  /* packed RGB24, height rows of stride bytes */
} spool_frame;

/* Callbacks of spool_engine_run, called on the thread that called run, in
 * this order: on_step once per denoise step, on_tail once when denoising is
 * done (before any decode), on_frame once per frame in index order. Each may
 * be NULL. A non-zero return aborts the run with SPOOL_ERR_ABORTED. */
typedef struct spool_callbacks {
  void *user; /* passed back unchanged */
  int (*on_step)(void *user, uint32_t step, uint32_t steps);
  /* state: the tail state (the latents of the last tail_frames frames),
   * owned by the engine, valid during the call only. Feed it back as cond
   * of the next segment. Not called when tail_frames is 0. */
  int (*on_tail)(void *user, const uint8_t *state, size_t len);
  int (*on_frame)(void *user, const spool_frame *frame);
} spool_callbacks;

/* The ABI version the library was built with (SPOOL_INFER_ABI_VERSION).
 * Thread-safe. */
SPOOL_API uint32_t spool_abi_version(void);

/* A static string naming a status. Thread-safe; never NULL. */
SPOOL_API const char *spool_status_string(spool_status status);

/* Opens an engine and loads its model. On success *out owns a new engine
 * that the caller must release with spool_engine_close. On failure *out is
 * NULL and, when errbuf is not NULL, a NUL-terminated message of at most
 * errlen bytes is written into the caller's errbuf.
 *
 * Backends: "ref" and "sim" are built in. Any other name (a-z, 0-9, '_') is
 * a plugin, the shared object libspool_infer_<name>.so, looked for in this
 * order: opts->plugin_dir, $SPOOL_INFER_PLUGIN_DIR, the directory of the
 * running executable. A plugin found nowhere (or not loadable) is
 * SPOOL_ERR_BACKEND_NOT_FOUND with a message naming the file, the
 * directories searched and the make target that builds it; one built for
 * another ABI is SPOOL_ERR_ABI_MISMATCH, with a message naming both ABI
 * versions and that make target. Loaded plugins stay loaded for the
 * life of the process.
 * Thread-safe: engines are independent of one another. */
SPOOL_API spool_status spool_engine_open(const spool_engine_options *opts,
                                         spool_engine_t **out, char *errbuf,
                                         size_t errlen);

/* Closes the engine and frees everything it owns, strings it returned
 * included. NULL is a no-op. Must not run concurrently with any other call on
 * the same engine. */
SPOOL_API void spool_engine_close(spool_engine_t *engine);

/* Fills *info. Thread-safe with respect to other engines; on one engine, not
 * concurrently with spool_engine_run. */
SPOOL_API spool_status spool_engine_info_get(spool_engine_t *engine,
                                             spool_engine_info *info);

/* Generates one segment. Blocks until it is done, failed or cancelled.
 * req and everything it points to (prompt, cond, prefix, audio, reference)
 * are borrowed: the caller owns them and keeps them unchanged until the call
 * returns; the engine keeps no pointer into them afterwards. A req with
 * struct_size below SPOOL_REQUEST_V1_SIZE is SPOOL_ERR_INVALID_ARGUMENT.
 * A backend never ignores audio or reference frames it cannot use: it
 * refuses the request (SPOOL_ERR_INVALID_ARGUMENT). ref and cuda are talking
 * heads when given reference frames (the reference with a mouth opening
 * with the loudness of each frame's samples; silence without audio) and
 * refuse audio without them; sim emits the reference frames and refuses
 * audio; python hands both to its module, which decides.
 * cancel, when not NULL, is owned by the caller, may be set from any thread
 * while the call runs (an atomic store of 1), and is read atomically at
 * least once per denoise step and once per decoded frame; a non-zero value
 * stops the run with SPOOL_ERR_CANCELLED. The library cannot interrupt a
 * backend stuck inside a step (a deadlocked device call, a Python module
 * blocked outside io, sim's hang_ignores_cancel): such a call may never
 * return. The engine then stays busy for good: it must not be run again or
 * closed (spool_engine_close would race the stuck call), and a caller that
 * must go on gives the engine up and ends the process, which frees the
 * device context. An engine runs one request at a time: calls on one engine
 * must be serialised by the caller; different engines may run at once. On
 * failure spool_engine_last_error describes it. */
SPOOL_API spool_status spool_engine_run(spool_engine_t *engine,
                                        const spool_request *req,
                                        const spool_callbacks *cb,
                                        const int32_t *cancel);

/* The message of the last failed call on this engine, "" if none. Owned by
 * the engine; valid until the next call on it. Never NULL for a non-NULL
 * engine. */
SPOOL_API const char *spool_engine_last_error(const spool_engine_t *engine);

#ifdef __cplusplus
}
#endif

#endif /* SPOOL_INFER_H */
