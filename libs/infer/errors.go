package infer

/*
#include "spool_infer.h"
*/
import "C"

import (
	"errors"
	"fmt"
)

// Errors of the library, one per status code; use errors.Is.
var (
	ErrInvalidRequest  = errors.New("invalid request")
	ErrBackendNotFound = errors.New("backend not found")
	ErrABIMismatch     = errors.New("ABI mismatch")
	ErrCancelled       = errors.New("cancelled")
	ErrAborted         = errors.New("aborted by the sink")
	ErrOutOfMemory     = errors.New("out of memory")
	ErrDevice          = errors.New("device error")
	ErrBackend         = errors.New("backend error")
	ErrInternal        = errors.New("internal error")
	ErrClosed          = errors.New("engine closed")
)

func statusErr(st C.spool_status, msg string) error {
	var base error
	switch st {
	case C.SPOOL_OK:
		return nil
	case C.SPOOL_ERR_INVALID_ARGUMENT:
		base = ErrInvalidRequest
	case C.SPOOL_ERR_BACKEND_NOT_FOUND:
		base = ErrBackendNotFound
	case C.SPOOL_ERR_ABI_MISMATCH:
		base = ErrABIMismatch
	case C.SPOOL_ERR_CANCELLED:
		base = ErrCancelled
	case C.SPOOL_ERR_ABORTED:
		base = ErrAborted
	case C.SPOOL_ERR_OUT_OF_MEMORY:
		base = ErrOutOfMemory
	case C.SPOOL_ERR_DEVICE:
		base = ErrDevice
	case C.SPOOL_ERR_BACKEND:
		base = ErrBackend
	default:
		base = ErrInternal
	}
	if msg == "" {
		return fmt.Errorf("infer: %w", base)
	}
	return fmt.Errorf("infer: %w: %s", base, msg)
}
