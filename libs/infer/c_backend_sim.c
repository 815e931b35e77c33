/* Compiles backends/sim/sim.c into the cgo package. */
#include "backends/sim/sim.c"
