//go:build !asan

package infer_test

const asan = false
