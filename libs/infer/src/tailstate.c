/* tailstate.c - encode and check tail-state blobs; see tailstate.h. */
#include "tailstate.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

static void put32(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); p[2] = (uint8_t)(v >> 16); p[3] = (uint8_t)(v >> 24);
}
static uint32_t get32(const uint8_t *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

uint32_t spool_crc32(const uint8_t *p, size_t n) {
  static uint32_t table[256];
  static int ready; /* benign race: every thread computes the same table */
  if (!ready) {
    for (uint32_t i = 0; i < 256; i++) {
      uint32_t c = i;
      for (int k = 0; k < 8; k++) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
      table[i] = c;
    }
    __atomic_store_n(&ready, 1, __ATOMIC_RELEASE);
  }
  uint32_t c = 0xFFFFFFFFu;
  for (size_t i = 0; i < n; i++) c = table[(c ^ p[i]) & 0xFF] ^ (c >> 8);
  return c ^ 0xFFFFFFFFu;
}

size_t spool_tail_size(uint32_t channels, uint32_t h, uint32_t w, uint32_t frames) {
  uint64_t n = (uint64_t)channels * h;
  if (channels && n / channels != h) return 0;
  uint64_t m = n * w;
  if (n && m / n != w) return 0;
  uint64_t k = m * frames;
  if (m && k / m != frames) return 0;
  if (k > (SIZE_MAX - SPOOL_TAIL_HEADER) / 4) return 0;
  return SPOOL_TAIL_HEADER + (size_t)k * 4;
}

spool_status spool_tail_encode(uint8_t *out, size_t out_len, uint32_t channels, uint32_t h,
                               uint32_t w, uint32_t frames, int64_t first_frame,
                               const float *latents) {
  uint64_t first = (uint64_t)first_frame; /* two's complement: defined for every int64 */
  size_t size = spool_tail_size(channels, h, w, frames);
  if (!out || !latents || size == 0 || out_len < size) return SPOOL_ERR_INVALID_ARGUMENT;
  size_t floats = (size - SPOOL_TAIL_HEADER) / 4;
  memcpy(out, "SPTS", 4);
  put32(out + 4, SPOOL_TAIL_VERSION);
  put32(out + 8, channels);
  put32(out + 12, h);
  put32(out + 16, w);
  put32(out + 20, frames);
  put32(out + 24, (uint32_t)first);
  put32(out + 28, (uint32_t)(first >> 32));
  put32(out + 36, 0);
  uint8_t *payload = out + SPOOL_TAIL_HEADER;
  for (size_t i = 0; i < floats; i++) {
    uint32_t bits;
    memcpy(&bits, &latents[i], 4);
    put32(payload + 4 * i, bits);
  }
  put32(out + 32, spool_crc32(payload, floats * 4));
  return SPOOL_OK;
}

spool_status spool_tail_parse(const uint8_t *blob, size_t len, spool_tail_view *view, float *dst,
                              size_t dst_floats, char *err, size_t errlen) {
#define FAIL(...) do { if (err && errlen) snprintf(err, errlen, __VA_ARGS__); return SPOOL_ERR_INVALID_ARGUMENT; } while (0)
  if (!blob || len < SPOOL_TAIL_HEADER) FAIL("tail state: %zu bytes, shorter than its %u-byte header", len, SPOOL_TAIL_HEADER);
  if (memcmp(blob, "SPTS", 4) != 0) FAIL("tail state: bad magic (not a spool tail state)");
  uint32_t version = get32(blob + 4);
  if (version != SPOOL_TAIL_VERSION) FAIL("tail state: version %u, want %u", version, SPOOL_TAIL_VERSION);
  spool_tail_view v = {get32(blob + 8), get32(blob + 12), get32(blob + 16), get32(blob + 20),
                       (uint64_t)get32(blob + 24) | (uint64_t)get32(blob + 28) << 32, NULL};
  if (v.channels == 0 || v.latent_h == 0 || v.latent_w == 0 || v.frames == 0)
    FAIL("tail state: empty shape %ux%ux%ux%u", v.frames, v.channels, v.latent_h, v.latent_w);
  size_t size = spool_tail_size(v.channels, v.latent_h, v.latent_w, v.frames);
  if (size == 0 || size != len)
    FAIL("tail state: %zu bytes, but its shape %ux%ux%ux%u needs %zu", len, v.frames, v.channels, v.latent_h, v.latent_w, size);
  if (get32(blob + 36) != 0) FAIL("tail state: reserved field is not zero");
  const uint8_t *payload = blob + SPOOL_TAIL_HEADER;
  size_t floats = (size - SPOOL_TAIL_HEADER) / 4;
  uint32_t crc = spool_crc32(payload, floats * 4);
  if (crc != get32(blob + 32)) FAIL("tail state: checksum mismatch (corrupt or truncated)");
  if (dst && dst_floats < floats) FAIL("tail state: %zu latents do not fit %zu", floats, dst_floats);
  for (size_t i = 0; i < floats; i++) {
    uint32_t bits = get32(payload + 4 * i);
    float f;
    memcpy(&f, &bits, 4);
    if (!isfinite(f)) FAIL("tail state: latent %zu is not finite", i);
    if (dst) dst[i] = f;
  }
  v.latents = dst;
  *view = v;
  return SPOOL_OK;
#undef FAIL
}
