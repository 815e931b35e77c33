/* gpu_check.c - runs the same requests on ref and on another backend (cuda
 * by default): a segment, a chain segment on ref's tail, one with a new
 * prompt, an extension from prefix RGB frames, and a talking head (segment 1's
 * frames as the reference, a synthetic voice); compares frames and tail
 * latents within tolerance, and times both. Run through ../gpu-check.sh. Usage:
 *   gpu_check [-b backend] [-w width] [-h height] [-f frames] [-s steps] */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "spool_infer.h"
#include "tailstate.h"

#define FRAME_TOL 2    /* levels of 255, per channel */
#define LATENT_TOL 1e-3 /* absolute */

typedef struct {
  uint8_t *frames;
  size_t frame_bytes;
  uint32_t n;
  uint8_t *tail;
  size_t tail_len;
} out_t;

static int on_tail(void *u, const uint8_t *s, size_t n) {
  out_t *o = u;
  o->tail = malloc(n);
  memcpy(o->tail, s, n);
  o->tail_len = n;
  return 0;
}
static int on_frame(void *u, const spool_frame *f) {
  out_t *o = u;
  o->frame_bytes = (size_t)f->width * f->height * 3;
  memcpy(o->frames + o->frame_bytes * f->index, f->rgb, o->frame_bytes);
  o->n++;
  return 0;
}
static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec / 1e9;
}

static int run(const char *backend, spool_request *r, out_t *o, double *secs) {
  spool_engine_options opts = {sizeof opts, backend, NULL, NULL, strcmp(backend, "ref") ? 0 : -1, NULL, NULL};
  spool_engine_t *e;
  char err[1024];
  if (spool_engine_open(&opts, &e, err, sizeof err) != SPOOL_OK) {
    fprintf(stderr, "gpu_check: open %s: %s\n", backend, err);
    return 1;
  }
  o->frames = malloc((size_t)r->width * r->height * 3 * r->frames);
  spool_callbacks cb = {o, NULL, on_tail, on_frame};
  double t0 = now();
  spool_status st = spool_engine_run(e, r, &cb, NULL);
  *secs = now() - t0;
  if (st != SPOOL_OK) {
    fprintf(stderr, "gpu_check: run %s: %s\n", backend, spool_engine_last_error(e));
    spool_engine_close(e);
    return 1;
  }
  spool_engine_close(e);
  return 0;
}

/* Largest per-channel difference between frames [fa, fa+n) of a and
 * [fb, fb+n) of b; *mean gets the mean. */
static int frame_diff(const out_t *a, const out_t *b, uint32_t fa, uint32_t fb, uint32_t n, double *mean) {
  int worst = 0;
  double sum = 0;
  size_t fs = a->frame_bytes, len = fs * n;
  const uint8_t *pa = a->frames + fs * fa, *pb = b->frames + fs * fb;
  for (size_t i = 0; i < len; i++) {
    int d = abs((int)pa[i] - (int)pb[i]);
    if (d > worst) worst = d;
    sum += d;
  }
  *mean = len ? sum / (double)len : 0;
  return worst;
}

/* Largest difference between two tail blobs' latents; INFINITY when either
 * does not parse. */
static double latent_diff(const out_t *a, const out_t *b, size_t nlat) {
  spool_tail_view va, vb;
  char err[256];
  float *la = malloc(nlat * 4), *lb = malloc(nlat * 4);
  double worst = INFINITY;
  if (la && lb && spool_tail_parse(a->tail, a->tail_len, &va, la, nlat, err, sizeof err) == SPOOL_OK &&
      spool_tail_parse(b->tail, b->tail_len, &vb, lb, nlat, err, sizeof err) == SPOOL_OK) {
    worst = 0;
    for (size_t i = 0; i < nlat; i++) worst = fmax(worst, fabs((double)la[i] - lb[i]));
  }
  free(la), free(lb);
  return worst;
}

int main(int argc, char **argv) {
  const char *other = "cuda";
  spool_request r = {sizeof r};
  r.prompt = "a lighthouse on a cliff at dusk, waves below";
  r.seed = 7;
  r.width = 1280;
  r.height = 720;
  r.frames = 121;
  r.steps = 30;
  r.guidance = 6;
  r.tail_frames = 37;
  int c;
  while ((c = getopt(argc, argv, "b:w:h:f:s:")) != -1) {
    switch (c) {
    case 'b': other = optarg; break;
    case 'w': r.width = (uint32_t)atoi(optarg); break;
    case 'h': r.height = (uint32_t)atoi(optarg); break;
    case 'f': r.frames = (uint32_t)atoi(optarg); break;
    case 's': r.steps = (uint32_t)atoi(optarg); break;
    default: fprintf(stderr, "usage: gpu_check [-b backend] [-w W] [-h H] [-f frames] [-s steps]\n"); return 2;
    }
  }
  if (r.tail_frames >= r.frames) r.tail_frames = r.frames / 2;
  out_t a = {0}, b = {0};
  double ta, tb;
  if (run("ref", &r, &a, &ta) || run(other, &r, &b, &tb)) return 1;
  double mean;
  int worst = frame_diff(&a, &b, 0, 0, r.frames, &mean);
  size_t nlat = (size_t)r.tail_frames * 16 * ((r.height + 7) / 8) * ((r.width + 7) / 8);
  double lat_worst = latent_diff(&a, &b, nlat);

  /* Segment 2 of a chain, conditioned on ref's tail on both backends (the
   * conditioning path: clean prefix, residual of the last cond frame). */
  spool_request r2 = r;
  r2.seed = r.seed + 1;
  r2.overlap = r.tail_frames;
  r2.first_frame = r.frames - r.tail_frames;
  r2.cond = a.tail;
  r2.cond_len = a.tail_len;
  out_t a2 = {0}, b2 = {0}, c2 = {0};
  double ta2, tb2, tc2;
  if (run("ref", &r2, &a2, &ta2) || run(other, &r2, &b2, &tb2)) return 1;
  double mean2;
  int worst2 = frame_diff(&a2, &b2, 0, 0, r2.frames, &mean2);
  /* The other backend chained on its own tail is seamless: its segment 2
   * starts with exactly its segment 1's last frames. */
  r2.cond = b.tail;
  r2.cond_len = b.tail_len;
  if (run(other, &r2, &c2, &tc2)) return 1;
  double unused;
  int seam = frame_diff(&b, &c2, r.frames - r.tail_frames, 0, r.tail_frames, &unused);
  (void)tc2;

  /* Segment 2 with a new prompt, conditioned on ref's tail on both: the
   * conditioning's drift from the new scene is large and fades out over the
   * segment (prompt travel), on both backends alike. */
  spool_request r3 = r2;
  r3.prompt = "the lighthouse beam sweeping over a stormy sea at night";
  r3.cond = a.tail;
  r3.cond_len = a.tail_len;
  out_t a3 = {0}, b3 = {0};
  double ta3, tb3, mean3;
  if (run("ref", &r3, &a3, &ta3) || run(other, &r3, &b3, &tb3)) return 1;
  int worst3 = frame_diff(&a3, &b3, 0, 0, r3.frames, &mean3);
  double lat_worst3 = latent_diff(&a3, &b3, nlat);

  /* An extension: segment 1's last frames (ref's) as prefix RGB frames,
   * before frame 0, on both: the encoder's path (inverse tone, box average,
   * pseudo-inverse of the mix) and the prefix's drift. */
  spool_request r4 = r;
  r4.seed = r.seed + 2;
  r4.overlap = r.tail_frames;
  r4.first_frame = -(int64_t)r.tail_frames;
  r4.prefix = a.frames + a.frame_bytes * (r.frames - r.tail_frames);
  r4.prefix_len = a.frame_bytes * r.tail_frames;
  out_t a4 = {0}, b4 = {0};
  double ta4, tb4, mean4;
  if (run("ref", &r4, &a4, &ta4) || run(other, &r4, &b4, &tb4)) return 1;
  int worst4 = frame_diff(&a4, &b4, 0, 0, r4.frames, &mean4);
  double lat_worst4 = latent_diff(&a4, &b4, nlat);

  /* A talking head: segment 2 of the chain (on ref's tail) animating
   * segment 1's frames as its reference, with a voice at 24 fps and 16 kHz
   * whose level changes every few frames: the mouth's painting and encode
   * and the per-frame loudness. */
  spool_request r5 = r2;
  r5.cond = a.tail;
  r5.cond_len = a.tail_len;
  r5.fps = 24;
  r5.audio_rate = 16000;
  int64_t s0 = (2 * r5.first_frame * 16000 + 24) / 48, s1 = (2 * (r5.first_frame + r5.frames) * 16000 + 24) / 48;
  float *voice = malloc((size_t)(s1 - s0) * sizeof(float));
  for (int64_t i = s0; i < s1; i++) {
    double level = ((i / 2000) % 5) * 0.12; /* 0, 0.12, ..., 0.48, by 1/8 s */
    voice[i - s0] = (float)(level * sin((double)i * 0.09));
  }
  r5.audio = voice;
  r5.audio_len = (size_t)(s1 - s0);
  r5.reference = a.frames;
  r5.reference_len = a.frame_bytes * r5.frames;
  out_t a5 = {0}, b5 = {0};
  double ta5, tb5, mean5;
  if (run("ref", &r5, &a5, &ta5) || run(other, &r5, &b5, &tb5)) return 1;
  int worst5 = frame_diff(&a5, &b5, 0, 0, r5.frames, &mean5);
  double lat_worst5 = latent_diff(&a5, &b5, nlat);

  int ok = worst <= FRAME_TOL && worst2 <= FRAME_TOL && lat_worst <= LATENT_TOL && seam == 0 && worst3 <= FRAME_TOL &&
           lat_worst3 <= LATENT_TOL && worst4 <= FRAME_TOL && lat_worst4 <= LATENT_TOL && worst5 <= FRAME_TOL &&
           lat_worst5 <= LATENT_TOL;
  printf("%-8s %-10s %-9s %8s %10s %10s %9s\n", "backend", "size", "segment", "frames", "seconds", "frames/s", "speedup");
  printf("%-8s %4ux%-5u %-9s %8u %10.3f %10.1f %9s\n", "ref", r.width, r.height, "1", r.frames, ta, r.frames / ta, "1.00");
  printf("%-8s %4ux%-5u %-9s %8u %10.3f %10.1f %9.2f\n", other, r.width, r.height, "1", r.frames, tb, r.frames / tb,
         ta / tb);
  printf("%-8s %4ux%-5u %-9s %8u %10.3f %10.1f %9s\n", "ref", r.width, r.height, "2 (cond)", r2.frames, ta2,
         r2.frames / ta2, "1.00");
  printf("%-8s %4ux%-5u %-9s %8u %10.3f %10.1f %9.2f\n", other, r.width, r.height, "2 (cond)", r2.frames, tb2,
         r2.frames / tb2, ta2 / tb2);
  printf("segment 1 frames: max |diff| %d (tolerance %d), mean %.4f levels\n", worst, FRAME_TOL, mean);
  printf("segment 1 tail latents: max |diff| %.2e (tolerance %.0e)\n", lat_worst, LATENT_TOL);
  printf("segment 2 frames (conditioned on ref's tail): max |diff| %d (tolerance %d), mean %.4f levels\n", worst2,
         FRAME_TOL, mean2);
  printf("%s chained on its own tail: seam max |diff| %d (must be 0)\n", other, seam);
  printf("segment 2 with a new prompt (conditioned on ref's tail): max |diff| %d (tolerance %d), mean %.4f levels; "
         "tail latents max |diff| %.2e (tolerance %.0e); ref %.3f s, %s %.3f s\n",
         worst3, FRAME_TOL, mean3, lat_worst3, LATENT_TOL, ta3, other, tb3);
  printf("extension from %u prefix frames (ref's): max |diff| %d (tolerance %d), mean %.4f levels; tail latents "
         "max |diff| %.2e (tolerance %.0e); ref %.3f s, %s %.3f s\n",
         r4.overlap, worst4, FRAME_TOL, mean4, lat_worst4, LATENT_TOL, ta4, other, tb4);
  printf("talking head (segment 2 on ref's tail, segment 1's frames as reference, a voice): max |diff| %d "
         "(tolerance %d), mean %.4f levels; tail latents max |diff| %.2e (tolerance %.0e); ref %.3f s, %s %.3f s\n",
         worst5, FRAME_TOL, mean5, lat_worst5, LATENT_TOL, ta5, other, tb5);
  printf("%s\n", ok ? "PASS" : "FAIL");
  free(voice);
  free(a5.frames), free(b5.frames), free(a5.tail), free(b5.tail);
  free(a4.frames), free(b4.frames), free(a4.tail), free(b4.tail);
  free(a2.frames), free(b2.frames), free(c2.frames), free(a2.tail), free(b2.tail), free(c2.tail);
  free(a3.frames), free(b3.frames), free(a3.tail), free(b3.tail);
  free(a.frames), free(b.frames), free(a.tail), free(b.tail);
  return ok ? 0 : 1;
}
