/* Compiles src/validate.c into the cgo package (cgo builds only top-level .c files). */
#include "src/validate.c"
