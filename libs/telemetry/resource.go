package telemetry

import (
	"context"
	"errors"
	"fmt"

	"go.opentelemetry.io/otel/sdk/resource"
	semconv "go.opentelemetry.io/otel/semconv/v1.37.0"
)

// newResource describes the process: service.name (OTEL_SERVICE_NAME wins
// over serviceName), service.version, OTEL_RESOURCE_ATTRIBUTES, host and
// process.
func newResource(ctx context.Context, serviceName, version string) (*resource.Resource, error) {
	attrs := []resource.Option{resource.WithAttributes(semconv.ServiceName(serviceName))}
	if version != "" {
		attrs = append(attrs, resource.WithAttributes(semconv.ServiceVersion(version)))
	}
	attrs = append(attrs,
		resource.WithFromEnv(), // later options win: the environment overrides the arguments
		resource.WithTelemetrySDK(),
		resource.WithHost(),
		resource.WithProcessPID(),
		resource.WithProcessExecutableName(),
		resource.WithProcessRuntimeName(),
		resource.WithProcessRuntimeVersion(),
	)
	res, err := resource.New(ctx, attrs...)
	if err != nil && !(errors.Is(err, resource.ErrPartialResource) && res != nil) {
		return nil, fmt.Errorf("telemetry: resource: %w", err)
	}
	return res, nil
}
