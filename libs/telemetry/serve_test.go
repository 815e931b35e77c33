package telemetry_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/spoolvideo/spool/libs/telemetry"
)

// TestServeMetrics: a counter recorded through the meter provider is
// served in the Prometheus text format at /metrics.
func TestServeMetrics(t *testing.T) {
	ctx := context.Background()
	tel, err := telemetry.Setup(ctx, "metrics-test", telemetry.WithPrometheus())
	if err != nil {
		t.Fatal(err)
	}
	defer tel.Shutdown(ctx)
	c, err := tel.Meter("test").Int64Counter("spool.test.things")
	if err != nil {
		t.Fatal(err)
	}
	c.Add(ctx, 3)
	srv, err := telemetry.ServeMetrics("127.0.0.1:0", tel.MetricsHandler())
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	resp, err := http.Get("http://" + srv.Addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), "spool_test_things_total 3") {
		t.Fatalf("/metrics %d:\n%.600s", resp.StatusCode, body)
	}
	if _, err := telemetry.ServeMetrics(srv.Addr, tel.MetricsHandler()); err == nil {
		t.Fatal("a second endpoint on a taken address started")
	}
}
