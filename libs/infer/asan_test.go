//go:build asan

package infer_test

// asan: built with -asan, where the Go allocator is instrumented and
// allocation counts mean nothing.
const asan = true
