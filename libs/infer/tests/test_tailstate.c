/* test_tailstate.c - the tail-state blob on its own: round trip and every
 * kind of corruption. Compiles src/tailstate.c in, as the plugins do. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../src/tailstate.c"

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

enum { C = 3, H = 4, W = 5, F = 2, N = C * H * W * F };

static void put(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)v, p[1] = (uint8_t)(v >> 8), p[2] = (uint8_t)(v >> 16), p[3] = (uint8_t)(v >> 24);
}
/* Re-seals the checksum after a deliberate payload edit. */
static void reseal(uint8_t *b, size_t len) { put(b + 32, spool_crc32(b + SPOOL_TAIL_HEADER, len - SPOOL_TAIL_HEADER)); }

int main(void) {
  CHECK(spool_crc32((const uint8_t *)"123456789", 9) == 0xCBF43926u, "crc32 check value");
  CHECK(spool_tail_size(C, H, W, F) == SPOOL_TAIL_HEADER + 4 * N, "size");
  CHECK(spool_tail_size(0xFFFFFFFFu, 0xFFFFFFFFu, 0xFFFFFFFFu, 0xFFFFFFFFu) == 0, "overflow must be 0");
  CHECK(spool_tail_size(65536, 65536, 65536, 16384) == 0, "overflow of the byte count must be 0");

  float lat[N], back[N];
  for (int i = 0; i < N; i++) lat[i] = (float)i * 0.25f - 3.0f;
  size_t len = spool_tail_size(C, H, W, F);
  uint8_t *blob = malloc(len + 8), *bad = malloc(len + 8);
  CHECK(spool_tail_encode(blob, len - 1, C, H, W, F, 7, lat) == SPOOL_ERR_INVALID_ARGUMENT, "short output accepted");
  /* A negative first_frame (an extension's first segment) is stored as its
   * two's complement bits, and compared as such by the engine. */
  CHECK(spool_tail_encode(blob, len, C, H, W, F, -5, lat) == SPOOL_OK, "encode at -5");
  {
    spool_tail_view neg;
    char e[256];
    CHECK(spool_tail_parse(blob, len, &neg, NULL, 0, e, sizeof e) == SPOOL_OK && neg.first_frame == (uint64_t)(int64_t)-5 &&
              memcmp(blob + 24, "\xfb\xff\xff\xff\xff\xff\xff\xff", 8) == 0,
          "first_frame -5: %llx (%s)", (unsigned long long)neg.first_frame, e);
  }
  CHECK(spool_tail_encode(blob, len, C, H, W, F, (int64_t)1 << 40 | 7, lat) == SPOOL_OK, "encode");
  CHECK(memcmp(blob, "SPTS\x01\0\0\0\x03\0\0\0", 12) == 0, "header is little-endian SPTS v1");
  spool_tail_view v;
  char err[256];
  CHECK(spool_tail_parse(blob, len, &v, back, N, err, sizeof err) == SPOOL_OK, "parse: %s", err);
  CHECK(v.channels == C && v.latent_h == H && v.latent_w == W && v.frames == F && v.first_frame == ((uint64_t)1 << 40 | 7),
        "header fields");
  CHECK(v.latents == back && memcmp(back, lat, sizeof lat) == 0, "payload round trip");
  CHECK(spool_tail_parse(blob, len, &v, NULL, 0, err, sizeof err) == SPOOL_OK && v.latents == NULL, "header only");
  CHECK(spool_tail_parse(blob, len, &v, back, N - 1, err, sizeof err) != SPOOL_OK, "small dst accepted");

  /* first_frame is outside the checksum (which covers the payload): the
   * engine checks it against the request (test_engine, "cond at the wrong
   * frame"). Every other header field is checked here. */
  struct {
    const char *name, *want; /* want: a word the message must hold */
    size_t at;               /* byte to change, or len for truncation cases */
    int op;                  /* 0 flip, 1 truncate by at, 2 extend, 3 NaN, 4 Inf, 5 reserved */
  } cases[] = {
      {"bad magic", "magic", 0, 0},          {"bad version", "version", 4, 0},
      {"channels", "bytes", 8, 0},           {"latent rows", "bytes", 13, 0},
      {"frames", "bytes", 20, 0},
      {"crc", "checksum", 33, 0},            {"payload", "checksum", SPOOL_TAIL_HEADER + 9, 0},
      {"last byte", "checksum", len - 1, 0}, {"truncated", "bytes", 4, 1},
      {"header only", "bytes", len - SPOOL_TAIL_HEADER, 1}, {"shorter than a header", "header", len - 10, 1},
      {"trailing bytes", "bytes", 4, 2},     {"NaN latent", "finite", 17, 3},
      {"Inf latent", "finite", 3, 4},        {"reserved", "reserved", 0, 5},
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    memcpy(bad, blob, len);
    size_t n = len;
    float x;
    switch (cases[i].op) {
    case 0: bad[cases[i].at] ^= 0x08; break;
    case 1: n = len - cases[i].at; break;
    case 2: n = len + cases[i].at; memset(bad + len, 0, cases[i].at); break;
    case 3:
    case 4:
      x = cases[i].op == 3 ? NAN : INFINITY;
      memcpy(bad + SPOOL_TAIL_HEADER + 4 * cases[i].at, &x, 4);
      reseal(bad, len);
      break;
    case 5: put(bad + 36, 1); break;
    }
    err[0] = 0;
    spool_status st = spool_tail_parse(bad, n, &v, back, N, err, sizeof err);
    CHECK(st == SPOOL_ERR_INVALID_ARGUMENT, "%s: accepted", cases[i].name);
    CHECK(strstr(err, cases[i].want) != NULL, "%s: message %s", cases[i].name, err);
  }
  CHECK(spool_tail_parse(NULL, 0, &v, NULL, 0, err, sizeof err) == SPOOL_ERR_INVALID_ARGUMENT, "NULL blob");
  free(blob);
  free(bad);
  if (failures) {
    fprintf(stderr, "%d check(s) failed\n", failures);
    return 1;
  }
  printf("test_tailstate: all checks passed\n");
  return 0;
}
