/*
 * pool.h - a small fork-join thread pool for the ref backend.
 *
 * ref_pool_for(pool, n, fn, arg) splits [0, n) into one contiguous chunk per
 * thread and calls fn(arg, lo, hi, tid) for each non-empty chunk, chunk 0 on
 * the calling thread, and returns when every chunk is done. Work is only ever
 * split into independent element ranges, so results do not depend on the
 * thread count. A NULL pool, or one of one thread, runs fn(arg, 0, n, 0)
 * inline. One caller at a time per pool.
 */
#ifndef SPOOL_REF_POOL_H
#define SPOOL_REF_POOL_H

#include <stddef.h>

#include "../../src/tailstate.h" /* SPOOL_HIDDEN */

typedef struct ref_pool ref_pool;
typedef void (*ref_task)(void *arg, size_t lo, size_t hi, unsigned tid);

/* A pool of threads threads in all (the caller included, so threads − 1
 * workers). NULL when threads ≤ 1 or on failure; both mean "run inline". */
SPOOL_HIDDEN ref_pool *ref_pool_new(unsigned threads);

/* Stops and joins the workers. NULL is a no-op. */
SPOOL_HIDDEN void ref_pool_free(ref_pool *p);

/* Threads of the pool, the caller included (1 for NULL). */
SPOOL_HIDDEN unsigned ref_pool_threads(const ref_pool *p);

/* Runs fn over [0, n) split into ref_pool_threads(p) chunks; see above. */
SPOOL_HIDDEN void ref_pool_for(ref_pool *p, size_t n, ref_task fn, void *arg);

#endif
