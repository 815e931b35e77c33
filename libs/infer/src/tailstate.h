/*
 * tailstate.h - the tail-state blob handed from one chain segment to the
 * next. Internal to the library and its plugins (compiled into each).
 *
 * Layout, little-endian, 40-byte header then the payload:
 *   off  size  field
 *    0    4    magic "SPTS"
 *    4    4    u32 version = 1
 *    8    4    u32 channels     latent channels C
 *   12    4    u32 latent_h     latent rows h
 *   16    4    u32 latent_w     latent columns w
 *   20    4    u32 frames       latent frames F (the segment's overlap)
 *   24    8    u64 first_frame  video index of the blob's first frame: the
 *                                 request's int64 first_frame as its two's
 *                                 complement bits (the field was unsigned
 *                                 before ABI 2; every index ≥ 0 keeps its bits)
 *   32    4    u32 crc32        CRC-32 (IEEE) of the payload bytes
 *   36    4    u32 reserved = 0
 *   40    F*C*h*w float32 payload, [frame][channel][row][column]
 *
 * Any corruption (magic, version, sizes, length, checksum, NaN or Inf,
 * reserved bits) makes spool_tail_parse fail with a message. The checksum
 * covers the payload; the shape fields are checked by the length they imply,
 * and first_frame by the engine against the request it conditions, bit
 * pattern against bit pattern (uint64_t)req->first_frame.
 *
 * Self-contained C99 with no engine dependency: the python and cuda plugins
 * compile this file in. Symbols are spool_-prefixed and hidden.
 */
#ifndef SPOOL_TAILSTATE_H
#define SPOOL_TAILSTATE_H

#include <stddef.h>
#include <stdint.h>

#include "spool_infer.h"

#define SPOOL_TAIL_HEADER 40u
#define SPOOL_TAIL_VERSION 1u

#if defined(__GNUC__)
#define SPOOL_HIDDEN __attribute__((visibility("hidden")))
#else
#define SPOOL_HIDDEN
#endif

typedef struct spool_tail_view {
  uint32_t channels, latent_h, latent_w, frames;
  uint64_t first_frame; /* the bits of the int64 index: compare with (uint64_t)first_frame */
  const float *latents; /* the copied payload, or NULL; see spool_tail_parse */
} spool_tail_view;

/* Bytes of a blob holding frames × channels × h × w latents; 0 on overflow. */
SPOOL_HIDDEN size_t spool_tail_size(uint32_t channels, uint32_t h, uint32_t w, uint32_t frames);

/* Writes the blob of the given latents into out (out_len ≥ spool_tail_size).
 * Borrowed pointers; no allocation. */
SPOOL_HIDDEN spool_status spool_tail_encode(uint8_t *out, size_t out_len, uint32_t channels,
                                            uint32_t h, uint32_t w, uint32_t frames,
                                            int64_t first_frame, const float *latents);

/* Checks blob and decodes its header into *view. The payload is copied
 * into dst (dst_floats ≥ frames × channels × h × w) when dst is not NULL,
 * and view->latents then points at dst; with dst NULL, latents is NULL.
 * On failure writes a message into err (errlen bytes). */
SPOOL_HIDDEN spool_status spool_tail_parse(const uint8_t *blob, size_t len, spool_tail_view *view,
                                           float *dst, size_t dst_floats, char *err, size_t errlen);

/* CRC-32 (IEEE 802.3) of n bytes. */
SPOOL_HIDDEN uint32_t spool_crc32(const uint8_t *p, size_t n);

#endif /* SPOOL_TAILSTATE_H */
