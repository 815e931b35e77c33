/* Compiles src/engine.c into the cgo package (cgo builds only top-level .c files). */
#include "c_sources.h" /* the hash of all C sources: see the Makefile */
#include "src/engine.c"
