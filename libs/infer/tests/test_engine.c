/* test_engine.c - C unit tests of the engine, ref and sim through the public
 * ABI. Run by `make -C libs/infer check` (and `asan`, `leakcheck`) as
 * test_engine <dir of the fake test plugins>. */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>

#include "spool_infer.h"

static int failures;
#define CHECK(cond, ...)                                         \
  do {                                                           \
    if (!(cond)) {                                               \
      failures++;                                                \
      fprintf(stderr, "%s:%d: FAIL: ", __FILE__, __LINE__);      \
      fprintf(stderr, __VA_ARGS__);                              \
      fprintf(stderr, "\n");                                     \
    }                                                            \
  } while (0)

typedef struct {
  uint8_t *frames; /* all frames, copied */
  size_t frame_bytes;
  uint32_t nframes, steps, abort_at;
  uint8_t *tail;
  size_t tail_len;
  int order_ok, saw_tail;
  int32_t *cancel;                 /* set to 1 at cancel_step or after cancel_frame */
  uint32_t cancel_step, cancel_frame;
} sink;

static int on_step(void *u, uint32_t step, uint32_t steps) {
  sink *s = u;
  if (s->saw_tail || s->nframes) s->order_ok = 0;
  s->steps = step;
  (void)steps;
  if (s->cancel && s->cancel_step == step) __atomic_store_n(s->cancel, 1, __ATOMIC_RELAXED);
  return 0;
}
static int on_tail(void *u, const uint8_t *state, size_t len) {
  sink *s = u;
  if (s->nframes) s->order_ok = 0;
  s->saw_tail = 1;
  s->tail = malloc(len);
  memcpy(s->tail, state, len);
  s->tail_len = len;
  return 0;
}
static int on_frame(void *u, const spool_frame *f) {
  sink *s = u;
  if (s->abort_at && f->index == s->abort_at) return 1;
  if (f->index != s->nframes) s->order_ok = 0;
  size_t n = (size_t)f->stride * f->height;
  s->frame_bytes = n;
  s->frames = realloc(s->frames, n * (s->nframes + 1));
  memcpy(s->frames + n * s->nframes, f->rgb, n);
  s->nframes++;
  if (s->cancel && s->cancel_frame == f->index + 1) __atomic_store_n(s->cancel, 1, __ATOMIC_RELAXED);
  return 0;
}
static void sink_free(sink *s) {
  free(s->frames);
  free(s->tail);
  memset(s, 0, sizeof *s);
}

static spool_engine_t *open_engine_threads(const char *backend, const char *params, int32_t threads) {
  spool_engine_options o = {sizeof o, backend, NULL, NULL, -1, NULL, params, threads};
  spool_engine_t *e = NULL;
  char err[512];
  spool_status st = spool_engine_open(&o, &e, err, sizeof err);
  CHECK(st == SPOOL_OK, "open %s: %s", backend, err);
  return e;
}

static spool_engine_t *open_engine(const char *backend, const char *params) {
  return open_engine_threads(backend, params, 0);
}

static spool_request request(void) {
  spool_request r = {sizeof r};
  r.prompt = "a lighthouse at dusk";
  r.seed = 42;
  r.width = 96;
  r.height = 64;
  r.frames = 13;
  r.steps = 4;
  r.guidance = 5;
  r.tail_frames = 4;
  return r;
}

static spool_status run(spool_engine_t *e, spool_request *r, sink *s, const int32_t *cancel) {
  memset(s, 0, sizeof *s);
  s->order_ok = 1;
  spool_callbacks cb = {s, on_step, on_tail, on_frame};
  return spool_engine_run(e, r, &cb, cancel);
}

static void test_determinism_and_order(void) {
  spool_engine_t *e = open_engine("ref", NULL);
  spool_request r = request();
  sink a, b;
  CHECK(run(e, &r, &a, NULL) == SPOOL_OK, "run: %s", spool_engine_last_error(e));
  CHECK(run(e, &r, &b, NULL) == SPOOL_OK, "run: %s", spool_engine_last_error(e));
  CHECK(a.nframes == 13 && a.steps == 4 && a.saw_tail && a.order_ok, "frames %u steps %u tail %d order %d", a.nframes,
        a.steps, a.saw_tail, a.order_ok);
  CHECK(a.frame_bytes == 96 * 64 * 3, "frame bytes %zu", a.frame_bytes);
  CHECK(memcmp(a.frames, b.frames, a.frame_bytes * 13) == 0, "two runs differ");
  CHECK(a.tail_len == b.tail_len && memcmp(a.tail, b.tail, a.tail_len) == 0, "tails differ");
  sink_free(&a);
  sink_free(&b);
  spool_engine_close(e);
}

static void test_chain_is_seamless(void) {
  spool_engine_t *e = open_engine("ref", NULL);
  spool_request r1 = request();
  sink s1, s2;
  CHECK(run(e, &r1, &s1, NULL) == SPOOL_OK, "seg 1: %s", spool_engine_last_error(e));
  spool_request r2 = request();
  r2.seed = 43;
  r2.overlap = 4;
  r2.first_frame = 13 - 4;
  r2.cond = s1.tail;
  r2.cond_len = s1.tail_len;
  CHECK(run(e, &r2, &s2, NULL) == SPOOL_OK, "seg 2: %s", spool_engine_last_error(e));
  for (uint32_t i = 0; i < 4; i++)
    CHECK(memcmp(s2.frames + i * s2.frame_bytes, s1.frames + (9 + i) * s1.frame_bytes, s1.frame_bytes) == 0,
          "segment 2 frame %u differs from segment 1 frame %u", i, 9 + i);
  sink_free(&s1);
  sink_free(&s2);
  spool_engine_close(e);
}

/* Mean absolute difference of two frames, in levels of 255. */
static double frame_change(const uint8_t *a, const uint8_t *b, size_t n) {
  double d = 0;
  for (size_t i = 0; i < n; i++) d += abs((int)a[i] - (int)b[i]);
  return d / (double)n;
}

/* A chain segment with a new prompt keeps its conditioning frames exactly,
 * continues from them (its first new frame is close to the last of them,
 * where a cut to the new scene would be tens of levels away) and reaches
 * the new prompt's scene by its last frame. */
static void test_prompt_switch_continues(void) {
  spool_engine_t *e = open_engine("ref", NULL);
  spool_request r1 = request();
  r1.frames = 25;
  r1.steps = 8;
  r1.tail_frames = 5;
  sink s1, s2, fresh;
  CHECK(run(e, &r1, &s1, NULL) == SPOOL_OK, "seg 1: %s", spool_engine_last_error(e));
  spool_request r2 = r1;
  r2.prompt = "a blue whale under the arctic ice";
  r2.seed = 43;
  r2.overlap = 5;
  r2.first_frame = 20;
  r2.cond = s1.tail;
  r2.cond_len = s1.tail_len;
  CHECK(run(e, &r2, &s2, NULL) == SPOOL_OK, "seg 2: %s", spool_engine_last_error(e));
  spool_request r3 = r2; /* the new prompt's scene alone, for reference */
  r3.overlap = 0;
  r3.cond = NULL;
  r3.cond_len = 0;
  CHECK(run(e, &r3, &fresh, NULL) == SPOOL_OK, "fresh: %s", spool_engine_last_error(e));
  size_t n = s1.frame_bytes;
  for (uint32_t i = 0; i < 5; i++)
    CHECK(memcmp(s2.frames + i * n, s1.frames + (20 + i) * n, n) == 0, "segment 2 frame %u differs from its conditioning", i);
  double first = frame_change(s2.frames + 4 * n, s2.frames + 5 * n, n);
  double cut = frame_change(s2.frames + 4 * n, fresh.frames + 5 * n, n);
  double last = frame_change(s2.frames + 24 * n, fresh.frames + 24 * n, n);
  CHECK(cut > 15 && first < cut / 5, "the first new frame moves %.2f levels from the conditioning; a cut would be %.2f", first, cut);
  CHECK(last < 3, "the last frame is %.2f levels from the new prompt's scene", last);
  sink_free(&s1);
  sink_free(&s2);
  sink_free(&fresh);
  spool_engine_close(e);
}

static void test_validation(void) {
  static char long_prompt[SPOOL_MAX_PROMPT_BYTES + 2];
  memset(long_prompt, 'a', SPOOL_MAX_PROMPT_BYTES + 1);
  spool_engine_t *e = open_engine("ref", NULL);
  spool_request good = request();
  sink s;
  run(e, &good, &s, NULL);
  uint8_t *blob = s.tail;
  size_t len = s.tail_len;
  struct {
    const char *name;
    spool_request r;
  } cases[64];
  int n = 0;
#define CASE(label, stmt) do { cases[n].name = label; cases[n].r = good; { spool_request *r = &cases[n].r; stmt; } n++; } while (0)
  CASE("odd width", r->width = 95);
  CASE("too big", r->width = 1922);
  CASE("frames 0", r->frames = 0);
  CASE("overlap = frames", r->overlap = 13);
  CASE("steps 0", r->steps = 0);
  CASE("no prompt", r->prompt = NULL);
  CASE("empty prompt", r->prompt = "");
  CASE("bad utf-8", r->prompt = "\xc3\x28");
  CASE("guidance", r->guidance = -1);
  CASE("struct size", r->struct_size = 8);
  CASE("cond without overlap", (r->cond = blob, r->cond_len = len));
  CASE("cond length mismatch", (r->overlap = 4, r->first_frame = 9, r->cond = blob, r->cond_len = len - 1));
  CASE("cond pointer without length", (r->overlap = 4, r->cond = blob, r->cond_len = 0));
  CASE("cond at the wrong frame", (r->overlap = 4, r->first_frame = 8, r->cond = blob, r->cond_len = len));
  CASE("tail > frames", r->tail_frames = 14);
  CASE("square beyond the short side", (r->width = 1200, r->height = 1200));
  CASE("landscape too tall", (r->width = 1920, r->height = 1082));
  CASE("portrait too tall", (r->width = 1080, r->height = 1922));
  CASE("odd height", r->height = 63);
  CASE("too narrow", r->width = 14);
  CASE("frames > max", (r->frames = SPOOL_MAX_FRAMES + 1, r->tail_frames = 0));
  CASE("steps > max", r->steps = SPOOL_MAX_STEPS + 1);
  CASE("guidance NaN", r->guidance = (float)NAN);
  CASE("guidance Inf", r->guidance = (float)INFINITY);
  CASE("guidance > 50", r->guidance = 50.5f);
  CASE("prompt too long", r->prompt = long_prompt);
  CASE("overlong UTF-8", r->prompt = "a\xc0\xaf");
  CASE("UTF-16 surrogate", r->prompt = "\xed\xa0\x80");
  CASE("truncated UTF-8", r->prompt = "caf\xc3");
  CASE("cond of another size", (r->overlap = 4, r->first_frame = 9, r->width = 128, r->cond = blob, r->cond_len = len));
  CASE("cond with too few frames", (r->overlap = 5, r->first_frame = 9, r->cond = blob, r->cond_len = len));
  /* Prefix frames: s.frames holds 13 frames of 96×64, enough for any overlap here. */
  size_t fb = 96 * 64 * 3;
  CASE("prefix and cond", (r->overlap = 4, r->first_frame = 9, r->cond = blob, r->cond_len = len,
                           r->prefix = s.frames, r->prefix_len = 4 * fb));
  CASE("prefix without overlap", (r->prefix = s.frames, r->prefix_len = fb));
  CASE("prefix one byte short", (r->overlap = 2, r->prefix = s.frames, r->prefix_len = 2 * fb - 1));
  CASE("prefix one frame long", (r->overlap = 2, r->prefix = s.frames, r->prefix_len = 3 * fb));
  CASE("prefix pointer without length", (r->overlap = 2, r->prefix = s.frames));
  CASE("prefix length without pointer", (r->overlap = 2, r->prefix_len = 2 * fb));
  CASE("negative first_frame without prefix", (r->overlap = 2, r->first_frame = -2));
  CASE("negative first_frame with cond", (r->overlap = 4, r->first_frame = -4, r->cond = blob, r->cond_len = len));
  CASE("first_frame before -overlap", (r->overlap = 2, r->first_frame = -3, r->prefix = s.frames, r->prefix_len = 2 * fb));
  CASE("first_frame overflows", r->first_frame = INT64_MAX - 12);
  /* Audio: 13 frames at 24 fps and 16 kHz from frame 0 own samples
   * [0, 8667); reference frames: 13 of 96×64 (s.frames holds them). */
  static float audio[9000];
  CASE("audio a sample short", (r->fps = 24, r->audio_rate = 16000, r->audio = audio, r->audio_len = 8666,
                                r->reference = s.frames, r->reference_len = 13 * fb));
  CASE("audio a sample long", (r->fps = 24, r->audio_rate = 16000, r->audio = audio, r->audio_len = 8668,
                               r->reference = s.frames, r->reference_len = 13 * fb));
  CASE("audio without fps", (r->audio_rate = 16000, r->audio = audio, r->audio_len = 8667, r->reference = s.frames,
                             r->reference_len = 13 * fb));
  CASE("audio without rate", (r->fps = 24, r->audio = audio, r->audio_len = 8667, r->reference = s.frames,
                              r->reference_len = 13 * fb));
  CASE("audio rate too low", (r->fps = 24, r->audio_rate = 7999, r->audio = audio, r->audio_len = 8667,
                              r->reference = s.frames, r->reference_len = 13 * fb));
  CASE("audio pointer without length", (r->fps = 24, r->audio_rate = 16000, r->audio = audio));
  CASE("audio past 2^40", (r->fps = 24, r->audio_rate = 16000, r->first_frame = INT64_C(1) << 40, r->audio = audio,
                           r->audio_len = 8667, r->reference = s.frames, r->reference_len = 13 * fb));
  CASE("audio without reference on ref", (r->fps = 24, r->audio_rate = 16000, r->audio = audio, r->audio_len = 8667));
  CASE("reference a byte short", (r->reference = s.frames, r->reference_len = 13 * fb - 1));
  CASE("reference of overlap frames", (r->overlap = 4, r->reference = s.frames, r->reference_len = 4 * fb));
  CASE("reference pointer without length", r->reference = s.frames);
#undef CASE
  for (int i = 0; i < n; i++) {
    sink t;
    spool_status st = run(e, &cases[i].r, &t, NULL);
    CHECK(st == SPOOL_ERR_INVALID_ARGUMENT && spool_engine_last_error(e)[0], "%s: status %d (%s)", cases[i].name, st,
          spool_engine_last_error(e));
    CHECK(t.nframes == 0, "%s: frames were emitted", cases[i].name);
    sink_free(&t);
  }
  /* The messages name the field. */
  spool_request both = good;
  both.overlap = 4, both.first_frame = 9, both.cond = blob, both.cond_len = len, both.prefix = s.frames;
  both.prefix_len = 4 * fb;
  sink t;
  CHECK(run(e, &both, &t, NULL) == SPOOL_ERR_INVALID_ARGUMENT && strstr(spool_engine_last_error(e), "cond and prefix"),
        "both: %s", spool_engine_last_error(e));
  sink_free(&t);
  spool_request short_prefix = good;
  short_prefix.overlap = 2, short_prefix.prefix = s.frames, short_prefix.prefix_len = fb;
  CHECK(run(e, &short_prefix, &t, NULL) == SPOOL_ERR_INVALID_ARGUMENT &&
            strstr(spool_engine_last_error(e), "prefix: 18432 bytes, want overlap × width × height × 3"),
        "short prefix: %s", spool_engine_last_error(e));
  sink_free(&t);
  spool_request short_audio = good;
  short_audio.fps = 24, short_audio.audio_rate = 16000, short_audio.audio = audio, short_audio.audio_len = 8666;
  CHECK(run(e, &short_audio, &t, NULL) == SPOOL_ERR_INVALID_ARGUMENT &&
            strstr(spool_engine_last_error(e),
                   "audio_len 8666: want 8667, the samples of frames [0, 13) at 16000 Hz and 24 fps: [0, 8667)"),
        "short audio: %s", spool_engine_last_error(e));
  sink_free(&t);
  /* Corruption anywhere in the blob is caught. */
  spool_request r = good;
  r.overlap = 4;
  r.first_frame = 9;
  r.cond_len = len;
  uint8_t *bad = malloc(len);
  size_t positions[] = {0, 5, 20, 33, 40, len / 2, len - 1};
  for (size_t i = 0; i < sizeof positions / sizeof *positions; i++) {
    memcpy(bad, blob, len);
    bad[positions[i]] ^= 0x10;
    r.cond = bad;
    sink t;
    CHECK(run(e, &r, &t, NULL) == SPOOL_ERR_INVALID_ARGUMENT, "corrupt byte %zu accepted", positions[i]);
    sink_free(&t);
  }
  free(bad);
  sink_free(&s);
  spool_engine_close(e);
}

static void test_cancel_and_abort(void) {
  spool_engine_t *e = open_engine("ref", NULL);
  spool_request r = request();
  int32_t cancel = 1;
  sink s;
  CHECK(run(e, &r, &s, &cancel) == SPOOL_ERR_CANCELLED, "cancel flag ignored");
  sink_free(&s);
  /* Set while running: denoise stops at the next step, decode at the next
   * frame, on both CPU backends. */
  const char *backends[] = {"ref", "sim"};
  for (int b = 0; b < 2; b++) {
    spool_engine_t *be = open_engine(backends[b], NULL);
    spool_callbacks cbs = {&s, on_step, on_tail, on_frame};
    memset(&s, 0, sizeof s);
    cancel = 0;
    s.cancel = &cancel;
    s.cancel_step = 2;
    CHECK(spool_engine_run(be, &r, &cbs, &cancel) == SPOOL_ERR_CANCELLED && s.steps == 2 && !s.saw_tail,
          "%s: cancel during denoise: %u steps", backends[b], s.steps);
    CHECK(strstr(spool_engine_last_error(be), "cancel") != NULL, "%s: message %s", backends[b],
          spool_engine_last_error(be));
    sink_free(&s);
    cancel = 0;
    s.cancel = &cancel;
    s.cancel_frame = 3;
    CHECK(spool_engine_run(be, &r, &cbs, &cancel) == SPOOL_ERR_CANCELLED && s.nframes == 3 && s.saw_tail,
          "%s: cancel during decode: %u frames", backends[b], s.nframes);
    sink_free(&s);
    spool_engine_close(be);
  }
  memset(&s, 0, sizeof s);
  s.order_ok = 1;
  s.abort_at = 3;
  spool_callbacks cb = {&s, on_step, on_tail, on_frame};
  CHECK(spool_engine_run(e, &r, &cb, NULL) == SPOOL_ERR_ABORTED && s.nframes == 3, "abort: %u frames", s.nframes);
  sink_free(&s);
  spool_engine_close(e);
}

static void test_backends_and_errors(void) {
  char err[512];
  spool_engine_t *e = NULL;
  spool_engine_options o = {sizeof o, "nosuch", NULL, NULL, -1, "/nonexistent", NULL};
  CHECK(spool_engine_open(&o, &e, err, sizeof err) == SPOOL_ERR_BACKEND_NOT_FOUND && e == NULL, "unknown backend");
  CHECK(strstr(err, "libspool_infer_nosuch.so") && strstr(err, "make -C libs/infer nosuch"), "message: %s", err);
  o.backend = "sim";
  o.params = "step_ms=abc";
  CHECK(spool_engine_open(&o, &e, err, sizeof err) == SPOOL_ERR_INVALID_ARGUMENT, "bad sim param");
  CHECK(spool_abi_version() == SPOOL_INFER_ABI_VERSION, "abi version");
  CHECK(strcmp(spool_status_string(SPOOL_ERR_CANCELLED), "cancelled") == 0, "status string");
  spool_engine_close(NULL);
  e = open_engine("sim", "step_ms=0;frame_us=0");
  spool_engine_info info = {sizeof info};
  CHECK(spool_engine_info_get(e, &info) == SPOOL_OK && strcmp(info.backend, "sim") == 0, "sim info");
  spool_request r = request();
  sink s;
  CHECK(run(e, &r, &s, NULL) == SPOOL_OK && s.nframes == 13 && s.saw_tail, "sim run: %s", spool_engine_last_error(e));
  sink_free(&s);
  spool_engine_close(e);
}

/* Any thread count gives the same bytes: frames, tail, a chained segment
 * and one that starts from prefix frames; odd sizes and portrait included. */
static void test_threads_are_bit_identical(void) {
  const uint32_t sizes[][2] = {{96, 64}, {330, 250}, {64, 200}};
  for (size_t k = 0; k < sizeof sizes / sizeof *sizes; k++) {
    sink ref[2][3];
    const int32_t threads[2] = {1, 3};
    for (int t = 0; t < 2; t++) {
      spool_engine_t *e = open_engine_threads("ref", NULL, threads[t]);
      spool_request r = request();
      r.width = sizes[k][0];
      r.height = sizes[k][1];
      CHECK(run(e, &r, &ref[t][0], NULL) == SPOOL_OK, "threads %d: %s", threads[t], spool_engine_last_error(e));
      spool_request r2 = r;
      r2.overlap = 4;
      r2.first_frame = 9;
      r2.cond = ref[t][0].tail;
      r2.cond_len = ref[t][0].tail_len;
      CHECK(run(e, &r2, &ref[t][1], NULL) == SPOOL_OK, "threads %d chain: %s", threads[t], spool_engine_last_error(e));
      /* An extension of segment 1's last 4 frames: the prefix encoder too. */
      spool_request r3 = r;
      r3.overlap = 4;
      r3.first_frame = -4;
      r3.prefix = ref[t][0].frames + 9 * ref[t][0].frame_bytes;
      r3.prefix_len = 4 * ref[t][0].frame_bytes;
      CHECK(run(e, &r3, &ref[t][2], NULL) == SPOOL_OK, "threads %d prefix: %s", threads[t], spool_engine_last_error(e));
      spool_engine_close(e);
    }
    for (int seg = 0; seg < 3; seg++) {
      sink *a = &ref[0][seg], *b = &ref[1][seg];
      CHECK(a->nframes == 13 && b->nframes == 13 &&
                memcmp(a->frames, b->frames, a->frame_bytes * a->nframes) == 0,
            "%ux%u segment %d: 1 and 3 threads differ", sizes[k][0], sizes[k][1], seg);
      CHECK(a->tail_len == b->tail_len && memcmp(a->tail, b->tail, a->tail_len) == 0, "%ux%u segment %d: tails differ",
            sizes[k][0], sizes[k][1], seg);
    }
    for (int t = 0; t < 2; t++)
      for (int seg = 0; seg < 3; seg++) sink_free(&ref[t][seg]);
  }
}

/* overlap > 0 without a tail state is independent mode: every frame is
 * generated afresh; the stitcher crossfades the overlap. */
static void test_independent_mode(void) {
  spool_engine_t *e = open_engine("ref", NULL);
  spool_request r = request();
  r.overlap = 4;
  r.first_frame = 9;
  sink s;
  CHECK(run(e, &r, &s, NULL) == SPOOL_OK && s.nframes == 13, "independent: %s", spool_engine_last_error(e));
  sink_free(&s);
  spool_engine_close(e);
}

/* A caller built against an older header passes a smaller spool_request:
 * what lies past its struct_size (prefix, audio, reference) is never read. Prefix frames run
 * on both built-in backends; sim hands them out unchanged. */
static void test_request_sizes_and_prefix(void) {
  spool_engine_t *e = open_engine("ref", NULL);
  spool_request r = request();
  sink plain, old;
  CHECK(run(e, &r, &plain, NULL) == SPOOL_OK, "plain: %s", spool_engine_last_error(e));
  spool_request v1 = r;
  v1.struct_size = (uint32_t)SPOOL_REQUEST_V1_SIZE;
  v1.prefix = (const uint8_t *)"junk past the caller's struct";
  v1.prefix_len = 3;
  CHECK(run(e, &v1, &old, NULL) == SPOOL_OK, "v1 request: %s", spool_engine_last_error(e));
  CHECK(old.nframes == 13 && memcmp(old.frames, plain.frames, plain.frame_bytes * 13) == 0,
        "a v1 request differs from the same request without a prefix");
  v1.struct_size = (uint32_t)SPOOL_REQUEST_V1_SIZE - 1;
  sink t;
  CHECK(run(e, &v1, &t, NULL) == SPOOL_ERR_INVALID_ARGUMENT && strstr(spool_engine_last_error(e), "struct_size"),
        "a request smaller than v1: %s", spool_engine_last_error(e));
  sink_free(&t);
  CHECK(spool_engine_run(e, NULL, NULL, NULL) == SPOOL_ERR_INVALID_ARGUMENT, "NULL request");
  /* A caller built against ABI 2: audio and reference past its struct are
   * never read. */
  spool_request v2 = r;
  v2.struct_size = (uint32_t)SPOOL_REQUEST_V2_SIZE;
  v2.audio = (const float *)"junk past the caller's struct";
  v2.audio_len = 5;
  v2.audio_rate = 3;
  v2.reference = (const uint8_t *)"junk";
  v2.reference_len = 4;
  CHECK(run(e, &v2, &t, NULL) == SPOOL_OK && t.nframes == 13 && memcmp(t.frames, plain.frames, plain.frame_bytes * 13) == 0,
        "a v2 request differs from the same request without audio: %s", spool_engine_last_error(e));
  sink_free(&t);

  /* Image to video (1 prefix frame at frame 0) and an extension (4 frames
   * before frame 0): the prefix frames come out decoded, close to the given
   * ones (the Go tests state the bound), and the run is deterministic. */
  const uint32_t overlaps[2] = {1, 4};
  const int64_t firsts[2] = {0, -4};
  for (int k = 0; k < 2; k++) {
    spool_request p = r;
    p.seed = 44;
    p.overlap = overlaps[k];
    p.first_frame = firsts[k];
    p.prefix = plain.frames + (13 - overlaps[k]) * plain.frame_bytes;
    p.prefix_len = overlaps[k] * plain.frame_bytes;
    sink a, b;
    CHECK(run(e, &p, &a, NULL) == SPOOL_OK && a.nframes == 13 && a.saw_tail, "prefix %u: %s", overlaps[k],
          spool_engine_last_error(e));
    CHECK(run(e, &p, &b, NULL) == SPOOL_OK && memcmp(a.frames, b.frames, a.frame_bytes * 13) == 0,
          "prefix %u: two runs differ", overlaps[k]);
    double err = frame_change(a.frames, p.prefix, p.prefix_len);
    CHECK(err < 3, "prefix %u: decoded prefix frames %.2f levels from the given ones", overlaps[k], err);
    sink_free(&a);
    sink_free(&b);
  }
  spool_engine_close(e);

  spool_engine_t *sim = open_engine("sim", "step_ms=0");
  spool_request p = r;
  p.overlap = 2;
  p.first_frame = -2;
  p.prefix = plain.frames;
  p.prefix_len = 2 * plain.frame_bytes;
  CHECK(run(sim, &p, &t, NULL) == SPOOL_OK && t.nframes == 13 && memcmp(t.frames, plain.frames, p.prefix_len) == 0,
        "sim: the prefix frames are not its first frames: %s", spool_engine_last_error(sim));
  sink_free(&t);
  spool_engine_close(sim);
  sink_free(&plain);
  sink_free(&old);
}

/* The talking head (reference frames and audio): deterministic, the same
 * bytes for 1 and 3 threads, a chain seamless, the mouth there when the
 * audio is loud and not in silence; sim hands the reference frames out.
 * (The Go tests measure how the mouth follows the loudness.) */
static void test_talking_head(void) {
  spool_engine_t *plain_e = open_engine("ref", NULL);
  spool_request r = request();
  r.frames = 22, r.tail_frames = 0;
  sink ref;
  CHECK(run(plain_e, &r, &ref, NULL) == SPOOL_OK, "reference frames: %s", spool_engine_last_error(plain_e));
  spool_engine_close(plain_e);
  /* Frames 0..21 at 25 fps and 8 kHz: 320 samples a frame; 5..9 loud. */
  static float audio[22 * 320];
  for (int i = 5 * 320; i < 10 * 320; i++) audio[i] = 0.5f * sinf((float)i * 0.2f);
  spool_request t1 = request();
  t1.frames = 13, t1.tail_frames = 4, t1.fps = 25, t1.audio_rate = 8000, t1.audio = audio, t1.audio_len = 13 * 320;
  t1.reference = ref.frames, t1.reference_len = 13 * ref.frame_bytes;
  spool_request t2 = t1;
  t2.first_frame = 9, t2.overlap = 4, t2.audio = audio + 9 * 320, t2.reference = ref.frames + 9 * ref.frame_bytes;
  sink a[2][2];
  const int32_t threads[2] = {1, 3};
  for (int k = 0; k < 2; k++) {
    spool_engine_t *e = open_engine_threads("ref", NULL, threads[k]);
    CHECK(run(e, &t1, &a[k][0], NULL) == SPOOL_OK && a[k][0].nframes == 13, "talk 1: %s", spool_engine_last_error(e));
    t2.cond = a[k][0].tail, t2.cond_len = a[k][0].tail_len;
    CHECK(run(e, &t2, &a[k][1], NULL) == SPOOL_OK && a[k][1].nframes == 13, "talk 2: %s", spool_engine_last_error(e));
    spool_engine_close(e);
  }
  size_t fb = ref.frame_bytes;
  CHECK(memcmp(a[0][0].frames, a[1][0].frames, 13 * fb) == 0 && memcmp(a[0][1].frames, a[1][1].frames, 13 * fb) == 0,
        "talking head: 1 and 3 threads differ");
  CHECK(memcmp(a[0][1].frames, a[0][0].frames + 9 * fb, 4 * fb) == 0, "talking head: the chain is not seamless");
  /* The mouth's centre pixel (48, 44): dark when loud (frame 7), the
   * reference's in silence (frame 2). */
  size_t px = (44 * 96 + 48) * 3;
  int loud = a[0][0].frames[7 * fb + px] + a[0][0].frames[7 * fb + px + 1];
  int quiet = a[0][0].frames[2 * fb + px] + a[0][0].frames[2 * fb + px + 1];
  int given = ref.frames[2 * fb + px] + ref.frames[2 * fb + px + 1];
  CHECK(loud < 160 && abs(quiet - given) < 12, "talking head: mouth pixel %d when loud, %d in silence (reference %d)",
        loud, quiet, given);
  spool_engine_t *sim = open_engine("sim", "step_ms=0");
  sink t;
  CHECK(run(sim, &t1, &t, NULL) == SPOOL_OK && memcmp(t.frames, t1.reference, 13 * fb) == 0,
        "sim: the reference frames are not its frames: %s", spool_engine_last_error(sim));
  sink_free(&t);
  spool_engine_close(sim);
  for (int k = 0; k < 2; k++) sink_free(&a[k][0]), sink_free(&a[k][1]);
  sink_free(&ref);
}

/* Plugin loading: a missing plugin, one built for another ABI, one without
 * the entry point, one whose device is absent; old option structs; threads. */
static void test_plugins_and_options(const char *dir) {
  char err[1024];
  spool_engine_t *e = NULL;
  /* A backend whose plugin is never built: the lookup falls back to the
   * program's directory (build/, where make cuda puts the cuda plugin), so
   * a real backend's name would be found there once it is built. */
  spool_engine_options o = {sizeof o, "absent", NULL, NULL, 0, "/nonexistent/plugins", NULL, 0};
  unsetenv("SPOOL_INFER_PLUGIN_DIR");
  CHECK(spool_engine_open(&o, &e, err, sizeof err) == SPOOL_ERR_BACKEND_NOT_FOUND && e == NULL, "missing plugin");
  CHECK(strstr(err, "libspool_infer_absent.so") && strstr(err, "/nonexistent/plugins") &&
            strstr(err, "make -C libs/infer absent") && strstr(err, "SPOOL_INFER_PLUGIN_DIR"),
        "missing plugin message: %s", err);
  if (!dir) {
    fprintf(stderr, "test_engine: no plugin dir given, skipping the fake plugins\n");
    return;
  }
  o.plugin_dir = dir;
  o.backend = "fakeabi";
  CHECK(spool_engine_open(&o, &e, err, sizeof err) == SPOOL_ERR_ABI_MISMATCH && e == NULL, "ABI mismatch: %s", err);
  CHECK(strstr(err, "ABI 99") && strstr(err, "rebuild"), "ABI message: %s", err);
  /* A plugin built for ABI 1 answers NULL when asked for this ABI, as every
   * real plugin does for an ABI not its own: the message still names both
   * versions and the make target that rebuilds it. */
  o.backend = "fakeabi1";
  CHECK(spool_engine_open(&o, &e, err, sizeof err) == SPOOL_ERR_ABI_MISMATCH && e == NULL, "ABI 1 plugin: %s", err);
  char want[64];
  snprintf(want, sizeof want, "this library is ABI %u", SPOOL_INFER_ABI_VERSION);
  CHECK(strstr(err, "built for ABI 1,") && strstr(err, want) &&
            strstr(err, "make -C libs/infer fakeabi1"),
        "ABI 1 message: %s", err);
  /* The same for a plugin of the ABI before this one (2: no audio, no
   * reference frames), whose requests would lack their fields. */
  o.backend = "fakeabi2";
  CHECK(spool_engine_open(&o, &e, err, sizeof err) == SPOOL_ERR_ABI_MISMATCH && e == NULL, "ABI 2 plugin: %s", err);
  CHECK(strstr(err, "built for ABI 2,") && strstr(err, want) && strstr(err, "make -C libs/infer fakeabi2"),
        "ABI 2 message: %s", err);
  o.backend = "noentry";
  CHECK(spool_engine_open(&o, &e, err, sizeof err) == SPOOL_ERR_BACKEND_NOT_FOUND, "no entry point: %s", err);
  CHECK(strstr(err, "spool_plugin_backend") != NULL, "no entry message: %s", err);
  o.backend = "fakedev";
  CHECK(spool_engine_open(&o, &e, err, sizeof err) == SPOOL_ERR_DEVICE && e == NULL, "device error: %s", err);
  CHECK(strstr(err, "no GPU here") != NULL, "device message: %s", err);
  /* Found through the environment when no plugin_dir is given. */
  o.plugin_dir = NULL;
  setenv("SPOOL_INFER_PLUGIN_DIR", dir, 1);
  CHECK(spool_engine_open(&o, &e, err, sizeof err) == SPOOL_ERR_DEVICE, "env plugin dir: %s", err);
  unsetenv("SPOOL_INFER_PLUGIN_DIR");
  o.backend = "../evil";
  CHECK(spool_engine_open(&o, &e, err, sizeof err) == SPOOL_ERR_BACKEND_NOT_FOUND, "path in a backend name");

  /* A caller built against the first header (no threads field). */
  o.backend = "ref";
  o.device = -1;
  o.struct_size = SPOOL_ENGINE_OPTIONS_V1_SIZE;
  o.threads = 999; /* beyond the caller's struct: must be ignored */
  CHECK(spool_engine_open(&o, &e, err, sizeof err) == SPOOL_OK, "v1 options: %s", err);
  spool_engine_close(e);
  o.struct_size = 8;
  CHECK(spool_engine_open(&o, &e, err, sizeof err) == SPOOL_ERR_ABI_MISMATCH, "tiny struct_size");
  o.struct_size = sizeof o;
  o.threads = -1;
  CHECK(spool_engine_open(&o, &e, err, sizeof err) == SPOOL_ERR_INVALID_ARGUMENT, "threads -1");
  o.threads = SPOOL_MAX_THREADS + 1;
  CHECK(spool_engine_open(&o, &e, err, sizeof err) == SPOOL_ERR_INVALID_ARGUMENT, "threads too many");
  o.backend = "";
  CHECK(spool_engine_open(&o, &e, err, sizeof err) == SPOOL_ERR_INVALID_ARGUMENT, "empty backend");
  CHECK(spool_engine_open(NULL, &e, err, sizeof err) == SPOOL_ERR_INVALID_ARGUMENT, "NULL options");
  CHECK(strcmp(spool_engine_last_error(NULL), "") == 0, "last_error(NULL)");
}

/* The sim backend: a tail state of the right shape, cancel between steps. */
static void test_sim(void) {
  spool_engine_t *e = open_engine("sim", "step_ms=1");
  spool_request r = request();
  r.steps = 50;
  int32_t cancel = 0;
  sink s;
  CHECK(run(e, &r, &s, &cancel) == SPOOL_OK && s.tail_len == 40 + 4u * 16 * 8 * 12 * 4, "sim tail of %zu bytes",
        s.tail_len);
  /* Its tail conditions the next sim segment, as a chain would. */
  spool_request r2 = request();
  r2.overlap = 4;
  r2.first_frame = 9;
  r2.cond = s.tail;
  r2.cond_len = s.tail_len;
  sink s2;
  CHECK(run(e, &r2, &s2, NULL) == SPOOL_OK, "sim chain: %s", spool_engine_last_error(e));
  sink_free(&s2);
  sink_free(&s);
  spool_engine_close(e);
}

/* Sets the cancel flag after 50 ms, from another thread, as the Go
 * binding's watcher does. */
static void *cancel_later(void *flag) {
  struct timespec ts = {0, 50 * 1000 * 1000};
  nanosleep(&ts, NULL);
  __atomic_store_n((int32_t *)flag, 1, __ATOMIC_RELAXED);
  return NULL;
}

/* The stuck step of backend (sim or ref, each with its params): no
 * progress after step n - 1, and only the cancel flag (set from another
 * thread) ends the run; bad hang params are refused, naming the backend.
 * A ref engine that hung and one that never does make the same frames. */
static void test_hang(const char *backend, const char *params) {
  char err[512];
  const char *bad[] = {"hang_at_step=0", "hang_at_step=abc", "hang_at_step=", "hang_at_step=1001",
                       "hang_ignores_cancel=1", "hang_at_step=2;hang_ignores_cancel=yes"};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    spool_engine_t *e = NULL;
    spool_engine_options o = {sizeof o, backend, NULL, NULL, -1, NULL, bad[i]};
    CHECK(spool_engine_open(&o, &e, err, sizeof err) == SPOOL_ERR_INVALID_ARGUMENT && e == NULL &&
              strstr(err, "hang_") && strstr(err, backend),
          "%s %s: opened (%s)", backend, bad[i], err);
  }
  spool_engine_t *e = open_engine(backend, params);
  spool_request r = request();
  int32_t cancel = 0;
  pthread_t th;
  CHECK(pthread_create(&th, NULL, cancel_later, &cancel) == 0, "thread");
  sink s;
  spool_status st = run(e, &r, &s, &cancel);
  pthread_join(th, NULL);
  CHECK(st == SPOOL_ERR_CANCELLED && s.steps == 2 && !s.saw_tail && s.nframes == 0,
        "%s hang at step 3: status %d, %u steps, tail %d, %u frames", backend, st, s.steps, s.saw_tail, s.nframes);
  CHECK(strstr(spool_engine_last_error(e), "step 3"), "%s message: %s", backend, spool_engine_last_error(e));
  sink_free(&s);
  /* The engine is usable after a cancelled hang; a hang past the last step
   * never happens. */
  r.steps = 2;
  CHECK(run(e, &r, &s, NULL) == SPOOL_OK && s.nframes == 13, "%s after the hang: %s", backend, spool_engine_last_error(e));
  spool_engine_t *plain = open_engine(backend, NULL);
  sink p;
  CHECK(run(plain, &r, &p, NULL) == SPOOL_OK && p.nframes == s.nframes && p.frame_bytes == s.frame_bytes &&
            memcmp(p.frames, s.frames, (size_t)s.nframes * s.frame_bytes) == 0,
        "%s: the frames after a hang differ from an engine without hang params", backend);
  sink_free(&p);
  sink_free(&s);
  spool_engine_close(plain);
  spool_engine_close(e);
}

int main(int argc, char **argv) {
  test_determinism_and_order();
  test_chain_is_seamless();
  test_prompt_switch_continues();
  test_validation();
  test_cancel_and_abort();
  test_backends_and_errors();
  test_threads_are_bit_identical();
  test_independent_mode();
  test_request_sizes_and_prefix();
  test_talking_head();
  test_plugins_and_options(argc > 1 ? argv[1] : NULL);
  test_sim();
  test_hang("sim", "step_ms=0;hang_at_step=3");
  test_hang("ref", "hang_at_step=3");
  if (failures) {
    fprintf(stderr, "%d check(s) failed\n", failures);
    return 1;
  }
  printf("test_engine: all checks passed\n");
  return 0;
}
