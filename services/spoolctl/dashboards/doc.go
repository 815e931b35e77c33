// Package dashboards holds the test that keeps deploy/grafana honest: it
// runs the system with a Prometheus endpoint, scrapes it, and checks that
// every metric each dashboard panel queries is one the code exports.
package dashboards
