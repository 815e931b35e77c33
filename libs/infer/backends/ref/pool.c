/* pool.c - the ref backend's fork-join thread pool; see pool.h. */
#define _POSIX_C_SOURCE 200809L
#include "pool.h"

#include <pthread.h>
#include <stdlib.h>

struct ref_pool {
  pthread_mutex_t mu;
  pthread_cond_t start, done;
  unsigned threads, started; /* threads in all; workers started */
  unsigned long gen;         /* bumped per job */
  unsigned pending;          /* worker chunks not yet done */
  int stop;
  ref_task fn;
  void *arg;
  size_t n;
  pthread_t *tids;
};

typedef struct {
  ref_pool *p;
  unsigned tid;
} worker_arg;

static void chunk(const ref_pool *p, unsigned k, size_t *lo, size_t *hi) {
  /* n ≤ 2^40 and threads ≤ 2^8 in practice: n × k fits in 64 bits. */
  *lo = (size_t)((unsigned long long)p->n * k / p->threads);
  *hi = (size_t)((unsigned long long)p->n * (k + 1) / p->threads);
}

static void *worker(void *v) {
  worker_arg a = *(worker_arg *)v;
  free(v);
  ref_pool *p = a.p;
  unsigned long seen = 0;
  pthread_mutex_lock(&p->mu);
  for (;;) {
    while (!p->stop && p->gen == seen) pthread_cond_wait(&p->start, &p->mu);
    if (p->stop) break;
    seen = p->gen;
    size_t lo, hi;
    chunk(p, a.tid, &lo, &hi);
    ref_task fn = p->fn;
    void *arg = p->arg;
    pthread_mutex_unlock(&p->mu);
    if (lo < hi) fn(arg, lo, hi, a.tid);
    pthread_mutex_lock(&p->mu);
    if (--p->pending == 0) pthread_cond_signal(&p->done);
  }
  pthread_mutex_unlock(&p->mu);
  return NULL;
}

ref_pool *ref_pool_new(unsigned threads) {
  if (threads <= 1) return NULL;
  ref_pool *p = calloc(1, sizeof *p);
  if (!p) return NULL;
  p->tids = calloc(threads, sizeof *p->tids);
  if (!p->tids || pthread_mutex_init(&p->mu, NULL) != 0) {
    free(p->tids);
    free(p);
    return NULL;
  }
  pthread_cond_init(&p->start, NULL);
  pthread_cond_init(&p->done, NULL);
  p->threads = threads;
  for (unsigned k = 1; k < threads; k++) {
    worker_arg *a = malloc(sizeof *a);
    if (!a) break;
    a->p = p;
    a->tid = k;
    if (pthread_create(&p->tids[k], NULL, worker, a) != 0) {
      free(a);
      break;
    }
    p->started++;
  }
  if (p->started + 1 < threads) { /* could not start them all: run inline */
    ref_pool_free(p);
    return NULL;
  }
  return p;
}

void ref_pool_free(ref_pool *p) {
  if (!p) return;
  pthread_mutex_lock(&p->mu);
  p->stop = 1;
  pthread_cond_broadcast(&p->start);
  pthread_mutex_unlock(&p->mu);
  for (unsigned k = 1; k <= p->started; k++) pthread_join(p->tids[k], NULL);
  pthread_cond_destroy(&p->start);
  pthread_cond_destroy(&p->done);
  pthread_mutex_destroy(&p->mu);
  free(p->tids);
  free(p);
}

unsigned ref_pool_threads(const ref_pool *p) { return p ? p->threads : 1; }

void ref_pool_for(ref_pool *p, size_t n, ref_task fn, void *arg) {
  if (n == 0) return;
  if (!p) {
    fn(arg, 0, n, 0);
    return;
  }
  pthread_mutex_lock(&p->mu);
  p->fn = fn;
  p->arg = arg;
  p->n = n;
  p->pending = p->threads - 1;
  p->gen++;
  pthread_cond_broadcast(&p->start);
  size_t lo, hi;
  chunk(p, 0, &lo, &hi);
  pthread_mutex_unlock(&p->mu);
  if (lo < hi) fn(arg, lo, hi, 0);
  pthread_mutex_lock(&p->mu);
  while (p->pending) pthread_cond_wait(&p->done, &p->mu);
  pthread_mutex_unlock(&p->mu);
}
