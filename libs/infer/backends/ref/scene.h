/*
 * scene.h - the ref model's constants, counter-based random numbers, scene
 * parameters, its encoder's cell and the talking head's mouth, shared by the
 * ref backend (C) and the cuda backend (CUDA C++), so both draw exactly the
 * same numbers.
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

/* The talking head. The scene of a frame is its reference frame with a
 * mouth painted on it, encoded: a filled ellipse of colour REF_MOUTH_R, G, B
 * centred at (REF_MOUTH_CX × W, REF_MOUTH_CY × H), REF_MOUTH_RX × W wide on
 * either side and opening × REF_MOUTH_RY × H high on either side, where the
 * opening (0..1) follows the loudness of the frame's own samples: their RMS
 * level in dBFS from REF_MOUTH_QUIET (closed: no mouth at all) to
 * REF_MOUTH_LOUD (wide open). */
#define REF_MOUTH_CX 0.5f
#define REF_MOUTH_CY 0.70f
#define REF_MOUTH_RX 0.12f
#define REF_MOUTH_RY 0.09f
#define REF_MOUTH_R 60
#define REF_MOUTH_G 15
#define REF_MOUTH_B 25
#define REF_MOUTH_QUIET (-50.0)
#define REF_MOUTH_LOUD (-10.0)

/* The mouth's opening for n samples (a frame's): 0 for none or silence.
 * The RMS is summed in double, in sample order, on one thread. */
static inline float ref_mouth_opening(const float *s, size_t n) {
  if (n == 0) return 0.0f;
  double sum = 0;
  for (size_t i = 0; i < n; i++) sum += (double)s[i] * (double)s[i];
  double db = 20.0 * log10(sqrt(sum / (double)n) + 1e-9);
  double o = (db - REF_MOUTH_QUIET) / (REF_MOUTH_LOUD - REF_MOUTH_QUIET);
  return (float)(o < 0 ? 0 : o > 1 ? 1 : o);
}

/* How much of pixel (X, Y) of a W×H frame the mouth at opening o covers,
 * 0..1: the pixel row's overlap with the ellipse's extent over the pixel's
 * centre column, [cy − hh, cy + hh] with hh = ry × sqrt(1 − (dx / rx)²).
 * That is the exact area coverage along y and shrinks to 0 at the ends of
 * the ellipse, a one-pixel anti-aliased edge all round, so an 8×8 cell's
 * average changes smoothly with o; 0 everywhere at o = 0. */
REF_HD static inline float ref_mouth_cover(uint32_t X, uint32_t Y, uint32_t W, uint32_t H, float o) {
  float rx = REF_MOUTH_RX * (float)W, ry = o * REF_MOUTH_RY * (float)H;
  float dx = ((float)X + 0.5f - REF_MOUTH_CX * (float)W) / rx;
  float q = 1.0f - dx * dx;
  if (ry <= 0.0f || q <= 0.0f) return 0.0f;
  float hh = ry * sqrtf(q), cy = REF_MOUTH_CY * (float)H;
  float top = cy - hh, bottom = cy + hh;
  float lo = (float)Y > top ? (float)Y : top, hi = (float)Y + 1.0f < bottom ? (float)Y + 1.0f : bottom;
  return hi > lo ? hi - lo : 0.0f;
}

/* Whether pixels [x0, x1) × [y0, y1) lie more than a pixel clear of the
 * mouth's bounding box at opening o, so that it covers none of them. */
REF_HD static inline int ref_mouth_clear(uint32_t x0, uint32_t x1, uint32_t y0, uint32_t y1, uint32_t W, uint32_t H,
                                         float o) {
  float rx = REF_MOUTH_RX * (float)W, ry = o * REF_MOUTH_RY * (float)H;
  float cx = REF_MOUTH_CX * (float)W, cy = REF_MOUTH_CY * (float)H;
  return o <= 0.0f || (float)x1 + 1.0f < cx - rx || (float)x0 - 1.0f > cx + rx || (float)y1 + 1.0f < cy - ry ||
         (float)y0 - 1.0f > cy + ry;
}

/* Channel ch of a pixel, px, with the mouth painted over a of it: blended
 * towards the mouth's colour, rounded. */
REF_HD static inline uint8_t ref_mouth_paint(uint8_t px, int ch, float a) {
  float m = ch == 0 ? (float)REF_MOUTH_R : ch == 1 ? (float)REF_MOUTH_G : (float)REF_MOUTH_B;
  return (uint8_t)((float)px + a * (m - (float)px) + 0.5f);
}

/* Encode: the REF_C latents of cell (lx, ly) of one packed RGB24 frame of
 * W×H into out[c × stride]: the mean over the cell's 8×8 pixels (fewer at
 * the right and bottom edges) of the inverse tone of each channel, less the
 * bias, through the pseudo-inverse of the mix. tone (256), pinv (REF_C × 3,
 * row-major) and bias (3) are ref_tables'. With mouth > 0 (a talking head)
 * the pixels are painted with the mouth at that opening first; mouth 0
 * reads them as they are. */
REF_HD static inline void ref_encode_cell(const float *tone, const float *pinv, const float *bias, const uint8_t *rgb,
                                          uint32_t W, uint32_t H, uint32_t lx, uint32_t ly, float mouth, float *out,
                                          size_t stride) {
  uint32_t y0 = ly * REF_SCALE, y1 = y0 + REF_SCALE < H ? y0 + REF_SCALE : H;
  uint32_t x0 = lx * REF_SCALE, x1 = x0 + REF_SCALE < W ? x0 + REF_SCALE : W;
  float cover[REF_SCALE * REF_SCALE];
  int painted = !ref_mouth_clear(x0, x1, y0, y1, W, H, mouth);
  if (painted)
    for (uint32_t Y = y0; Y < y1; Y++)
      for (uint32_t X = x0; X < x1; X++) cover[(Y - y0) * REF_SCALE + (X - x0)] = ref_mouth_cover(X, Y, W, H, mouth);
  float avg[3];
  for (int ch = 0; ch < 3; ch++) {
    float sum = 0;
    for (uint32_t Y = y0; Y < y1; Y++)
      for (uint32_t X = x0; X < x1; X++) {
        uint8_t px = rgb[((size_t)Y * W + X) * 3 + ch];
        float a = painted ? cover[(Y - y0) * REF_SCALE + (X - x0)] : 0.0f;
        sum += tone[a > 0.0f ? ref_mouth_paint(px, ch, a) : px];
      }
    avg[ch] = sum / (float)((y1 - y0) * (x1 - x0)) - bias[ch];
  }
  for (int c = 0; c < REF_C; c++)
    out[c * stride] = pinv[c * 3] * avg[0] + pinv[c * 3 + 1] * avg[1] + pinv[c * 3 + 2] * avg[2];
}

/* The noise schedule: sigma at step s of n. */
REF_HD static inline float ref_sigma(uint32_t s, uint32_t n, float guidance) {
  float end = 0.06f / (1.0f + guidance / 5.0f);
  return 1.0f + (end - 1.0f) * (float)s / (float)n;
}

#endif
