/* Compiles src/engine.c into the cgo package (cgo builds only top-level .c files). */
#include "src/engine.c"
