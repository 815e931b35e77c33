/* fake_plugin.c - plugins for the engine's loader tests, built by the
 * Makefile in five flavours:
 *   -DFAKE_NAME=fakeabi -DFAKE_ABI=99  a plugin built for another ABI that
 *                                      hands out its table whatever it is asked
 *   -DFAKE_NAME=fakeabi1 -DFAKE_ABI=1 -DFAKE_STRICT
 *                                      a plugin built for ABI 1, answering as
 *                                      the real plugins do: its table for its
 *                                      own ABI, NULL for any other
 *   -DFAKE_NAME=fakeabi2 -DFAKE_ABI=2 -DFAKE_STRICT
 *                                      the same, built for ABI 2 (before
 *                                      audio and reference frames)
 *   -DFAKE_NAME=noentry -DNO_ENTRY     a .so without spool_plugin_backend
 *   -DFAKE_NAME=fakedev                loads, but its device is absent */
#include <stdio.h>

#include "spool_infer_backend.h"

#ifndef FAKE_ABI
#define FAKE_ABI SPOOL_INFER_ABI_VERSION
#endif
#define STR2(x) #x
#define STR(x) STR2(x)

static spool_status f_open(const spool_engine_options *o, void **state, char *err, size_t errlen) {
  (void)o;
  (void)state;
  snprintf(err, errlen, "no GPU here");
  return SPOOL_ERR_DEVICE;
}
static void f_close(void *s) { (void)s; }
static void f_info(void *s, spool_engine_info *i) { (void)s; (void)i; }
static spool_status f_run(void *s, const spool_request *r, const spool_callbacks *cb, const int32_t *c, char *e,
                          size_t n) {
  (void)s, (void)r, (void)cb, (void)c, (void)e, (void)n;
  return SPOOL_ERR_INTERNAL;
}

static const spool_backend table = {FAKE_ABI, STR(FAKE_NAME), f_open, f_close, f_info, f_run};

#ifndef NO_ENTRY
SPOOL_API const spool_backend *spool_plugin_backend(uint32_t abi_version) {
#ifdef FAKE_STRICT
  return abi_version == FAKE_ABI ? &table : NULL;
#else
  (void)abi_version;
  return &table; /* even for another ABI: the engine must check */
#endif
}
#else
SPOOL_API const spool_backend *spool_plugin_entry_misnamed(void) { return &table; }
#endif
