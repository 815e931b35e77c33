// A stand-in for go.opentelemetry.io/collector/internal/statusutil, whose
// zips the Go module proxy does not serve (403) for any version. The
// collector builder's manifest (../builder.yaml) replaces the module with
// this directory. It is spool's own code: the two functions the OTLP
// receiver calls, written to the OTLP/HTTP specification.
module go.opentelemetry.io/collector/internal/statusutil

go 1.26.0

require (
	google.golang.org/genproto/googleapis/rpc v0.0.0-20260706201446-f0a921348800
	google.golang.org/grpc v1.84.0
	google.golang.org/protobuf v1.36.11
)

require golang.org/x/sys v0.47.0 // indirect
