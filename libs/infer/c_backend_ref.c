/* Compiles backends/ref/ref.c into the cgo package. */
#include "backends/ref/ref.c"
