/* test_python.c - the python plugin through the public ABI, as a worker
 * uses it: dlopen'ed by the engine (RTLD_LOCAL), numpy imported inside it.
 * Run by `make -C libs/infer python-check` from libs/infer:
 *   build/test_python <plugin dir> <python dir>
 * Covers: a two-segment chain through the tail blob (deterministic,
 * seamless), two engines running at once on two threads (one interpreter,
 * GIL released), a Python exception's traceback, protocol violations,
 * prefix frames (numpy, signed first_frame),
 * cancel (before, mid-run, swallowed by the module), a caller's abort, and a
 * missing module. */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "spool_infer.h"

static int failures;
#define CHECK(cond, ...)                                    \
  do {                                                      \
    if (!(cond)) {                                          \
      failures++;                                           \
      fprintf(stderr, "%s:%d: FAIL: ", __FILE__, __LINE__); \
      fprintf(stderr, __VA_ARGS__);                         \
      fprintf(stderr, "\n");                                \
    }                                                       \
  } while (0)

static const char *plugin_dir, *py_dir;

typedef struct {
  uint8_t *frames; /* all frames, copied */
  size_t frame_bytes;
  uint32_t nframes, steps, abort_at, cancel_at;
  int32_t *cancel;
  uint8_t *tail;
  size_t tail_len;
  int order_ok, saw_tail;
} sink;

static int on_step(void *u, uint32_t step, uint32_t steps) {
  sink *s = u;
  if (s->saw_tail || s->nframes) s->order_ok = 0;
  s->steps = step;
  if (s->cancel_at && step == s->cancel_at) __atomic_store_n(s->cancel, 1, __ATOMIC_RELAXED);
  (void)steps;
  return 0;
}
static int on_tail(void *u, const uint8_t *state, size_t len) {
  sink *s = u;
  if (s->nframes || s->saw_tail) s->order_ok = 0;
  s->saw_tail = 1;
  s->tail = malloc(len);
  memcpy(s->tail, state, len);
  s->tail_len = len;
  return 0;
}
static int on_frame(void *u, const spool_frame *f) {
  sink *s = u;
  if (s->abort_at && f->index == s->abort_at) return 1;
  if (f->index != s->nframes || f->stride != 3 * f->width) s->order_ok = 0;
  size_t n = (size_t)f->stride * f->height;
  s->frame_bytes = n;
  s->frames = realloc(s->frames, n * (s->nframes + 1));
  memcpy(s->frames + n * s->nframes, f->rgb, n);
  s->nframes++;
  return 0;
}
static void sink_free(sink *s) {
  free(s->frames);
  free(s->tail);
  memset(s, 0, sizeof *s);
}

static spool_engine_t *open_python(const char *module, spool_status *st, char *err, size_t errlen) {
  char params[2048];
  snprintf(params, sizeof params, "module=%s;path=%s:%s/tests", module, py_dir, py_dir);
  spool_engine_options o = {sizeof o, "python", NULL, NULL, -1, plugin_dir, params};
  spool_engine_t *e = NULL;
  *st = spool_engine_open(&o, &e, err, errlen);
  return e;
}

static spool_engine_t *must_open(const char *module) {
  char err[4096];
  spool_status st;
  spool_engine_t *e = open_python(module, &st, err, sizeof err);
  if (st != SPOOL_OK) {
    fprintf(stderr, "FATAL: open python module %s: %s: %s\n", module, spool_status_string(st), err);
    exit(1);
  }
  return e;
}

static spool_request request(void) {
  spool_request r = {sizeof r};
  r.prompt = "a fox in snow";
  r.seed = 3;
  r.width = 64;
  r.height = 48;
  r.frames = 9;
  r.steps = 4;
  r.guidance = 5;
  r.tail_frames = 3;
  return r;
}

static spool_status run(spool_engine_t *e, const spool_request *r, sink *s, int32_t *cancel) {
  s->order_ok = 1;
  s->cancel = cancel;
  spool_callbacks cb = {s, on_step, on_tail, on_frame};
  return spool_engine_run(e, r, &cb, cancel);
}

static void test_chain(void) {
  spool_engine_t *e = must_open("spool_numpy_ref");
  spool_engine_info info = {sizeof info};
  CHECK(spool_engine_info_get(e, &info) == SPOOL_OK, "info");
  CHECK(strcmp(info.backend, "python") == 0 && info.latent_channels == 4 && info.latent_scale == 8 &&
            strcmp(info.model_version, "numpy-ref-1") == 0,
        "info: %s %u %u %s", info.backend, info.latent_channels, info.latent_scale, info.model_version);

  spool_request r = request();
  sink a = {0}, b = {0}, c = {0};
  CHECK(run(e, &r, &a, NULL) == SPOOL_OK, "segment 1: %s", spool_engine_last_error(e));
  CHECK(a.order_ok && a.saw_tail && a.steps == 4 && a.nframes == 9, "order %d tail %d steps %u frames %u", a.order_ok,
        a.saw_tail, a.steps, a.nframes);
  CHECK(a.frame_bytes == 64 * 48 * 3, "frame bytes %zu", a.frame_bytes);
  /* 40-byte header + 3 frames × 4 channels × 6 × 8 float32 */
  CHECK(a.tail_len == 40 + 3 * 4 * 6 * 8 * 4 && a.tail && memcmp(a.tail, "SPTS", 4) == 0, "tail %zu bytes", a.tail_len);
  CHECK(run(e, &r, &b, NULL) == SPOOL_OK, "segment 1 again: %s", spool_engine_last_error(e));
  CHECK(b.nframes == 9 && memcmp(a.frames, b.frames, a.frame_bytes * 9) == 0, "two runs differ");
  CHECK(b.tail_len == a.tail_len && memcmp(a.tail, b.tail, a.tail_len) == 0, "two tails differ");

  spool_request r2 = request();
  r2.seed = 4, r2.overlap = 3, r2.first_frame = 6, r2.cond = a.tail, r2.cond_len = a.tail_len, r2.tail_frames = 0;
  CHECK(run(e, &r2, &c, NULL) == SPOOL_OK, "segment 2: %s", spool_engine_last_error(e));
  CHECK(c.nframes == 9 && !c.saw_tail, "segment 2: %u frames, tail %d", c.nframes, c.saw_tail);
  for (uint32_t i = 0; i < 3 && c.nframes == 9; i++)
    CHECK(memcmp(c.frames + i * a.frame_bytes, a.frames + (6 + i) * a.frame_bytes, a.frame_bytes) == 0,
          "segment 2 frame %u differs from segment 1 frame %u", i, 6 + i);
  CHECK(c.nframes == 9 && memcmp(c.frames + 3 * a.frame_bytes, a.frames + 3 * a.frame_bytes, a.frame_bytes) != 0,
        "segment 2's new frames copy segment 1");

  /* A tail blob for another frame index is refused before Python runs. */
  sink d = {0};
  r2.first_frame = 7;
  CHECK(run(e, &r2, &d, NULL) == SPOOL_ERR_INVALID_ARGUMENT, "misplaced cond accepted");
  sink_free(&a), sink_free(&b), sink_free(&c), sink_free(&d);
  spool_engine_close(e);
}

typedef struct {
  spool_engine_t *e;
  spool_request r;
  sink s;
  spool_status st;
} job;

static void *run_job(void *p) {
  job *j = p;
  for (int i = 0; i < 3 && j->st == SPOOL_OK; i++) {
    sink_free(&j->s);
    j->st = run(j->e, &j->r, &j->s, NULL);
  }
  return NULL;
}

/* Two engines share one interpreter and run at once: each holds the GIL
 * only while Python runs, and the frames are those of a lone run. */
static void test_two_engines_at_once(void) {
  spool_engine_t *e1 = must_open("spool_numpy_ref"), *e2 = must_open("spool_numpy_ref");
  spool_request r = request();
  r.width = 160, r.height = 96, r.frames = 17, r.steps = 6;
  sink want = {0};
  CHECK(run(e1, &r, &want, NULL) == SPOOL_OK, "lone run: %s", spool_engine_last_error(e1));
  job j1 = {e1, r, {0}, SPOOL_OK}, j2 = {e2, r, {0}, SPOOL_OK};
  pthread_t t1, t2;
  pthread_create(&t1, NULL, run_job, &j1);
  pthread_create(&t2, NULL, run_job, &j2);
  pthread_join(t1, NULL);
  pthread_join(t2, NULL);
  CHECK(j1.st == SPOOL_OK && j2.st == SPOOL_OK, "threads: %s / %s", spool_engine_last_error(e1),
        spool_engine_last_error(e2));
  size_t all = want.frame_bytes * want.nframes;
  CHECK(j1.s.nframes == 17 && memcmp(j1.s.frames, want.frames, all) == 0, "thread 1 frames differ");
  CHECK(j2.s.nframes == 17 && memcmp(j2.s.frames, want.frames, all) == 0, "thread 2 frames differ");
  sink_free(&want), sink_free(&j1.s), sink_free(&j2.s);
  spool_engine_close(e1);
  spool_engine_close(e2);
}

static void test_exception_has_traceback(void) {
  spool_engine_t *e = must_open("spool_raises");
  spool_request r = request();
  sink s = {0};
  CHECK(run(e, &r, &s, NULL) == SPOOL_ERR_BACKEND, "exception: %s", spool_engine_last_error(e));
  const char *msg = spool_engine_last_error(e);
  CHECK(strstr(msg, "Traceback (most recent call last)") && strstr(msg, "in _inner") &&
            strstr(msg, "ValueError: the model ran out of ideas at frame 9") && strstr(msg, "spool_raises.py"),
        "no full traceback in: %s", msg);
  sink_free(&s);
  /* The engine stays usable after a failure. */
  CHECK(run(e, &r, &s, NULL) == SPOOL_ERR_BACKEND, "second exception");
  sink_free(&s);
  spool_engine_close(e);
}

static void test_protocol(void) {
  spool_engine_t *e = must_open("spool_misbehaves");
  static const struct {
    const char *mode, *want;
    spool_status st;
  } cases[] = {
      {"bytes", NULL, SPOOL_OK},
      {"params", NULL, SPOOL_OK},
      {"out-of-order", "frames must come in order", SPOOL_ERR_BACKEND},
      {"short-frame", "9216 (height × width × 3, uint8 RGB)", SPOOL_ERR_BACKEND},
      {"too-few", "returned after 1 of 9 frames", SPOOL_ERR_BACKEND},
      {"no-tail", "io.frame called before io.tail", SPOOL_ERR_BACKEND},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    spool_request r = request();
    r.prompt = cases[i].mode;
    sink s = {0};
    spool_status st = run(e, &r, &s, NULL);
    const char *msg = spool_engine_last_error(e);
    CHECK(st == cases[i].st && (!cases[i].want || strstr(msg, cases[i].want)), "%s: %s: %s", cases[i].mode,
          spool_status_string(st), msg);
    if (st == SPOOL_OK) CHECK(s.nframes == 9 && (i > 0 || s.frames[s.frame_bytes * 5] == 5), "%s frames", cases[i].mode);
    sink_free(&s);
  }
  spool_engine_close(e);
}

/* Prefix frames reach the module as a writable numpy uint8 array [overlap,
 * H, W, 3] with a negative first_frame (spool_misbehaves checks both and
 * echoes the frames); without a prefix it gets None. Through
 * spool_numpy_ref, whose encoder inverts its decoder, the prefix frames
 * come back within a level. */
static void test_prefix(void) {
  spool_engine_t *e = must_open("spool_misbehaves");
  spool_request r = request();
  size_t fb = (size_t)r.width * r.height * 3;
  uint8_t *prefix = malloc(2 * fb);
  for (size_t i = 0; i < 2 * fb; i++) prefix[i] = (uint8_t)(i * 7 % 251);
  r.prompt = "prefix";
  r.overlap = 2;
  r.first_frame = -2;
  r.prefix = prefix;
  r.prefix_len = 2 * fb;
  sink s = {0};
  CHECK(run(e, &r, &s, NULL) == SPOOL_OK, "prefix: %s", spool_engine_last_error(e));
  CHECK(s.nframes == 9 && memcmp(s.frames, prefix, 2 * fb) == 0, "prefix: the frames are not the prefix");
  sink_free(&s);
  spool_request none = request();
  none.prompt = "no-prefix";
  CHECK(run(e, &none, &s, NULL) == SPOOL_OK, "no prefix: %s", spool_engine_last_error(e));
  sink_free(&s);
  spool_engine_close(e);

  e = must_open("spool_numpy_ref");
  spool_request one = request();
  sink a = {0}, b = {0};
  CHECK(run(e, &one, &a, NULL) == SPOOL_OK, "numpy segment: %s", spool_engine_last_error(e));
  spool_request ext = request();
  ext.seed = 9, ext.overlap = 3, ext.first_frame = -3, ext.prefix = a.frames + 6 * fb, ext.prefix_len = 3 * fb;
  CHECK(run(e, &ext, &b, NULL) == SPOOL_OK && b.nframes == 9, "numpy extension: %s", spool_engine_last_error(e));
  int worst = 0;
  for (size_t i = 0; b.nframes == 9 && i < 3 * fb; i++) {
    int d = abs((int)b.frames[i] - (int)ext.prefix[i]);
    if (d > worst) worst = d;
  }
  CHECK(worst <= 1, "numpy extension: the prefix frames come back %d levels off", worst);
  sink_free(&a);
  sink_free(&b);
  spool_engine_close(e);
  free(prefix);
}

static void test_cancel_and_abort(void) {
  spool_engine_t *e = must_open("spool_numpy_ref");
  spool_request r = request();
  int32_t cancel = 1;
  sink s = {0};
  CHECK(run(e, &r, &s, &cancel) == SPOOL_ERR_CANCELLED && s.nframes == 0, "cancel before");
  sink_free(&s);

  cancel = 0;
  r.steps = 50;
  s.cancel_at = 2; /* the flag goes up during step 2's callback */
  CHECK(run(e, &r, &s, &cancel) == SPOOL_ERR_CANCELLED, "cancel mid-run: %s", spool_engine_last_error(e));
  CHECK(s.steps == 2 && s.nframes == 0 && !s.saw_tail, "after cancel: step %u, %u frames", s.steps, s.nframes);
  sink_free(&s);

  r.steps = 4;
  s.abort_at = 2;
  CHECK(run(e, &r, &s, NULL) == SPOOL_ERR_ABORTED && s.nframes == 2, "abort: %s, %u frames",
        spool_engine_last_error(e), s.nframes);
  sink_free(&s);
  spool_engine_close(e);

  e = must_open("spool_misbehaves");
  r = request();
  r.prompt = "swallow-cancel";
  cancel = 0;
  s.cancel_at = 4;
  CHECK(run(e, &r, &s, &cancel) == SPOOL_ERR_CANCELLED, "swallowed cancel: %s", spool_engine_last_error(e));
  sink_free(&s);
  spool_engine_close(e);
}

static void test_open_errors(void) {
  char err[4096];
  spool_status st;
  CHECK(!open_python("no_such_module", &st, err, sizeof err) && st == SPOOL_ERR_BACKEND_NOT_FOUND &&
            strstr(err, "No module named 'no_such_module'"),
        "missing module: %s: %s", spool_status_string(st), err);
  spool_engine_options o = {sizeof o, "python", NULL, NULL, -1, plugin_dir, "path=/tmp"};
  spool_engine_t *e = NULL;
  st = spool_engine_open(&o, &e, err, sizeof err);
  CHECK(!e && st == SPOOL_ERR_INVALID_ARGUMENT && strstr(err, "module="), "no module: %s: %s",
        spool_status_string(st), err);
}

int main(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: %s <plugin dir> <python dir>\n", argv[0]);
    return 2;
  }
  plugin_dir = argv[1];
  py_dir = argv[2];
  test_chain();
  test_two_engines_at_once();
  test_exception_has_traceback();
  test_protocol();
  test_prefix();
  test_cancel_and_abort();
  test_open_errors();
  if (failures) {
    fprintf(stderr, "test_python: %d failure(s)\n", failures);
    return 1;
  }
  printf("test_python: ok\n");
  return 0;
}
