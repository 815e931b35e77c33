package docker_test

import (
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

func readYAML(t *testing.T, name string, v any) {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
}

// Prometheus scrapes every spool service's :9464 by the compose service
// names, and takes the collector's OTLP push on its OTLP receiver.
func TestPrometheusScrapesTheStack(t *testing.T) {
	var cfg struct {
		ScrapeConfigs []struct {
			JobName       string `yaml:"job_name"`
			StaticConfigs []struct {
				Targets []string `yaml:"targets"`
			} `yaml:"static_configs"`
			DNSSDConfigs []struct {
				Names []string `yaml:"names"`
				Type  string   `yaml:"type"`
				Port  int      `yaml:"port"`
			} `yaml:"dns_sd_configs"`
		} `yaml:"scrape_configs"`
	}
	readYAML(t, "prometheus.yml", &cfg)
	p := loadCompose(t, "*")
	scraped := map[string]bool{} // host:port
	for _, sc := range cfg.ScrapeConfigs {
		for _, s := range sc.StaticConfigs {
			for _, target := range s.Targets {
				scraped[target] = true
			}
		}
		for _, d := range sc.DNSSDConfigs {
			if d.Type != "A" {
				t.Errorf("job %s: dns_sd type %q, want A (compose DNS)", sc.JobName, d.Type)
			}
			for _, n := range d.Names {
				scraped[net.JoinHostPort(n, strconv.Itoa(d.Port))] = true
			}
		}
	}
	var want []string
	for _, im := range images {
		want = append(want, im.Service+":9464")
	}
	want = append(want, "worker-cpu:9464")
	for _, w := range want {
		if !scraped[w] {
			t.Errorf("prometheus.yml does not scrape %s", w)
		}
	}
	if prom, ok := p.Services["prometheus"]; !ok || !slices.Contains(prom.Command, "--web.enable-otlp-receiver") {
		t.Error("the prometheus service does not enable its OTLP receiver, where the collector pushes metrics")
	}
	collector, err := os.ReadFile("../deploy/otel/collector.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(collector), "http://prometheus:9090/api/v1/otlp/v1/metrics") {
		t.Error("deploy/otel/collector.yaml does not push metrics to prometheus:9090's OTLP receiver")
	}
	for target := range scraped {
		host, _, err := net.SplitHostPort(target)
		if err != nil {
			t.Errorf("target %q: %v", target, err)
			continue
		}
		if _, ok := p.Services[host]; !ok && host != "localhost" {
			t.Errorf("prometheus.yml scrapes %s, which is no compose service", target)
		}
	}
}

// Tempo receives OTLP on the port the collector exports to (tempo:4317)
// and serves its API on the port Grafana's data source names.
func TestTempoConfig(t *testing.T) {
	var cfg struct {
		Server struct {
			HTTPListenPort int `yaml:"http_listen_port"`
		} `yaml:"server"`
		Distributor struct {
			Receivers struct {
				OTLP struct {
					Protocols struct {
						GRPC struct {
							Endpoint string `yaml:"endpoint"`
						} `yaml:"grpc"`
					} `yaml:"protocols"`
				} `yaml:"otlp"`
			} `yaml:"receivers"`
		} `yaml:"distributor"`
		Storage struct {
			Trace struct {
				Backend string `yaml:"backend"`
			} `yaml:"trace"`
		} `yaml:"storage"`
	}
	readYAML(t, "tempo.yaml", &cfg)
	if got := cfg.Distributor.Receivers.OTLP.Protocols.GRPC.Endpoint; got != "0.0.0.0:4317" {
		t.Errorf("tempo OTLP gRPC receiver on %q, want 0.0.0.0:4317", got)
	}
	if cfg.Server.HTTPListenPort != 3200 {
		t.Errorf("tempo http_listen_port %d, want 3200", cfg.Server.HTTPListenPort)
	}
	if cfg.Storage.Trace.Backend != "local" {
		t.Errorf("tempo storage backend %q, want local", cfg.Storage.Trace.Backend)
	}
	// The collector's trace exporter points at the tempo service.
	collector, err := os.ReadFile("../deploy/otel/collector.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(collector), "tempo:4317") {
		t.Error("deploy/otel/collector.yaml does not export traces to tempo:4317")
	}
}

// Grafana gets a Prometheus and a Tempo data source at the compose
// services' addresses, and loads the mounted dashboards.
func TestGrafanaProvisioning(t *testing.T) {
	var ds struct {
		Datasources []struct {
			Name, UID, Type, URL string
			IsDefault            bool `yaml:"isDefault"`
		} `yaml:"datasources"`
	}
	readYAML(t, "grafana/provisioning/datasources/spool.yaml", &ds)
	urls := map[string]string{}
	for _, d := range ds.Datasources {
		urls[d.Type] = d.URL
	}
	for typ, want := range map[string]string{"prometheus": "http://prometheus:9090", "tempo": "http://tempo:3200"} {
		if urls[typ] != want {
			t.Errorf("%s data source at %q, want %q", typ, urls[typ], want)
		}
	}
	var dash struct {
		Providers []struct {
			Type    string `yaml:"type"`
			Options struct {
				Path string `yaml:"path"`
			} `yaml:"options"`
		} `yaml:"providers"`
	}
	readYAML(t, "grafana/provisioning/dashboards/spool.yaml", &dash)
	if len(dash.Providers) != 1 || dash.Providers[0].Type != "file" {
		t.Fatalf("dashboard providers %+v, want one of type file", dash.Providers)
	}
	mounted := false
	for _, v := range loadCompose(t).Services["grafana"].Volumes {
		if v.Target == dash.Providers[0].Options.Path && strings.HasSuffix(v.Source, "/deploy/grafana") {
			mounted = true
		}
	}
	if !mounted {
		t.Errorf("grafana does not mount deploy/grafana at the provider's path %s", dash.Providers[0].Options.Path)
	}
	dashboards, _ := os.ReadDir("../deploy/grafana")
	if !slices.ContainsFunc(dashboards, func(e os.DirEntry) bool { return strings.HasSuffix(e.Name(), ".json") }) {
		t.Error("deploy/grafana holds no dashboard (.json)")
	}
}
