package worker

import (
	"errors"

	"go.opentelemetry.io/otel/metric"
)

// Option configures a Worker beyond its environment.
type Option func(*Worker) error

// WithMeterProvider sets where the worker's metrics go; by default, the
// global provider that telemetry.Setup installs.
func WithMeterProvider(mp metric.MeterProvider) Option {
	return func(w *Worker) error {
		if mp == nil {
			return errors.New("worker: nil meter provider")
		}
		w.meterProvider = mp
		return nil
	}
}
