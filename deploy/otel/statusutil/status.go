// Package statusutil turns HTTP failures into gRPC statuses for the OTLP
// receiver's HTTP server, and reads a status's retry advice.
package statusutil

import (
	"net/http"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// NewStatusFromMsgAndHTTPCode is a status with msg and the gRPC code that
// the OTLP/HTTP specification pairs with the HTTP status code.
func NewStatusFromMsgAndHTTPCode(msg string, httpCode int) *status.Status {
	return status.New(codeOf(httpCode), msg)
}

func codeOf(httpCode int) codes.Code {
	switch httpCode {
	case http.StatusBadRequest:
		return codes.InvalidArgument
	case http.StatusUnauthorized:
		return codes.Unauthenticated
	case http.StatusForbidden:
		return codes.PermissionDenied
	case http.StatusNotFound:
		return codes.NotFound
	case http.StatusRequestEntityTooLarge:
		return codes.ResourceExhausted
	case http.StatusTooManyRequests, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return codes.Unavailable
	case http.StatusNotImplemented:
		return codes.Unimplemented
	}
	if httpCode >= 200 && httpCode < 300 {
		return codes.OK
	}
	return codes.Unknown
}

// GetRetryInfo is the RetryInfo detail of st, or nil when it has none.
func GetRetryInfo(st *status.Status) *errdetails.RetryInfo {
	for _, d := range st.Details() {
		if ri, ok := d.(*errdetails.RetryInfo); ok {
			return ri
		}
	}
	return nil
}
