/* Compiles src/tailstate.c into the cgo package (cgo builds only top-level .c files). */
#include "src/tailstate.c"
