/* Compiles backends/ref/pool.c into the cgo package (cgo builds only top-level .c files). */
#include "backends/ref/pool.c"
