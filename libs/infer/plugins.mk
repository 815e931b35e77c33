# Plugins built against system libraries: included by libs/infer/Makefile,
# and usable on its own: make -C libs/infer -f plugins.mk python python-check.
# The defaults below are the Makefile's, for the standalone case (when
# included, the Makefile's own values win).
BUILD         ?= build
CC            ?= gcc
CFLAGS        ?= -O2 -g -std=c11 -Wall -Wextra -Wno-missing-field-initializers -Werror -fvisibility=hidden -Iinclude -Isrc
LDLIBS        ?= -ldl -lm
SRCS          ?= src/engine.c src/validate.c src/tailstate.c backends/ref/ref.c backends/sim/sim.c
PYTHON        ?= /usr/bin/python3
PYTHON_CONFIG ?= $(PYTHON)-config
PY_SONAME      = $(shell $(PYTHON) -c 'import sysconfig; print(sysconfig.get_config_var("INSTSONAME"))' 2>/dev/null)

.PHONY: python python-check

python: $(BUILD)/libspool_infer_python.so ## build the python plugin (Debian's python3-dev)
$(BUILD)/libspool_infer_python.so: backends/python/python.c src/tailstate.c src/validate.c $(wildcard include/*.h src/*.h)
	@mkdir -p $(@D)
	@[ -x $(PYTHON_CONFIG) ] || { echo "make python: $(PYTHON_CONFIG) not found; run \"make deps\" or \"apt-get install -y python3-dev\"" >&2; exit 1; }
	$(CC) -std=c11 -O2 -g -Wall -Wextra -Wno-missing-field-initializers -fPIC -shared -fvisibility=hidden \
	  -Iinclude -Isrc $$($(PYTHON_CONFIG) --includes) -DSPOOL_LIBPYTHON='"$(PY_SONAME)"' \
	  -o $@ backends/python/python.c src/tailstate.c src/validate.c $$($(PYTHON_CONFIG) --embed --ldflags) -lpthread

# The plugin through the engine, as a worker loads it (tests/test_python.c):
# chain, determinism, two engines at once, tracebacks, protocol, cancel.
$(BUILD)/test_python: tests/test_python.c $(SRCS) $(wildcard include/*.h src/*.h)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -o $@ tests/test_python.c $(SRCS) $(LDLIBS) -lpthread

python-check: python $(BUILD)/test_python ## the python plugin and modules' tests (numpy model, SkyReels mapping)
	@$(PYTHON) -c 'import numpy' 2>/dev/null || { echo "make python-check: numpy missing for $(PYTHON); run \"make deps\" or \"apt-get install -y python3-numpy\"" >&2; exit 1; }
	cd python && $(PYTHON) -m unittest discover -s tests -t . -v 2>&1
	$(abspath $(BUILD))/test_python $(abspath $(BUILD)) $(CURDIR)/python
