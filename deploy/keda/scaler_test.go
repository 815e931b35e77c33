// Package keda_test runs KEDA's own nats-jetstream scaler (the code the
// chart's ScaledObjects run in the KEDA operator) against real NATS
// servers holding spool's streams and pool consumers: a three-server
// JetStream cluster clustered as the official NATS chart clusters its pods,
// the same with advertised client URLs, and a single server. It checks the
// figure the chart's lagThreshold divides (README: "How scaling works"),
// what a pool without a consumer gets, and that the figure comes from the
// consumer's leader wherever that is.
package keda_test

import (
	"context"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/kedacore/keda/v2/pkg/scalers"
	"github.com/kedacore/keda/v2/pkg/scalers/scalersconfig"
	"github.com/nats-io/nats.go/jetstream"
	v2 "k8s.io/api/autoscaling/v2"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/yaml"

	"github.com/spoolvideo/spool/libs/bus"
)

// scalerHTTPTimeout is the scaler's HTTP timeout (ScalerConfig's
// GlobalHTTPTimeout). The KEDA operator's default is 3 s
// (KEDA_HTTP_DEFAULT_TIMEOUT); a loaded test machine gets more.
const scalerHTTPTimeout = 10 * time.Second

// lagThreshold is the pools' lagThreshold in these tests.
const lagThreshold = 2

func TestMain(m *testing.M) {
	// KEDA logs through controller-runtime's logger, which complains when
	// never set; the scaler's errors are returned, and checked, anyway.
	logf.SetLogger(logr.Discard())
	// The scaler's HTTP transport honours the environment's proxy; the
	// servers are on the loopback interface.
	os.Setenv("NO_PROXY", "*")
	os.Setenv("no_proxy", "*")
	os.Exit(m.Run())
}

// chart holds the chart's default values that the ScaledObject's trigger
// takes (deploy/helm/spool/templates/worker-scaledobject.yaml).
type chart struct {
	NATS struct {
		MonitoringEndpoint string `json:"monitoringEndpoint"`
		MonitoringUseHTTPS bool   `json:"monitoringUseHttps"`
		Account            string `json:"account"`
	} `json:"nats"`
	Worker struct {
		KEDA struct {
			ActivationLagThreshold int `json:"activationLagThreshold"`
		} `json:"keda"`
	} `json:"worker"`
}

func chartValues(t *testing.T) chart {
	t.Helper()
	data, err := os.ReadFile("../helm/spool/values.yaml")
	if err != nil {
		t.Fatalf("the chart's values: %v", err)
	}
	var c chart
	if err := yaml.Unmarshal(data, &c); err != nil {
		t.Fatalf("the chart's values: %v", err)
	}
	return c
}

// trigger is the metadata the chart renders for pool's trigger, with the
// chart's monitoring host on port monPort (the test's servers cannot all
// take 8222).
func (c chart) trigger(t *testing.T, host string, monPort int, pool string) map[string]string {
	t.Helper()
	consumer, err := bus.PoolConsumer(pool)
	if err != nil {
		t.Fatal(err)
	}
	return map[string]string{
		"natsServerMonitoringEndpoint": net.JoinHostPort(host, strconv.Itoa(monPort)),
		"useHttps":                     strconv.FormatBool(c.NATS.MonitoringUseHTTPS),
		"account":                      c.NATS.Account,
		"stream":                       bus.StreamSegments,
		"consumer":                     consumer,
		"lagThreshold":                 strconv.Itoa(lagThreshold),
		"activationLagThreshold":       strconv.Itoa(c.Worker.KEDA.ActivationLagThreshold),
	}
}

// monitoringHost is the host of the chart's nats.monitoringEndpoint.
func (c chart) monitoringHost(t *testing.T) string {
	t.Helper()
	host, _, err := net.SplitHostPort(c.NATS.MonitoringEndpoint)
	if err != nil {
		t.Fatalf("nats.monitoringEndpoint %q: %v", c.NATS.MonitoringEndpoint, err)
	}
	return host
}

// newScaler builds KEDA's nats-jetstream scaler as the operator does for
// the trigger of ScaledObject video-spool-worker-<pool>.
func newScaler(t *testing.T, metadata map[string]string) scalers.Scaler {
	t.Helper()
	name := "video-spool-worker-" + metadata["consumer"]
	s, err := scalers.NewNATSJetStreamScaler(&scalersconfig.ScalerConfig{
		ScalableObjectName:      name,
		ScalableObjectNamespace: "spool",
		ScalableObjectType:      "ScaledObject",
		TriggerType:             "nats-jetstream",
		TriggerMetadata:         metadata,
		ResolvedEnv:             map[string]string{},
		AuthParams:              map[string]string{},
		GlobalHTTPTimeout:       scalerHTTPTimeout,
		TriggerUniqueKey:        "ScaledObject-spool-" + name + "-0",
	})
	if err != nil {
		t.Fatalf("new nats-jetstream scaler: %v", err)
	}
	t.Cleanup(func() { s.Close(context.Background()) })
	return s
}

// reading is what one polling of the scaler gives KEDA.
type reading struct {
	lag    int64 // the metric's value
	active bool
	err    error
}

// read asks the scaler for its metric as KEDA's polling loop and metrics
// adapter do, by the metric name of its own spec.
func read(t *testing.T, s scalers.Scaler) reading {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 3*scalerHTTPTimeout)
	defer cancel()
	specs := s.GetMetricSpecForScaling(ctx)
	if len(specs) != 1 || specs[0].External == nil {
		t.Fatalf("metric specs %+v, want one external metric", specs)
	}
	values, active, err := s.GetMetricsAndActivity(ctx, specs[0].External.Metric.Name)
	if err != nil {
		if len(values) != 0 || active {
			t.Errorf("an error with %d values and active=%v", len(values), active)
		}
		return reading{err: err}
	}
	if len(values) != 1 {
		t.Fatalf("%d metric values, want 1", len(values))
	}
	milli := values[0].Value.MilliValue()
	if milli%1000 != 0 {
		t.Fatalf("metric %v is not a whole number of tasks", values[0].Value.String())
	}
	return reading{lag: milli / 1000, active: active}
}

// wantReading fails unless the scaler reports lag and, by the chart's
// activationLagThreshold of 0, is active exactly when lag > 0.
func wantReading(t *testing.T, s scalers.Scaler, lag int64) {
	t.Helper()
	got := read(t, s)
	if got.err != nil {
		t.Fatalf("KEDA's scaler: %v; want lag %d", got.err, lag)
	}
	if got.lag != lag || got.active != (lag > 0) {
		t.Fatalf("KEDA's scaler reports lag %d, active %v; want %d, %v", got.lag, got.active, lag, lag > 0)
	}
}

// wantError fails unless the scaler reports an error whose text holds want,
// and no metric (KEDA then neither activates nor scales the pool).
func wantError(t *testing.T, s scalers.Scaler, want string) {
	t.Helper()
	got := read(t, s)
	if got.err == nil {
		t.Fatalf("KEDA's scaler reports lag %d, active %v; want the error %q", got.lag, got.active, want)
	}
	if !strings.Contains(got.err.Error(), want) {
		t.Fatalf("KEDA's scaler: %v; want an error holding %q", got.err, want)
	}
}

// wantLag waits until JetStream counts pending undelivered and ackPending
// delivered but unacknowledged tasks on cons, so that a reading has one
// right answer, and then fails unless KEDA's scaler reports their sum.
func wantLag(t *testing.T, s scalers.Scaler, cons jetstream.Consumer, pending uint64, ackPending int) {
	t.Helper()
	want := state{pending: pending, ackPending: ackPending}
	deadline := time.Now().Add(clusterReadyTimeout)
	for got := consumerState(t, cons); got != want; got = consumerState(t, cons) {
		if time.Now().After(deadline) {
			t.Fatalf("JetStream counts %+v on %s, want %+v", got, cons.CachedInfo().Name, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
	wantReading(t, s, int64(pending)+int64(ackPending))
}

// checkMetricSpec checks the target KEDA hands the HPA: an external metric
// whose AverageValue is lagThreshold, so that the HPA aims at
// ceil(lag / lagThreshold) replicas.
func checkMetricSpec(t *testing.T, s scalers.Scaler) {
	t.Helper()
	specs := s.GetMetricSpecForScaling(t.Context())
	if len(specs) != 1 || specs[0].Type != v2.ExternalMetricSourceType || specs[0].External == nil {
		t.Fatalf("metric specs %+v, want one external metric", specs)
	}
	target := specs[0].External.Target
	if target.Type != v2.AverageValueMetricType || target.AverageValue == nil || target.AverageValue.Value() != lagThreshold {
		t.Fatalf("metric target %+v, want AverageValue %d", target, lagThreshold)
	}
}
