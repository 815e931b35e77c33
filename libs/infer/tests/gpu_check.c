/* gpu_check.c - runs the same request on ref and on another backend (cuda
 * by default), compares frames and tail latents within tolerance, and times
 * both. Run through ../gpu-check.sh. Usage:
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
  int worst = 0;
  double sum = 0;
  for (size_t i = 0; i < a.frame_bytes * r.frames; i++) {
    int d = abs((int)a.frames[i] - (int)b.frames[i]);
    if (d > worst) worst = d;
    sum += d;
  }
  spool_tail_view va, vb;
  char err[256];
  size_t nlat = (size_t)r.tail_frames * 16 * ((r.height + 7) / 8) * ((r.width + 7) / 8);
  float *la = malloc(nlat * 4), *lb = malloc(nlat * 4);
  double lat_worst = INFINITY;
  if (spool_tail_parse(a.tail, a.tail_len, &va, la, nlat, err, sizeof err) == SPOOL_OK &&
      spool_tail_parse(b.tail, b.tail_len, &vb, lb, nlat, err, sizeof err) == SPOOL_OK) {
    lat_worst = 0;
    for (size_t i = 0; i < nlat; i++) lat_worst = fmax(lat_worst, fabs((double)la[i] - lb[i]));
  }
  int ok = worst <= FRAME_TOL && lat_worst <= LATENT_TOL;
  printf("%-8s %-8s %10s %12s %14s %16s\n", "backend", "size", "frames", "seconds", "frames/s", "speedup");
  printf("%-8s %4ux%-4u %10u %12.3f %14.1f %16s\n", "ref", r.width, r.height, r.frames, ta, r.frames / ta, "1.00");
  printf("%-8s %4ux%-4u %10u %12.3f %14.1f %16.2f\n", other, r.width, r.height, r.frames, tb, r.frames / tb, ta / tb);
  printf("frames: max |diff| %d (tolerance %d), mean %.4f levels; tail latents: max |diff| %.2e (tolerance %.0e): %s\n",
         worst, FRAME_TOL, sum / (a.frame_bytes * (double)r.frames), lat_worst, LATENT_TOL, ok ? "PASS" : "FAIL");
  free(a.frames), free(b.frames), free(a.tail), free(b.tail), free(la), free(lb);
  return ok ? 0 : 1;
}
