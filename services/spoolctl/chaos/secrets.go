package chaos

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/spoolvideo/spool/libs/bus"
	"github.com/spoolvideo/spool/libs/devstack"
)

// secrets are the credentials the run generated, by name: every NATS
// user's password and each service's MinIO secret key. None may appear in
// anything a user or an operator reads. (MinIO's root key is the dev
// stack's published default, SPOOL_S3_SECRET_KEY's, which -h shows; no
// service runs with it.)
func (r *rig) secrets() (map[string]string, error) {
	s := map[string]string{"nats admin password": r.nats.NATSConfig().Password.Reveal()}
	for _, role := range bus.Roles {
		if role == bus.RoleAdmin {
			continue
		}
		c, err := r.nats.NATSUser(role, pool, "")
		if err != nil {
			return nil, err
		}
		s["nats "+c.User+" password"] = c.Password.Reveal()
	}
	for _, svc := range devstack.S3Services {
		_, secret, err := r.stack.S3User(svc)
		if err != nil {
			return nil, err
		}
		s["S3 secret key of "+svc] = secret
	}
	for _, kv := range r.fleet.common { // the gateway's admin API key and URL signing key
		if k, v, _ := strings.Cut(kv, "="); k == "SPOOL_GATEWAY_ADMIN_KEY" || k == "SPOOL_GATEWAY_URL_KEY" {
			s[k] = v
		}
	}
	for k, v := range r.extraSecrets {
		s[k] = v
	}
	return s, nil
}

// checkSecrets: no credential of the run (secrets) appears in any
// process's log, in any binary's -h run with the service's environment,
// in the /metrics of any running service, or in what the gateway answers:
// the dashboard, the OpenAPI document, status and listings, an error.
func (r *rig) checkSecrets(ctx context.Context, jobs []*job) Check {
	secrets, err := r.secrets()
	if err != nil {
		return verdict("no secret in any output", "", []string{err.Error()})
	}
	var problems, read []string
	scan := func(where string, b []byte) {
		read = append(read, where)
		for name, v := range secrets {
			if len(v) >= 8 && bytes.Contains(b, []byte(v)) {
				problems = append(problems, fmt.Sprintf("the %s in %s", name, where))
			}
		}
	}
	logs, _ := filepath.Glob(filepath.Join(r.dir, "logs", "*.log"))
	for _, f := range logs {
		if b, err := os.ReadFile(f); err == nil {
			scan(filepath.Base(f), b)
		}
	}
	f := r.fleet
	for _, role := range []role{roleDispatcher, roleStitcher, roleGateway, roleWorker} {
		user, err := r.nats.NATSUser(bus.Role(role), pool, "")
		if err != nil {
			problems = append(problems, err.Error())
			continue
		}
		cmd := exec.CommandContext(ctx, filepath.Join(f.o.Bin, "spool-"+string(role)), "-h")
		cmd.Env = append(slices.Clone(f.common), "SPOOL_NATS_USER="+user.User, "SPOOL_NATS_PASSWORD="+user.Password.Reveal())
		out, _ := cmd.CombinedOutput()
		scan("spool-"+string(role)+" -h", out)
	}
	client := &http.Client{Timeout: 10 * time.Second}
	get := func(where, method, url, body string) {
		req, err := http.NewRequestWithContext(ctx, method, url, strings.NewReader(body))
		if err != nil {
			return
		}
		req.Header.Set("Authorization", "Bearer "+r.fleet.key)
		resp, err := client.Do(req)
		if err != nil {
			problems = append(problems, fmt.Sprintf("%s: %v", where, err))
			return
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		scan(where, b)
	}
	for _, ro := range []role{roleDispatcher, roleStitcher, roleGateway, roleWorker} {
		for _, m := range f.live(ro, false) {
			get(m.name+" /metrics", http.MethodGet, "http://"+m.metrics+"/metrics", "")
		}
	}
	paths := []string{"/", "/ui/app.js", "/openapi.yaml", "/jobs", "/models/info"}
	if len(jobs) > 0 {
		paths = append(paths, "/status/"+jobs[0].ID, "/jobs/"+jobs[0].ID+"/lineage")
	}
	for _, p := range paths {
		get("GET "+p, http.MethodGet, f.gateway+p, "")
	}
	get("an error of POST /generate", http.MethodPost, f.gateway+"/generate", `{"prompt": 7}`)
	return verdict("no secret in any output", fmt.Sprintf("%d secrets, none in %d outputs (logs, -h, /metrics, the API and dashboard)",
		len(secrets), len(read)), problems)
}
