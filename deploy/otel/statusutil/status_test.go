package statusutil

import (
	"net/http"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
)

func TestStatusFromHTTPCode(t *testing.T) {
	for code, want := range map[int]codes.Code{
		http.StatusBadRequest: codes.InvalidArgument, http.StatusTooManyRequests: codes.Unavailable,
		http.StatusServiceUnavailable: codes.Unavailable, http.StatusRequestEntityTooLarge: codes.ResourceExhausted,
		http.StatusOK: codes.OK, http.StatusTeapot: codes.Unknown,
	} {
		if st := NewStatusFromMsgAndHTTPCode("m", code); st.Code() != want || st.Message() != "m" {
			t.Errorf("HTTP %d: %v %q, want %v", code, st.Code(), st.Message(), want)
		}
	}
}

func TestGetRetryInfo(t *testing.T) {
	st, err := status.New(codes.Unavailable, "busy").WithDetails(&errdetails.RetryInfo{RetryDelay: durationpb.New(3 * time.Second)})
	if err != nil {
		t.Fatal(err)
	}
	if ri := GetRetryInfo(st); ri == nil || ri.GetRetryDelay().AsDuration() != 3*time.Second {
		t.Fatalf("retry info %v", ri)
	}
	if GetRetryInfo(status.New(codes.Unavailable, "busy")) != nil {
		t.Fatal("retry info from a status without one")
	}
}
