# Plugins built against system libraries: included by libs/infer/Makefile.
PYTHON        ?= /usr/bin/python3
PYTHON_CONFIG ?= $(PYTHON)-config
PY_SONAME      = $(shell $(PYTHON) -c 'import sysconfig; print(sysconfig.get_config_var("INSTSONAME"))' 2>/dev/null)

.PHONY: python python-check

python: $(BUILD)/libspool_infer_python.so ## build the python plugin (Debian's python3-dev)
$(BUILD)/libspool_infer_python.so: backends/python/python.c src/tailstate.c src/validate.c $(wildcard include/*.h src/*.h) | $(BUILD)
	@[ -x $(PYTHON_CONFIG) ] || { echo "make python: $(PYTHON_CONFIG) not found; run \"make deps\" or \"apt-get install -y python3-dev\"" >&2; exit 1; }
	$(CC) -std=c11 -O2 -g -Wall -Wextra -Wno-missing-field-initializers -fPIC -shared -fvisibility=hidden \
	  -Iinclude -Isrc $$($(PYTHON_CONFIG) --includes) -DSPOOL_LIBPYTHON='"$(PY_SONAME)"' \
	  -o $@ backends/python/python.c src/tailstate.c src/validate.c $$($(PYTHON_CONFIG) --embed --ldflags) -lpthread

python-check: python ## the python modules' own tests (numpy model, SkyReels argument mapping)
	@$(PYTHON) -c 'import numpy' 2>/dev/null || { echo "make python-check: numpy missing; run \"make deps\" or \"apt-get install -y python3-numpy\"" >&2; exit 1; }
	cd python && $(PYTHON) -m unittest discover -s tests -t . -v 2>&1
