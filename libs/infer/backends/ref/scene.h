/*
 * scene.h - the ref model's constants, counter-based random numbers and
 * scene parameters, shared by the ref backend (C) and the cuda backend
 * (CUDA C++), so both draw exactly the same numbers.
 */
#ifndef SPOOL_REF_SCENE_H
#define SPOOL_REF_SCENE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __CUDACC__
#define REF_HD __host__ __device__
#else
#define REF_HD
#endif

#define REF_C 16
#define REF_SCALE 8
#define REF_BLOBS 4
#define REF_LUT 4096
#define REF_VERSION "ref-2"
#define REF_KAPPA 0.18f

typedef struct {
  float amp[REF_BLOBS][REF_C];
  float size[REF_BLOBS];
  float wx[REF_BLOBS], wy[REF_BLOBS], px[REF_BLOBS], py[REF_BLOBS];
  float bg[REF_C], grad[REF_C];
} ref_scene;

REF_HD static inline uint64_t mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

/* A float in [-1, 1) from the counter-based stream (key, n). */
REF_HD static inline float unit(uint64_t key, uint64_t n) { return (float)(int32_t)(mix64(key + 0x9e3779b97f4a7c15ULL * (n + 1)) >> 32) * (1.0f / 2147483648.0f); }

static inline uint64_t fnv1a(const char *s) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (; *s; s++) h = (h ^ (uint8_t)*s) * 0x100000001b3ULL;
  return h;
}

static inline void make_scene(ref_scene *sc, const char *prompt) {
  uint64_t k = mix64(fnv1a(prompt));
  uint64_t n = 0;
  for (int c = 0; c < REF_C; c++) {
    sc->bg[c] = 0.6f * unit(k, n++);
    sc->grad[c] = 0.8f * unit(k, n++);
  }
  for (int b = 0; b < REF_BLOBS; b++) {
    for (int c = 0; c < REF_C; c++) sc->amp[b][c] = 1.6f * unit(k, n++);
    sc->size[b] = 0.10f + 0.08f * (unit(k, n++) + 1.0f);
    sc->wx[b] = 0.012f + 0.02f * (unit(k, n++) + 1.0f);
    sc->wy[b] = 0.010f + 0.02f * (unit(k, n++) + 1.0f);
    sc->px[b] = 3.14159265f * unit(k, n++);
    sc->py[b] = 3.14159265f * unit(k, n++);
  }
}

/* How much of the conditioning's drift new frame f (O ≤ f < F) of an
 * F-frame segment with O conditioning frames keeps: 1 − smoothstep(u) at
 * u = (f − O + 1) / (F − O), so it fades from about 1 after the prefix to 0
 * at the last frame, flat at both ends. */
REF_HD static inline float ref_keep(uint32_t f, uint32_t O, uint32_t F) {
  float u = (float)(f - O + 1) / (float)(F - O);
  return 1.0f - u * u * (3.0f - 2.0f * u);
}

/* The noise schedule: sigma at step s of n. */
REF_HD static inline float ref_sigma(uint32_t s, uint32_t n, float guidance) {
  float end = 0.06f / (1.0f + guidance / 5.0f);
  return 1.0f + (end - 1.0f) * (float)s / (float)n;
}

#endif
