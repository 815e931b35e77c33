/*
 * python.c - the python backend: a plugin (libspool_infer_python.so) that
 * embeds CPython and runs a module's generate_segment(request, io) per
 * segment. The protocol is in python/PROTOCOL.md.
 *
 * The interpreter is initialised once per process and the GIL is released
 * at once; a run takes the GIL only while Python code runs, and drops it
 * again around every callback into the engine's caller. The engine loads
 * plugins RTLD_LOCAL, so the plugin re-opens libpython RTLD_GLOBAL before
 * initialising, which extension modules such as numpy need.
 *
 * The interpreter embedded is the one the plugin was built against
 * (SPOOL_PYTHON_EXECUTABLE, plugins.mk's PYTHON): with a venv, exactly that
 * environment's packages.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "spool_infer_backend.h"
#include "tailstate.h"

#ifndef SPOOL_LIBPYTHON
#error "build with -DSPOOL_LIBPYTHON=\"libpython3.X.so.1.0\" (see plugins.mk)"
#endif
#ifndef SPOOL_PYTHON_EXECUTABLE
#error "build with -DSPOOL_PYTHON_EXECUTABLE=\"/path/to/venv/bin/python\" (see plugins.mk)"
#endif

/* Parameters are "k=v;k=v" (spool_param of validate.c, compiled in). */
int spool_param(const char *params, const char *key, char *out, size_t outlen);

typedef struct {
  PyObject *module, *generate;
  PyObject *engine; /* what the module's open(options) returned, or NULL */
  PyObject *params; /* dict of the engine's parameters, str -> str */
  char model[128], version[128], weights[1024];
  int device;
  uint32_t channels, scale, align, temporal;
} py_state;

/* One run's context, reached from the io object. */
typedef struct {
  const spool_request *req;
  const spool_callbacks *cb;
  const int32_t *cancel;
  uint32_t channels, scale, temporal;
  uint32_t next_frame, tails;
  int aborted, cancelled;
  char problem[512]; /* a protocol violation found by io */
} run_ctx;

typedef struct {
  PyObject_HEAD run_ctx *ctx;
} io_object;

static PyObject *abort_error; /* spool.Abort, raised into Python to unwind */

static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static char init_error[512];

static void init_python(void) {
  if (!dlopen(SPOOL_LIBPYTHON, RTLD_NOW | RTLD_GLOBAL | RTLD_NOLOAD) &&
      !dlopen(SPOOL_LIBPYTHON, RTLD_NOW | RTLD_GLOBAL)) {
    snprintf(init_error, sizeof init_error, "cannot load %s globally: %s", SPOOL_LIBPYTHON, dlerror());
    return;
  }
  if (!Py_IsInitialized()) {
    /* An isolated interpreter whose executable is the one the plugin was
     * built against (a venv's bin/python): getpath finds its pyvenv.cfg, so
     * sys.path is that environment's site-packages and the standard library,
     * never PYTHONPATH, the user's site directory or another interpreter's
     * packages. No signal handlers: the host process owns signals. */
    PyConfig config;
    PyConfig_InitIsolatedConfig(&config);
    config.install_signal_handlers = 0;
    PyStatus ps = PyConfig_SetBytesString(&config, &config.program_name, SPOOL_PYTHON_EXECUTABLE);
    if (!PyStatus_Exception(ps)) ps = PyConfig_SetBytesString(&config, &config.executable, SPOOL_PYTHON_EXECUTABLE);
    if (!PyStatus_Exception(ps)) ps = Py_InitializeFromConfig(&config);
    PyConfig_Clear(&config);
    if (PyStatus_Exception(ps)) {
      snprintf(init_error, sizeof init_error, "cannot start the Python of %s: %s%s%s", SPOOL_PYTHON_EXECUTABLE,
               ps.func ? ps.func : "", ps.func ? ": " : "", ps.err_msg ? ps.err_msg : "unknown error");
      return;
    }
    abort_error = PyErr_NewException("spool.Abort", PyExc_BaseException, NULL);
    PyEval_SaveThread(); /* release the GIL: runs take it when they need it */
  } else {
    PyGILState_STATE g = PyGILState_Ensure();
    abort_error = PyErr_NewException("spool.Abort", PyExc_BaseException, NULL);
    PyGILState_Release(g);
  }
}

/* Writes the pending Python exception, with its traceback, into err. */
static void format_exception(char *err, size_t errlen, const char *what) {
  PyObject *type, *value, *tb;
  PyErr_Fetch(&type, &value, &tb);
  PyErr_NormalizeException(&type, &value, &tb);
  const char *text = NULL;
  PyObject *mod = PyImport_ImportModule("traceback"), *lines = NULL, *joined = NULL, *sep = NULL;
  if (mod && type) {
    lines = PyObject_CallMethod(mod, "format_exception", "OOO", type, value ? value : Py_None, tb ? tb : Py_None);
    sep = PyUnicode_FromString("");
    if (lines && sep) joined = PyUnicode_Join(sep, lines);
    if (joined) text = PyUnicode_AsUTF8(joined);
  }
  snprintf(err, errlen, "%s: %s", what, text ? text : "a Python exception (traceback unavailable)");
  PyErr_Clear();
  Py_XDECREF(joined);
  Py_XDECREF(sep);
  Py_XDECREF(lines);
  Py_XDECREF(mod);
  Py_XDECREF(type);
  Py_XDECREF(value);
  Py_XDECREF(tb);
}

static PyObject *raise_abort(run_ctx *c, int cancelled) {
  if (cancelled) c->cancelled = 1;
  else c->aborted = 1;
  PyErr_SetString(abort_error, cancelled ? "cancelled" : "aborted by the engine's caller");
  return NULL;
}

/* The run of an io object; NULL (with RuntimeError set) once its segment
 * is over, e.g. when a module kept io and calls it later. */
static run_ctx *io_ctx(io_object *self) {
  if (!self->ctx) PyErr_SetString(PyExc_RuntimeError, "spool io used after its segment ended");
  return self->ctx;
}

static PyObject *io_progress(io_object *self, PyObject *args) {
  unsigned int step, steps;
  if (!PyArg_ParseTuple(args, "II", &step, &steps)) return NULL;
  run_ctx *c = io_ctx(self);
  if (!c) return NULL;
  if (c->aborted) return raise_abort(c, 0);
  if (c->cancel && __atomic_load_n(c->cancel, __ATOMIC_RELAXED)) return raise_abort(c, 1);
  int rc = 0;
  if (c->cb->on_step) {
    Py_BEGIN_ALLOW_THREADS rc = c->cb->on_step(c->cb->user, step, steps);
    Py_END_ALLOW_THREADS
  }
  if (rc) return raise_abort(c, 0);
  Py_RETURN_NONE;
}

static PyObject *io_cancelled(io_object *self, PyObject *unused) {
  (void)unused;
  run_ctx *c = io_ctx(self);
  if (!c) return NULL;
  return PyBool_FromLong(c->cancel && __atomic_load_n(c->cancel, __ATOMIC_RELAXED));
}

static PyObject *protocol_error(run_ctx *c, const char *msg) {
  snprintf(c->problem, sizeof c->problem, "%s", msg);
  PyErr_SetString(PyExc_ValueError, msg);
  return NULL;
}

static PyObject *io_tail(io_object *self, PyObject *args) {
  PyObject *obj;
  if (!PyArg_ParseTuple(args, "O", &obj)) return NULL;
  run_ctx *c = io_ctx(self);
  if (!c) return NULL;
  if (c->aborted) return raise_abort(c, 0);
  const spool_request *r = c->req;
  if (r->tail_frames == 0) return protocol_error(c, "io.tail called, but the request has tail_frames = 0");
  if (c->tails++) return protocol_error(c, "io.tail called twice");
  if (c->next_frame) return protocol_error(c, "io.tail called after a frame: the tail comes before decode");
  Py_buffer view;
  if (PyObject_GetBuffer(obj, &view, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT | PyBUF_ND) != 0) return NULL;
  uint32_t h = (r->height + c->scale - 1) / c->scale, w = (r->width + c->scale - 1) / c->scale;
  uint32_t lf = c->temporal > 1 ? (r->tail_frames - 1) / c->temporal + 1 : r->tail_frames;
  char msg[256];
  int ok = view.ndim == 4 && view.itemsize == 4 && view.format && strcmp(view.format, "f") == 0 &&
           view.shape[0] == lf && view.shape[1] == c->channels && view.shape[2] == h && view.shape[3] == w;
  if (!ok) {
    snprintf(msg, sizeof msg, "io.tail wants a C-contiguous float32 array of shape [%u, %u, %u, %u]", lf,
             c->channels, h, w);
    PyBuffer_Release(&view);
    return protocol_error(c, msg);
  }
  size_t size = spool_tail_size(c->channels, h, w, lf);
  uint8_t *blob = malloc(size);
  if (!blob) {
    PyBuffer_Release(&view);
    return PyErr_NoMemory();
  }
  spool_tail_encode(blob, size, c->channels, h, w, lf, r->first_frame + r->frames - r->tail_frames,
                    (const float *)view.buf);
  PyBuffer_Release(&view);
  int rc = 0;
  if (c->cb->on_tail) {
    Py_BEGIN_ALLOW_THREADS rc = c->cb->on_tail(c->cb->user, blob, size);
    Py_END_ALLOW_THREADS
  }
  free(blob);
  if (rc) return raise_abort(c, 0);
  Py_RETURN_NONE;
}

static PyObject *io_frame(io_object *self, PyObject *args) {
  unsigned int index;
  PyObject *obj;
  if (!PyArg_ParseTuple(args, "IO", &index, &obj)) return NULL;
  run_ctx *c = io_ctx(self);
  if (!c) return NULL;
  if (c->aborted) return raise_abort(c, 0);
  const spool_request *r = c->req;
  char msg[256];
  if (index != c->next_frame || index >= r->frames) {
    snprintf(msg, sizeof msg, "io.frame(%u): frames must come in order, 0..%u; expected %u", index, r->frames - 1,
             c->next_frame);
    return protocol_error(c, msg);
  }
  if (r->tail_frames && !c->tails) return protocol_error(c, "io.frame called before io.tail");
  if (c->cancel && __atomic_load_n(c->cancel, __ATOMIC_RELAXED)) return raise_abort(c, 1);
  Py_buffer view;
  if (PyObject_GetBuffer(obj, &view, PyBUF_C_CONTIGUOUS) != 0) return NULL;
  size_t want = (size_t)r->width * r->height * 3;
  if (view.itemsize != 1) {
    snprintf(msg, sizeof msg, "io.frame(%u): items of %zd bytes; frames are uint8 RGB", index, view.itemsize);
    PyBuffer_Release(&view);
    return protocol_error(c, msg);
  }
  if ((size_t)view.len != want) {
    snprintf(msg, sizeof msg, "io.frame(%u): %zd bytes, want %zu (height × width × 3, uint8 RGB)", index, view.len,
             want);
    PyBuffer_Release(&view);
    return protocol_error(c, msg);
  }
  spool_frame fr = {index, r->width, r->height, r->width * 3, (const uint8_t *)view.buf};
  int rc = 0;
  if (c->cb->on_frame) {
    Py_BEGIN_ALLOW_THREADS rc = c->cb->on_frame(c->cb->user, &fr);
    Py_END_ALLOW_THREADS
  }
  PyBuffer_Release(&view);
  c->next_frame++;
  if (rc) return raise_abort(c, 0);
  Py_RETURN_NONE;
}

static PyMethodDef io_methods[] = {
    {"progress", (PyCFunction)io_progress, METH_VARARGS, "progress(step, steps): one denoise step is done"},
    {"tail", (PyCFunction)io_tail, METH_VARARGS, "tail(latents): float32 [tail_frames, C, h, w], before any frame"},
    {"frame", (PyCFunction)io_frame, METH_VARARGS, "frame(index, rgb): uint8 [H, W, 3], in order"},
    {"cancelled", (PyCFunction)io_cancelled, METH_NOARGS, "cancelled() -> bool"},
    {NULL, NULL, 0, NULL}};

static PyType_Slot io_slots[] = {{Py_tp_methods, io_methods}, {Py_tp_doc, "spool segment io"}, {0, NULL}};
static PyType_Spec io_spec = {"spool.SegmentIO", sizeof(io_object), 0, Py_TPFLAGS_DEFAULT, io_slots};

static uint32_t dict_u32(PyObject *d, const char *key, uint32_t def) {
  PyObject *v = PyDict_GetItemString(d, key);
  if (!v) return def;
  unsigned long x = PyLong_AsUnsignedLong(v);
  if (PyErr_Occurred()) {
    PyErr_Clear();
    return def;
  }
  return (uint32_t)x;
}

/* params_dict turns "k=v;k=v" (NULL: none) into a new dict of str, so that
 * a module reads the parameters the engine was opened with (e.g. the
 * catalog's weights and shift of its model). NULL with a Python error set
 * on failure. Holds the GIL. */
static PyObject *params_dict(const char *params) {
  PyObject *d = PyDict_New();
  for (const char *p = params; d && p && *p;) {
    const char *end = strchr(p, ';');
    size_t n = end ? (size_t)(end - p) : strlen(p);
    const char *eq = memchr(p, '=', n);
    if (eq && eq > p) {
      PyObject *v = PyUnicode_DecodeUTF8(eq + 1, (Py_ssize_t)(p + n - eq - 1), "strict");
      PyObject *k = v ? PyUnicode_DecodeUTF8(p, (Py_ssize_t)(eq - p), "strict") : NULL;
      if (!k || PyDict_SetItem(d, k, v) < 0) Py_CLEAR(d);
      Py_XDECREF(k);
      Py_XDECREF(v);
    }
    p = end ? end + 1 : p + n;
  }
  return d;
}

/* Takes the GIL on the calling thread, with a thread state that outlives
 * the call: the first time on a thread PyGILState_Ensure makes one and it is
 * never released; later calls on that thread restore it. A thread state
 * made and deleted per call (PyGILState_Ensure/Release) would leave
 * dangling pointers in extensions that remember the thread state they
 * were imported on, as pybind11 does (torch): the next call on that thread
 * would use freed memory. Threads are few (a worker's engine threads) and
 * their thread states stay until the process ends. */
static void enter_python(void) {
  PyThreadState *ts = PyGILState_GetThisThreadState();
  if (ts) PyEval_RestoreThread(ts);
  else (void)PyGILState_Ensure();
}

/* Releases the GIL taken by enter_python, keeping the thread state. */
static void leave_python(void) { (void)PyEval_SaveThread(); }

/* d[key] = str(value); -1 with an exception set on failure. */
static int set_str(PyObject *d, const char *key, const char *value) {
  PyObject *v = PyUnicode_DecodeUTF8(value, (Py_ssize_t)strlen(value), "strict");
  int rc = v ? PyDict_SetItemString(d, key, v) : -1;
  Py_XDECREF(v);
  return rc;
}

/* Calls the engine object's close() if it has one (an exception there is
 * reported on stderr: closing cannot fail), and drops it. GIL held. */
static void close_engine(py_state *s) {
  if (!s->engine) return;
  PyObject *fn = PyObject_GetAttrString(s->engine, "close");
  if (!fn) PyErr_Clear();
  PyObject *res = fn ? PyObject_CallNoArgs(fn) : NULL;
  if (fn && !res) {
    char msg[2048];
    format_exception(msg, sizeof msg, "python backend: close()");
    fprintf(stderr, "%s\n", msg);
  }
  Py_XDECREF(res);
  Py_XDECREF(fn);
  Py_CLEAR(s->engine);
}

static spool_status py_open(const spool_engine_options *o, void **state, char *err, size_t errlen) {
  pthread_once(&init_once, init_python);
  if (init_error[0]) {
    snprintf(err, errlen, "%s", init_error);
    return SPOOL_ERR_BACKEND;
  }
  char module[256] = "", path[1024] = "";
  if (!spool_param(o->params, "module", module, sizeof module) || !module[0]) {
    snprintf(err, errlen, "python backend: params need module=<name> (and optionally path=<dir>)");
    return SPOOL_ERR_INVALID_ARGUMENT;
  }
  spool_param(o->params, "path", path, sizeof path);
  py_state *s = calloc(1, sizeof *s);
  if (!s) return SPOOL_ERR_OUT_OF_MEMORY;
  snprintf(s->model, sizeof s->model, "%s", o->model && *o->model ? o->model : module);
  snprintf(s->weights, sizeof s->weights, "%s", o->weights_dir ? o->weights_dir : "");
  s->device = o->device;
  spool_status st = SPOOL_OK;
  enter_python();
  /* path is a ':'-separated list of directories, put first on sys.path
   * in the order given. */
  PyObject *sys_path = PySys_GetObject("path"); /* borrowed */
  Py_ssize_t at = 0;
  for (char *save = NULL, *dir = strtok_r(path, ":", &save); sys_path && dir; dir = strtok_r(NULL, ":", &save)) {
    PyObject *p = PyUnicode_FromString(dir);
    if (p && !PySequence_Contains(sys_path, p)) PyList_Insert(sys_path, at++, p);
    Py_XDECREF(p);
  }
  s->module = PyImport_ImportModule(module);
  if (!s->module) {
    format_exception(err, errlen, "python backend: import");
    st = SPOOL_ERR_BACKEND_NOT_FOUND;
    goto out;
  }
  s->params = params_dict(o->params);
  if (!s->params) {
    format_exception(err, errlen, "python backend: params");
    st = SPOOL_ERR_BACKEND;
    goto out;
  }
  /* A module with open(options) gets one engine object per engine (per
   * worker slot): its info() and generate_segment(request, io) are used,
   * and its close() at engine close, so engines share no state. */
  PyObject *open_fn = PyObject_GetAttrString(s->module, "open");
  if (!open_fn) PyErr_Clear();
  if (open_fn && PyCallable_Check(open_fn)) {
    PyObject *options = PyDict_Copy(s->params), *dev = PyLong_FromLong(s->device);
    if (!options || !dev || set_str(options, "model", s->model) < 0 || set_str(options, "weights_dir", s->weights) < 0 ||
        PyDict_SetItemString(options, "device", dev) < 0) {
      Py_XDECREF(options);
      Py_XDECREF(dev);
      Py_DECREF(open_fn);
      format_exception(err, errlen, "python backend: options");
      st = SPOOL_ERR_BACKEND;
      goto out;
    }
    s->engine = PyObject_CallOneArg(open_fn, options);
    Py_DECREF(options);
    Py_DECREF(dev);
    Py_DECREF(open_fn);
    if (!s->engine) {
      format_exception(err, errlen, "python backend: open()");
      st = SPOOL_ERR_BACKEND;
      goto out;
    }
  } else {
    Py_XDECREF(open_fn);
  }
  PyObject *owner = s->engine ? s->engine : s->module;
  s->generate = PyObject_GetAttrString(owner, "generate_segment");
  if (!s->generate || !PyCallable_Check(s->generate)) {
    PyErr_Clear();
    snprintf(err, errlen, "python backend: %s %s has no callable generate_segment(request, io)",
             s->engine ? "the engine that open() returned of module" : "module", module);
    st = SPOOL_ERR_INVALID_ARGUMENT;
    goto out;
  }
  s->channels = 16, s->scale = 8, s->align = 1, s->temporal = 1;
  snprintf(s->version, sizeof s->version, "%s", module);
  PyObject *info_fn = PyObject_GetAttrString(owner, "info");
  if (!info_fn) PyErr_Clear();
  if (info_fn) {
    PyObject *info = s->engine ? PyObject_CallNoArgs(info_fn) : PyObject_CallOneArg(info_fn, s->params);
    Py_DECREF(info_fn);
    if (!info || !PyDict_Check(info)) {
      if (!info) format_exception(err, errlen, "python backend: info()");
      else snprintf(err, errlen, "python backend: info() must return a dict");
      Py_XDECREF(info);
      st = SPOOL_ERR_BACKEND;
      goto out;
    }
    s->channels = dict_u32(info, "latent_channels", 16);
    s->scale = dict_u32(info, "latent_scale", 8);
    s->align = dict_u32(info, "frame_align", 1);
    s->temporal = dict_u32(info, "temporal_scale", 1);
    PyObject *v = PyDict_GetItemString(info, "model_version");
    if (v && PyUnicode_Check(v)) snprintf(s->version, sizeof s->version, "%s", PyUnicode_AsUTF8(v));
    Py_DECREF(info);
    if (s->channels == 0 || s->scale == 0 || s->align == 0 || s->temporal == 0) {
      snprintf(err, errlen, "python backend: info() gave a zero latent_channels, latent_scale, frame_align or temporal_scale");
      st = SPOOL_ERR_BACKEND;
    }
  }
out:
  if (st != SPOOL_OK) {
    close_engine(s);
    Py_XDECREF(s->params);
    Py_XDECREF(s->generate);
    Py_XDECREF(s->module);
    free(s);
  } else {
    *state = s;
  }
  leave_python();
  return st;
}

static void py_close(void *state) {
  py_state *s = state;
  if (!s) return;
  enter_python();
  close_engine(s);
  Py_XDECREF(s->params);
  Py_XDECREF(s->generate);
  Py_XDECREF(s->module);
  leave_python();
  free(s);
}

static void py_info(void *state, spool_engine_info *info) {
  py_state *s = state;
  info->model = s->model;
  info->model_version = s->version;
  info->latent_channels = s->channels;
  info->latent_scale = s->scale;
  info->frame_align = s->align;
  info->temporal_scale = s->temporal;
}

/* The cond blob as a numpy float32 array [overlap, C, h, w]. */
static PyObject *cond_array(const spool_request *r, py_state *s, char *err, size_t errlen) {
  spool_tail_view v;
  if (spool_tail_parse(r->cond, r->cond_len, &v, NULL, 0, err, errlen) != SPOOL_OK) return NULL;
  size_t n = (size_t)v.frames * v.channels * v.latent_h * v.latent_w;
  PyObject *bytes = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)(n * 4));
  if (!bytes) return NULL;
  if (spool_tail_parse(r->cond, r->cond_len, &v, (float *)PyBytes_AS_STRING(bytes), n, err, errlen) != SPOOL_OK) {
    Py_DECREF(bytes);
    return NULL;
  }
  (void)s;
  PyObject *np = PyImport_ImportModule("numpy");
  if (!np) {
    Py_DECREF(bytes);
    return NULL;
  }
  PyObject *flat = PyObject_CallMethod(np, "frombuffer", "Os", bytes, "float32");
  PyObject *arr = flat ? PyObject_CallMethod(flat, "reshape", "(IIII)", v.frames, v.channels, v.latent_h, v.latent_w)
                       : NULL;
  Py_XDECREF(flat);
  Py_DECREF(np);
  Py_DECREF(bytes);
  return arr;
}

/* n bytes at data as a numpy array of dtype and shape (a tuple), copied
 * into a bytearray (writable, and the module may keep it). */
static PyObject *numpy_copy(const void *data, size_t n, const char *dtype, PyObject *shape) {
  if (!shape) return NULL;
  PyObject *buf = PyByteArray_FromStringAndSize((const char *)data, (Py_ssize_t)n);
  PyObject *np = buf ? PyImport_ImportModule("numpy") : NULL;
  PyObject *flat = np ? PyObject_CallMethod(np, "frombuffer", "Os", buf, dtype) : NULL;
  PyObject *arr = flat ? PyObject_CallMethod(flat, "reshape", "(O)", shape) : NULL;
  Py_XDECREF(flat);
  Py_XDECREF(np);
  Py_XDECREF(buf);
  Py_DECREF(shape);
  return arr;
}

/* The prefix frames as a numpy uint8 array [overlap, height, width, 3]. */
static PyObject *prefix_array(const spool_request *r) {
  return numpy_copy(r->prefix, r->prefix_len, "uint8", Py_BuildValue("(IIII)", r->overlap, r->height, r->width, 3u));
}

/* The audio samples as a numpy float32 array [audio_len]. */
static PyObject *audio_array(const spool_request *r) {
  return numpy_copy(r->audio, r->audio_len * sizeof(float), "float32", Py_BuildValue("(n)", (Py_ssize_t)r->audio_len));
}

/* The reference frames as a numpy uint8 array [frames, height, width, 3]. */
static PyObject *reference_array(const spool_request *r) {
  return numpy_copy(r->reference, r->reference_len, "uint8",
                    Py_BuildValue("(IIII)", r->frames, r->height, r->width, 3u));
}

static spool_status py_run(void *state, const spool_request *r, const spool_callbacks *cb, const int32_t *cancel,
                           char *err, size_t errlen) {
  py_state *s = state;
  run_ctx c = {r, cb, cancel, s->channels, s->scale, s->temporal, 0, 0, 0, 0, ""};
  spool_status st = SPOOL_OK;
  enter_python();
  PyObject *type = NULL, *io = NULL, *req = NULL, *cond = NULL, *prefix = NULL, *audio = NULL, *reference = NULL;
  PyObject *res = NULL;
  type = PyType_FromSpec(&io_spec);
  if (!type) goto pyfail;
  io = PyType_GenericAlloc((PyTypeObject *)type, 0);
  if (!io) goto pyfail;
  ((io_object *)io)->ctx = &c;
  if (r->cond) {
    char cerr[512] = "";
    cond = cond_array(r, s, cerr, sizeof cerr);
    if (!cond) {
      if (cerr[0]) {
        snprintf(err, errlen, "python backend: %s", cerr);
        st = SPOOL_ERR_INVALID_ARGUMENT;
        goto done;
      }
      goto pyfail;
    }
  } else {
    cond = Py_NewRef(Py_None);
  }
  prefix = r->prefix ? prefix_array(r) : Py_NewRef(Py_None);
  if (!prefix) goto pyfail;
  /* audio_rate 0 with samples is refused by the engine; a rate without
   * samples (0 frames' worth) is an empty array. */
  audio = r->audio_rate ? audio_array(r) : Py_NewRef(Py_None);
  if (!audio) goto pyfail;
  reference = r->reference ? reference_array(r) : Py_NewRef(Py_None);
  if (!reference) goto pyfail;
  req = Py_BuildValue("{s:s,s:K,s:I,s:I,s:I,s:I,s:I,s:d,s:L,s:I,s:I,s:O,s:O,s:O,s:I,s:O,s:s,s:s,s:i,s:O}", "prompt",
                      r->prompt, "seed", (unsigned long long)r->seed, "width", r->width, "height", r->height, "frames",
                      r->frames, "overlap", r->overlap, "steps", r->steps, "guidance", (double)r->guidance,
                      "first_frame", (long long)r->first_frame, "tail_frames", r->tail_frames, "fps",
                      r->fps ? r->fps : 24u, "cond", cond, "prefix_frames", prefix, "audio", audio, "audio_rate",
                      r->audio_rate, "reference_frames", reference, "model", s->model, "weights_dir", s->weights,
                      "device", s->device, "params", s->params);
  if (!req) goto pyfail;
  res = PyObject_CallFunctionObjArgs(s->generate, req, io, NULL);
  /* Once the cancel flag is up, however the module stops (spool.Abort from
   * io, its own exception after io.cancelled(), or an early return), the run
   * is cancelled, not failed. */
  if (cancel && __atomic_load_n(cancel, __ATOMIC_RELAXED)) c.cancelled = 1;
  if (!res || c.aborted || (c.cancelled && (c.next_frame != r->frames || (r->tail_frames && c.tails != 1)))) {
    if (c.cancelled) {
      PyErr_Clear();
      snprintf(err, errlen, "cancelled");
      st = SPOOL_ERR_CANCELLED;
    } else if (c.aborted) {
      PyErr_Clear();
      snprintf(err, errlen, "aborted by a callback");
      st = SPOOL_ERR_ABORTED;
    } else {
      goto pyfail;
    }
    goto done;
  }
  if (c.problem[0]) { /* the module caught io's protocol error and went on */
    snprintf(err, errlen, "python backend: protocol: %s", c.problem);
    st = SPOOL_ERR_BACKEND;
  } else if (c.next_frame != r->frames) {
    snprintf(err, errlen, "python backend: generate_segment returned after %u of %u frames", c.next_frame, r->frames);
    st = SPOOL_ERR_BACKEND;
  } else if (r->tail_frames && c.tails != 1) {
    snprintf(err, errlen, "python backend: generate_segment never called io.tail (tail_frames = %u)", r->tail_frames);
    st = SPOOL_ERR_BACKEND;
  }
  goto done;
pyfail:
  format_exception(err, errlen, c.problem[0] ? "python backend: protocol" : "python backend: generate_segment raised");
  st = SPOOL_ERR_BACKEND;
done:
  if (io) ((io_object *)io)->ctx = NULL;
  Py_XDECREF(res);
  Py_XDECREF(req);
  Py_XDECREF(cond);
  Py_XDECREF(prefix);
  Py_XDECREF(audio);
  Py_XDECREF(reference);
  Py_XDECREF(io);
  Py_XDECREF(type);
  leave_python();
  return st;
}

static const spool_backend backend = {SPOOL_INFER_ABI_VERSION, "python", py_open, py_close, py_info, py_run};

SPOOL_API const spool_backend *spool_plugin_backend(uint32_t abi) {
  return abi == SPOOL_INFER_ABI_VERSION ? &backend : NULL;
}
