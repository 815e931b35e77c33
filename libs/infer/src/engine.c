/* engine.c - the public ABI: engines, backend lookup, plugin loading. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "internal.h"

struct spool_engine {
  const spool_backend *be;
  void *state;
  spool_engine_info info;
  char err[4096];
};

SPOOL_API uint32_t spool_abi_version(void) { return SPOOL_INFER_ABI_VERSION; }

SPOOL_API const char *spool_status_string(spool_status s) {
  switch (s) {
  case SPOOL_OK: return "ok";
  case SPOOL_ERR_INVALID_ARGUMENT: return "invalid argument";
  case SPOOL_ERR_BACKEND_NOT_FOUND: return "backend not found";
  case SPOOL_ERR_ABI_MISMATCH: return "ABI mismatch";
  case SPOOL_ERR_CANCELLED: return "cancelled";
  case SPOOL_ERR_ABORTED: return "aborted by a callback";
  case SPOOL_ERR_OUT_OF_MEMORY: return "out of memory";
  case SPOOL_ERR_DEVICE: return "device error";
  case SPOOL_ERR_BACKEND: return "backend error";
  case SPOOL_ERR_INTERNAL: return "internal error";
  }
  return "unknown status";
}

static void seterr(char *buf, size_t len, const char *msg) {
  if (buf && len) snprintf(buf, len, "%s", msg);
}

/* Tries dir/libspool_infer_<name>.so; returns the handle or NULL. */
static void *try_plugin(const char *dir, const char *file, char *tried, size_t tlen) {
  char path[PATH_MAX];
  if (snprintf(path, sizeof path, "%s/%s", dir, file) >= (int)sizeof path) return NULL;
  size_t used = strlen(tried);
  if (used + 4 < tlen) snprintf(tried + used, tlen - used, "%s%s", used ? ", " : "", dir);
  if (access(path, R_OK) != 0) return NULL;
  return dlopen(path, RTLD_NOW | RTLD_LOCAL);
}

/* Finds a plugin: opts->plugin_dir, then $SPOOL_INFER_PLUGIN_DIR, then the
 * directory of the running program. Plugins stay loaded for the life of the
 * process (an embedded interpreter cannot be unloaded safely). */
static spool_status load_plugin(const spool_engine_options *o, const spool_backend **out, char *err, size_t errlen) {
  char file[128], tried[2048] = "";
  if (snprintf(file, sizeof file, "libspool_infer_%s.so", o->backend) >= (int)sizeof file) {
    seterr(err, errlen, "backend name too long");
    return SPOOL_ERR_INVALID_ARGUMENT;
  }
  for (const char *b = o->backend; *b; b++) {
    if (!((*b >= 'a' && *b <= 'z') || (*b >= '0' && *b <= '9') || *b == '_')) {
      snprintf(err, errlen, "backend %s: names are a-z, 0-9 and '_'", o->backend);
      return SPOOL_ERR_BACKEND_NOT_FOUND;
    }
  }
  void *h = NULL;
  if (o->plugin_dir && *o->plugin_dir) h = try_plugin(o->plugin_dir, file, tried, sizeof tried);
  const char *env = getenv("SPOOL_INFER_PLUGIN_DIR");
  if (!h && env && *env) h = try_plugin(env, file, tried, sizeof tried);
  if (!h) {
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0) {
      exe[n] = 0;
      h = try_plugin(dirname(exe), file, tried, sizeof tried);
    }
  }
  if (!h) {
    const char *why = dlerror();
    snprintf(err, errlen,
             "backend %s: plugin %s not found or not loadable (looked in: %s)%s%s; build it with "
             "\"make -C libs/infer %s\" and point SPOOL_INFER_PLUGIN_DIR at libs/infer/build",
             o->backend, file, tried[0] ? tried : "nowhere", why ? ": " : "", why ? why : "", o->backend);
    return SPOOL_ERR_BACKEND_NOT_FOUND;
  }
  const spool_backend *(*entry)(uint32_t) = (const spool_backend *(*)(uint32_t))dlsym(h, "spool_plugin_backend");
  if (!entry) {
    snprintf(err, errlen, "backend %s: %s exports no spool_plugin_backend", o->backend, file);
    return SPOOL_ERR_BACKEND_NOT_FOUND;
  }
  const spool_backend *be = entry(SPOOL_INFER_ABI_VERSION);
  if (!be || be->abi_version != SPOOL_INFER_ABI_VERSION) {
    /* A plugin answers NULL for an ABI it was not built for: ask it for
     * the others to name the one it was (its table is static data, and a
     * table of another ABI is only read for its version, never used). */
    uint32_t built = be ? be->abi_version : 0;
    for (uint32_t v = 1; !built && v <= SPOOL_INFER_ABI_VERSION + 16; v++) {
      const spool_backend *other = v == SPOOL_INFER_ABI_VERSION ? NULL : entry(v);
      if (other) built = other->abi_version;
    }
    char was[48] = "for another ABI";
    if (built) snprintf(was, sizeof was, "for ABI %u", built);
    snprintf(err, errlen,
             "backend %s: %s was built %s, this library is ABI %u; rebuild the plugin with \"make -C libs/infer %s\"",
             o->backend, file, was, SPOOL_INFER_ABI_VERSION, o->backend);
    return SPOOL_ERR_ABI_MISMATCH;
  }
  *out = be;
  return SPOOL_OK;
}

SPOOL_API spool_status spool_engine_open(const spool_engine_options *opts, spool_engine_t **out, char *err,
                                         size_t errlen) {
  if (out) *out = NULL;
  if (!opts || !out) {
    seterr(err, errlen, "engine options: NULL");
    return SPOOL_ERR_INVALID_ARGUMENT;
  }
  if (opts->struct_size < SPOOL_ENGINE_OPTIONS_V1_SIZE) {
    seterr(err, errlen, "engine options: struct_size too small (built against another header?)");
    return SPOOL_ERR_ABI_MISMATCH;
  }
  /* Fields appended after the caller's header read as 0. */
  spool_engine_options oc;
  memset(&oc, 0, sizeof oc);
  memcpy(&oc, opts, opts->struct_size < sizeof oc ? opts->struct_size : sizeof oc);
  oc.struct_size = sizeof oc;
  const spool_engine_options *o = &oc;
  if (!o->backend || !*o->backend) {
    seterr(err, errlen, "engine options: a backend name is required");
    return SPOOL_ERR_INVALID_ARGUMENT;
  }
  if (o->threads < 0 || o->threads > SPOOL_MAX_THREADS) {
    if (err && errlen) snprintf(err, errlen, "engine options: threads %d: want 0 (default) or 1..%d", o->threads, SPOOL_MAX_THREADS);
    return SPOOL_ERR_INVALID_ARGUMENT;
  }
  const spool_backend *be = NULL;
  if (strcmp(o->backend, "ref") == 0) be = &spool_backend_ref;
  else if (strcmp(o->backend, "sim") == 0) be = &spool_backend_sim;
  else {
    spool_status st = load_plugin(o, &be, err, errlen);
    if (st != SPOOL_OK) return st;
  }
  spool_engine_t *e = calloc(1, sizeof *e);
  if (!e) {
    seterr(err, errlen, "out of memory");
    return SPOOL_ERR_OUT_OF_MEMORY;
  }
  e->be = be;
  char msg[sizeof e->err] = "";
  spool_status st = be->open(o, &e->state, msg, sizeof msg);
  if (st != SPOOL_OK) {
    if (!msg[0]) snprintf(msg, sizeof msg, "%s", spool_status_string(st));
    if (err && errlen) snprintf(err, errlen, "backend %s: %s", o->backend, msg);
    free(e);
    return st;
  }
  e->info.struct_size = sizeof e->info;
  be->info(e->state, &e->info);
  e->info.backend = be->name;
  if (e->info.latent_scale == 0) e->info.latent_scale = 8;
  if (e->info.frame_align == 0) e->info.frame_align = 1;
  if (e->info.temporal_scale == 0) e->info.temporal_scale = 1;
  *out = e;
  return SPOOL_OK;
}

SPOOL_API void spool_engine_close(spool_engine_t *e) {
  if (!e) return;
  e->be->close(e->state);
  free(e);
}

SPOOL_API spool_status spool_engine_info_get(spool_engine_t *e, spool_engine_info *info) {
  if (!e || !info || info->struct_size < sizeof(spool_engine_info)) return SPOOL_ERR_INVALID_ARGUMENT;
  *info = e->info;
  return SPOOL_OK;
}

SPOOL_API spool_status spool_engine_run(spool_engine_t *e, const spool_request *req, const spool_callbacks *cb,
                                        const int32_t *cancel) {
  if (!e) return SPOOL_ERR_INVALID_ARGUMENT;
  e->err[0] = 0;
  if (!req) {
    snprintf(e->err, sizeof e->err, "request: NULL");
    return SPOOL_ERR_INVALID_ARGUMENT;
  }
  if (req->struct_size < SPOOL_REQUEST_V1_SIZE) {
    snprintf(e->err, sizeof e->err, "request: struct_size %u, want at least %zu (built against another header?)",
             req->struct_size, (size_t)SPOOL_REQUEST_V1_SIZE);
    return SPOOL_ERR_INVALID_ARGUMENT;
  }
  /* Fields appended after the caller's header read as 0 (prefix NULL);
   * validation and the backend see the full-size copy. */
  spool_request full;
  memset(&full, 0, sizeof full);
  memcpy(&full, req, req->struct_size < sizeof full ? req->struct_size : sizeof full);
  full.struct_size = sizeof full;
  req = &full;
  spool_status st = spool_validate_request(req, &e->info, e->err, sizeof e->err);
  if (st != SPOOL_OK) return st;
  static const spool_callbacks none = {0};
  if (spool_cancelled(cancel)) {
    snprintf(e->err, sizeof e->err, "cancelled before the run started");
    return SPOOL_ERR_CANCELLED;
  }
  st = e->be->run(e->state, req, cb ? cb : &none, cancel, e->err, sizeof e->err);
  if (st != SPOOL_OK && !e->err[0]) snprintf(e->err, sizeof e->err, "%s", spool_status_string(st));
  return st;
}

SPOOL_API const char *spool_engine_last_error(const spool_engine_t *e) { return e ? e->err : ""; }
