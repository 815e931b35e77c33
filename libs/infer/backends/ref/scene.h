/*
 * scene.h - the ref model's constants, counter-based random numbers and
 * scene parameters, shared by the ref backend (C) and the cuda backend
 * (CUDA C++), so both draw exactly the same numbers.
 */
#ifndef SPOOL_REF_SCENE_H
#define SPOOL_REF_SCENE_H

#include <math.h>
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

/* The scene's clock at absolute frame t: t itself while |t| < 10^6 (kept
 * small for float precision), so that the scene moves on smoothly from an
 * extension's prefix frames (t < 0) to frame 0. C's remainder truncates
 * toward zero, so t and -t stay mirror images: a floor modulo would send
 * frame -1 to 999999, a jump to another place of the Lissajous paths. */
REF_HD static inline float ref_clock(int64_t t) { return (float)(t % 1000000); }

/* The decoder's fixed tables, and the encoder's, computed once per engine
 * by ref and cuda alike:
 *  - lut: the tone curve, latent value v in [-4, 4) to a byte, indexed by
 *    (v + 4) × REF_LUT / 8;
 *  - mix, bias: the 3 × REF_C channel mix of latents to RGB;
 *  - tone: its inverse, byte to v: the middle of the v interval whose LUT
 *    entries hold that byte (bytes the curve never makes take the nearest
 *    byte it makes), so a decoded byte encodes back to a value that decodes
 *    to it again;
 *  - pinv: the Moore-Penrose pseudo-inverse of mix (REF_C × 3), mix^T
 *    (mix mix^T)^-1 in double: the minimal-norm latents whose mix is a
 *    given RGB (mix has rank 3), so mix · pinv = I. */
typedef struct {
  uint8_t lut[REF_LUT];
  float mix[3][REF_C], bias[3];
  float tone[256];
  float pinv[REF_C][3];
} ref_tables;

static inline void ref_make_tables(ref_tables *t) {
  for (int i = 0; i < REF_LUT; i++) {
    float v = -4.0f + 8.0f * ((float)i + 0.5f) / REF_LUT;
    float y = 0.5f + 0.5f * v / (1.0f + fabsf(v));
    t->lut[i] = (uint8_t)lrintf(255.0f * y);
  }
  uint64_t k = 0x5eed5eedULL;
  for (int ch = 0; ch < 3; ch++) {
    t->bias[ch] = 0.1f * unit(k, 100 + ch);
    for (int c = 0; c < REF_C; c++) t->mix[ch][c] = 0.9f * unit(k, (uint64_t)ch * REF_C + c);
  }
  /* The inverse tone curve. The LUT is non-decreasing: byte b is made by
   * the entries [lo, hi], whose v interval is [lo, hi + 1) / (REF_LUT / 8) - 4. */
  int lo[256], hi[256];
  for (int b = 0; b < 256; b++) lo[b] = -1, hi[b] = -1;
  for (int i = 0; i < REF_LUT; i++) {
    if (lo[t->lut[i]] < 0) lo[t->lut[i]] = i;
    hi[t->lut[i]] = i;
  }
  for (int b = 0; b < 256; b++) {
    int n = b;
    for (int d = 1; lo[n] < 0 && d < 256; d++) { /* the nearest byte the curve makes */
      if (b - d >= 0 && lo[b - d] >= 0) n = b - d;
      else if (b + d < 256 && lo[b + d] >= 0) n = b + d;
    }
    t->tone[b] = -4.0f + (float)((double)(lo[n] + hi[n] + 1) / (2.0 * (REF_LUT / 8)));
  }
  /* pinv = mix^T G^-1, G = mix mix^T (3 × 3, symmetric), by its adjugate. */
  double g[3][3], inv[3][3];
  for (int a = 0; a < 3; a++)
    for (int b = 0; b < 3; b++) {
      double sum = 0;
      for (int c = 0; c < REF_C; c++) sum += (double)t->mix[a][c] * t->mix[b][c];
      g[a][b] = sum;
    }
  double det = g[0][0] * (g[1][1] * g[2][2] - g[1][2] * g[2][1]) - g[0][1] * (g[1][0] * g[2][2] - g[1][2] * g[2][0]) +
               g[0][2] * (g[1][0] * g[2][1] - g[1][1] * g[2][0]);
  for (int a = 0; a < 3; a++)
    for (int b = 0; b < 3; b++) {
      int r0 = (b + 1) % 3, r1 = (b + 2) % 3, c0 = (a + 1) % 3, c1 = (a + 2) % 3; /* cofactor of g[b][a] */
      inv[a][b] = (g[r0][c0] * g[r1][c1] - g[r0][c1] * g[r1][c0]) / det;
    }
  for (int c = 0; c < REF_C; c++)
    for (int ch = 0; ch < 3; ch++) {
      double sum = 0;
      for (int a = 0; a < 3; a++) sum += (double)t->mix[a][c] * inv[a][ch];
      t->pinv[c][ch] = (float)sum;
    }
}

/* The noise schedule: sigma at step s of n. */
REF_HD static inline float ref_sigma(uint32_t s, uint32_t n, float guidance) {
  float end = 0.06f / (1.0f + guidance / 5.0f);
  return 1.0f + (end - 1.0f) * (float)s / (float)n;
}

#endif
