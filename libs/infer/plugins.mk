# Plugins built against system libraries: included by libs/infer/Makefile,
# and usable on its own: make -C libs/infer -f plugins.mk python python-check.
# The defaults below are the Makefile's, for the standalone case (when
# included, the Makefile's own values win).
PLUGINS_MK_DIR := $(dir $(lastword $(MAKEFILE_LIST)))
BUILD         ?= build
CC            ?= gcc
CFLAGS        ?= -O2 -g -std=c11 -Wall -Wextra -Wno-missing-field-initializers -Werror -fvisibility=hidden -Iinclude -Isrc
LDLIBS        ?= -ldl -lm
SRCS          ?= src/engine.c src/validate.c src/tailstate.c backends/ref/ref.c backends/sim/sim.c
# PYTHON is the interpreter the plugin embeds, with its packages: by default
# the pinned environment `make venv` builds (.spool/venv); another one, such
# as a GPU image's python3.12 with its own torch, is one variable:
#   make -C libs/infer python PYTHON=/usr/bin/python3.12
# Its headers and libpython come from sysconfig (a venv's are its base
# interpreter's: Debian's python3-dev).
PYTHON        ?= $(abspath $(PLUGINS_MK_DIR)../../.spool/venv/bin/python)
PY_CONFIG      = $(shell $(PYTHON) -c 'import sysconfig as s; v = s.get_config_var; print(s.get_paths()["include"], v("LIBDIR"), v("LDVERSION"), v("INSTSONAME"))' 2>/dev/null)
PY_INCLUDE     = $(word 1,$(PY_CONFIG))
PY_LIBDIR      = $(word 2,$(PY_CONFIG))
PY_LDVERSION   = $(word 3,$(PY_CONFIG))
PY_SONAME      = $(word 4,$(PY_CONFIG))

.PHONY: python python-check

python: $(BUILD)/libspool_infer_python.so ## build the python plugin against $(PYTHON) (make venv, Debian's python3-dev)
# The interpreter is compiled into the plugin: a change of PYTHON rebuilds it.
$(BUILD)/python.interpreter: FORCE
	@mkdir -p $(@D)
	@echo '$(PYTHON)' | cmp -s - $@ || echo '$(PYTHON)' > $@
FORCE:
$(BUILD)/libspool_infer_python.so: backends/python/python.c src/tailstate.c src/validate.c $(wildcard include/*.h src/*.h) $(BUILD)/python.interpreter
	@mkdir -p $(@D)
	@[ -x $(PYTHON) ] || { echo "make python: $(PYTHON) not found; run \"make venv\" (the pinned environment) or give PYTHON=<interpreter>" >&2; exit 1; }
	@[ -f $(PY_INCLUDE)/Python.h ] || { echo "make python: $(PY_INCLUDE)/Python.h not found; run \"make deps\" or \"apt-get install -y python3-dev\"" >&2; exit 1; }
	$(CC) -std=c11 -O2 -g -Wall -Wextra -Wno-missing-field-initializers -fPIC -shared -fvisibility=hidden \
	  -Iinclude -Isrc -I$(PY_INCLUDE) -DSPOOL_LIBPYTHON='"$(PY_SONAME)"' -DSPOOL_PYTHON_EXECUTABLE='"$(PYTHON)"' \
	  -o $@ backends/python/python.c src/tailstate.c src/validate.c -L$(PY_LIBDIR) -lpython$(PY_LDVERSION) -ldl -lm -lpthread

# The plugin through the engine, as a worker loads it (tests/test_python.c):
# chain, determinism, two engines at once, tracebacks, protocol, cancel.
$(BUILD)/test_python: tests/test_python.c $(SRCS) $(wildcard include/*.h src/*.h)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -o $@ tests/test_python.c $(SRCS) $(LDLIBS) -lpthread

python-check: python $(BUILD)/test_python ## the python plugin and modules' tests (numpy model, SkyReels mapping)
	@$(PYTHON) -c 'import numpy, torch, diffusers' 2>/dev/null || { echo "make python-check: numpy, torch or diffusers missing for $(PYTHON); run \"make venv\"" >&2; exit 1; }
	cd python && $(PYTHON) -m unittest discover -s tests -t . -v 2>&1
	$(abspath $(BUILD))/test_python $(abspath $(BUILD)) $(CURDIR)/python
