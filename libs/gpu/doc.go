// Package gpu finds a worker's GPUs through NVML (go-nvml) and reads their
// utilisation, memory, temperature and power.
//
// "No NVML library" is an ordinary answer, not an error: Open succeeds,
// Available reports false and GPUs is empty, and the worker runs CPU slots.
// Which devices a process may use follows SPOOL_WORKER_GPUS, else
// CUDA_VISIBLE_DEVICES, with CUDA's syntax: a comma-separated list of
// indices or UUIDs (a UUID prefix is enough); set but empty means none.
package gpu
