/*
 * spool_infer_backend.h - the interface between the engine and a backend.
 *
 * Built-in backends (ref, sim) and plugins (python, cuda) implement the same
 * table. A plugin is a shared object named libspool_infer_<name>.so that
 * exports spool_plugin_backend; the engine dlopens it on demand, so the
 * program that uses the library never links Python or CUDA.
 *
 * The engine validates every request (sizes, frames, overlap, steps, prompt,
 * the tail-state blob's header and checksum, the prefix, audio and reference
 * frames' sizes) before a backend sees it. A backend refuses audio or
 * reference frames it cannot use (SPOOL_ERR_INVALID_ARGUMENT, naming them)
 * rather than ignore them.
 */
#ifndef SPOOL_INFER_BACKEND_H
#define SPOOL_INFER_BACKEND_H

#include "spool_infer.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct spool_backend {
  uint32_t abi_version; /* SPOOL_INFER_ABI_VERSION the backend was built with */
  const char *name;     /* "ref", "sim", "python", "cuda" */
  /* Loads the model. *state is the backend's own; err (errlen bytes, caller
   * owned) receives a message on failure. */
  spool_status (*open)(const spool_engine_options *opts, void **state,
                       char *err, size_t errlen);
  /* Frees state. */
  void (*close)(void *state);
  /* Fills the backend's fields of info (model, model_version, latent_*,
   * frame_align); strings stay owned by state. */
  void (*info)(void *state, spool_engine_info *info);
  /* Runs one validated request; same callback contract as spool_engine_run. */
  spool_status (*run)(void *state, const spool_request *req,
                      const spool_callbacks *cb, const int32_t *cancel,
                      char *err, size_t errlen);
} spool_backend;

/* Exported by every plugin. Returns the plugin's table, or NULL when it does
 * not support abi_version. The table is static and never freed. */
SPOOL_API const spool_backend *spool_plugin_backend(uint32_t abi_version);

#ifdef __cplusplus
}
#endif

#endif /* SPOOL_INFER_BACKEND_H */
