package helm_test

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"golang.org/x/crypto/bcrypt"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/engine"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/dynamic/fake"
)

const (
	serverSecret   = "video-spool-nats-server-auth"
	passwordDir    = "/etc/spool/nats-auth"
	permissionFile = "spool/files/nats-permissions.json"
)

// permissionsFile is files/nats-permissions.json, the allow-lists of
// libs/bus by role ({pool} for a worker's pool).
type permissionsFile struct {
	Roles map[string]struct {
		Publish        []string `json:"publish"`
		Subscribe      []string `json:"subscribe"`
		AllowResponses bool     `json:"allow_responses"`
	} `json:"roles"`
}

// wantUser is a user the server must have.
type wantUser struct {
	publish, subscribe []string
	responses          bool
}

// wantUsers are the users files/nats-permissions.json makes for pools:
// one per role, a worker's per pool with {pool} replaced.
func wantUsers(t *testing.T, pools []string) map[string]wantUser {
	t.Helper()
	b, err := os.ReadFile(permissionFile)
	if err != nil {
		t.Fatal(err)
	}
	var f permissionsFile
	if err := json.Unmarshal(b, &f); err != nil {
		t.Fatal(err)
	}
	if len(f.Roles) < 6 {
		t.Fatalf("%s holds %d roles", permissionFile, len(f.Roles))
	}
	users := map[string]wantUser{}
	for role, p := range f.Roles {
		if role != "worker" {
			users[role] = wantUser{p.Publish, p.Subscribe, p.AllowResponses}
			continue
		}
		for _, pool := range pools {
			sub := func(s []string) []string {
				out := make([]string, len(s))
				for i, v := range s {
					out[i] = strings.ReplaceAll(v, "{pool}", pool)
				}
				return out
			}
			users["worker@"+pool] = wantUser{sub(p.Publish), sub(p.Subscribe), p.AllowResponses}
		}
	}
	return users
}

// userSecret is the name of user's password Secret.
func userSecret(user string) string {
	return "video-spool-nats-" + strings.ReplaceAll(user, "@", "-")
}

// chartInclude is the official NATS chart's rendering of a `$include` key
// in config.merge (its nats.formatConfig): the JSON entry becomes an
// include directive.
var chartInclude = regexp.MustCompile(`".*\$include": "(.*)",?`)

// serverOptions parses the rendered block as a NATS server of the official
// chart reads it: its nats.conf in /etc/nats-config, with the README's
// `config.merge: {00$include: ../spool-nats-auth/auth.conf}`, and the
// Secret mounted at /etc/spool-nats-auth.
func serverOptions(t *testing.T, authConf string) *server.Options {
	t.Helper()
	root := t.TempDir()
	for _, d := range []string{"etc/nats-config", "etc/spool-nats-auth"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(root, "etc/spool-nats-auth/auth.conf"), []byte(authConf), 0o600); err != nil {
		t.Fatal(err)
	}
	conf := "{\n  \"00$include\": \"../spool-nats-auth/auth.conf\",\n  \"port\": 4222,\n  \"server_name\": \"nats-0\"\n}\n"
	conf = chartInclude.ReplaceAllString(conf, "include ${1};")
	file := filepath.Join(root, "etc/nats-config/nats.conf")
	if err := os.WriteFile(file, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	opts, err := server.ProcessConfigFile(file)
	if err != nil {
		t.Fatalf("nats-server refuses the rendered block: %v\n%s", err, authConf)
	}
	return opts
}

// passwords are the users' passwords from their rendered Secrets.
func passwords(t *testing.T, m *manifests, users map[string]wantUser) map[string]string {
	t.Helper()
	pw := map[string]string{}
	for user := range users {
		s := m.secrets[userSecret(user)]
		if s == nil {
			t.Fatalf("no Secret %s for NATS user %s", userSecret(user), user)
		}
		if s.StringData["user"] != user || len(s.StringData["password"]) < 32 {
			t.Errorf("Secret %s: user %q, a password of %d characters; want %s and ≥ 32", s.Name, s.StringData["user"], len(s.StringData["password"]), user)
		}
		pw[user] = s.StringData["password"]
	}
	return pw
}

// TestNATSAuthUsers checks the server's authorization block, parsed by
// nats-server as the official chart includes it, against
// files/nats-permissions.json for every role and pool; that it holds
// bcrypt hashes of the passwords in the users' Secrets; that no password is
// anywhere but its own Secret; and that a server running it admits each
// user with its password and no one without.
func TestNATSAuthUsers(t *testing.T) {
	for _, tc := range []struct {
		name, values string
		pools        []string
	}{{"defaults", "", []string{"default"}}, {"two pools", twoPoolsFile, []string{"h100", "l40s"}}} {
		t.Run(tc.name, func(t *testing.T) {
			var vals map[string]any
			if tc.values != "" {
				vals = readValues(t, tc.values)
			}
			out, err := render(t, vals)
			if err != nil {
				t.Fatal(err)
			}
			m, err := decode(out)
			if err != nil {
				t.Fatal(err)
			}
			want := wantUsers(t, tc.pools)
			pw := passwords(t, m, want)
			srv := m.secrets[serverSecret]
			if srv == nil || srv.Namespace != "nats" {
				t.Fatalf("server Secret %s in namespace nats: %+v", serverSecret, srv)
			}
			opts := serverOptions(t, srv.StringData["auth.conf"])
			got := map[string]*server.User{}
			for _, u := range opts.Users {
				got[u.Username] = u
			}
			if g, w := slices.Sorted(maps.Keys(got)), slices.Sorted(maps.Keys(want)); !slices.Equal(g, w) {
				t.Fatalf("server users %v, want %v", g, w)
			}
			for name, w := range want {
				u := got[name]
				p := u.Permissions
				if p == nil || p.Publish == nil || p.Subscribe == nil {
					t.Errorf("%s: no permissions", name)
					continue
				}
				if !slices.Equal(p.Publish.Allow, w.publish) || !slices.Equal(p.Subscribe.Allow, w.subscribe) || (p.Response != nil) != w.responses ||
					len(p.Publish.Deny) > 0 || len(p.Subscribe.Deny) > 0 {
					t.Errorf("%s: server permissions publish %v subscribe %v responses %v; want %v %v %v",
						name, p.Publish.Allow, p.Subscribe.Allow, p.Response != nil, w.publish, w.subscribe, w.responses)
				}
				if cost, err := bcrypt.Cost([]byte(u.Password)); err != nil || cost < bcrypt.DefaultCost {
					t.Errorf("%s: the server's password is no bcrypt hash of cost ≥ %d (%d, %v)", name, bcrypt.DefaultCost, cost, err)
				}
				if err := bcrypt.CompareHashAndPassword([]byte(u.Password), []byte(pw[name])); err != nil {
					t.Errorf("%s: the server's hash is not of the password in Secret %s: %v", name, userSecret(name), err)
				}
			}
			// A password appears once in the whole render: in its Secret.
			var all strings.Builder
			for _, f := range slices.Sorted(maps.Keys(out)) {
				all.WriteString(out[f])
			}
			for name, p := range pw {
				if n := strings.Count(all.String(), p); n != 1 {
					t.Errorf("%s's password appears %d times in the rendered chart, want once (its Secret)", name, n)
				}
				for _, cm := range m.configMaps {
					for k, v := range cm.Data {
						if strings.Contains(v, p) {
							t.Errorf("ConfigMap %s key %s holds %s's password", cm.Name, k, name)
						}
					}
				}
			}
			runServer(t, opts, pw)
		})
	}
}

// runServer starts a NATS server with opts and connects as each user.
func runServer(t *testing.T, opts *server.Options, pw map[string]string) {
	t.Helper()
	opts.Host, opts.Port, opts.NoLog, opts.NoSigs, opts.ServerName = "127.0.0.1", -1, true, true, ""
	s, err := server.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	go s.Start()
	t.Cleanup(s.Shutdown)
	if !s.ReadyForConnections(30 * time.Second) {
		t.Fatal("nats-server is not ready")
	}
	connect := func(opts ...nats.Option) error {
		nc, err := nats.Connect(s.ClientURL(), append(opts, nats.NoReconnect())...)
		if err == nil {
			nc.Close()
		}
		return err
	}
	for user, p := range pw {
		if err := connect(nats.UserInfo(user, p)); err != nil {
			t.Errorf("%s with its Secret's password: %v", user, err)
		}
		if err := connect(nats.UserInfo(user, p+"x")); err == nil {
			t.Errorf("%s with a wrong password: admitted", user)
		}
	}
	if err := connect(); err == nil {
		t.Error("a connection without credentials was admitted")
	}
}

// TestNATSDeploymentUsers checks that every Deployment connects as its
// own user with its own Secret's password, mounted read-only, that only
// the topology keeper is admin, that no pod mounts another user's Secret
// (the client's is for people), and that a rotated password rolls the
// user's pods.
func TestNATSDeploymentUsers(t *testing.T) {
	m := mustRender(t, readValues(t, twoPoolsFile))
	users := wantUsers(t, []string{"h100", "l40s"})
	pw := passwords(t, m, users)
	userSecrets := map[string]string{}
	for u := range users {
		userSecrets[userSecret(u)] = u
	}
	seen := map[string]string{}
	for name, d := range m.deployments {
		want := map[string]string{"dispatcher": "dispatcher", "stitcher": "stitcher", "gateway": "gateway", "nats-topology": "admin"}[serviceOf(d)]
		if p := d.Spec.Template.Labels["spool.video/pool"]; p != "" {
			want = "worker@" + p
		}
		if want == "" {
			t.Errorf("%s: a Deployment without a NATS user of its own; add it here", name)
			continue
		}
		c := container(t, d)
		plain, secret := envOf(c)
		if plain["SPOOL_NATS_USER"] != want {
			t.Errorf("%s: SPOOL_NATS_USER=%q, want %s", name, plain["SPOOL_NATS_USER"], want)
		}
		if want == "admin" && serviceOf(d) != "nats-topology" {
			t.Errorf("%s authenticates as admin", name)
		}
		if plain["SPOOL_NATS_PASSWORD_FILE"] != passwordDir+"/password" {
			t.Errorf("%s: SPOOL_NATS_PASSWORD_FILE=%q", name, plain["SPOOL_NATS_PASSWORD_FILE"])
		}
		for _, k := range []string{"SPOOL_NATS_PASSWORD", "SPOOL_NATS_CREDS"} {
			if _, ok := plain[k]; ok {
				t.Errorf("%s sets %s", name, k)
			}
			if _, ok := secret[k]; ok {
				t.Errorf("%s sets %s", name, k)
			}
		}
		if other, ok := seen[want]; ok {
			t.Errorf("%s and %s are both NATS user %s", name, other, want)
		}
		seen[want] = name
		var mounted []string
		for _, v := range d.Spec.Template.Spec.Volumes {
			if v.Secret == nil {
				continue
			}
			if u, ok := userSecrets[v.Secret.SecretName]; ok {
				mounted = append(mounted, u)
				if v.Name != "nats-password" || len(v.Secret.Items) != 1 || v.Secret.Items[0].Key != "password" || v.Secret.Items[0].Path != "password" {
					t.Errorf("%s: volume %s of Secret %s: %+v; want nats-password, key password only", name, v.Name, v.Secret.SecretName, v.Secret.Items)
				}
			}
			if v.Secret.SecretName == serverSecret {
				t.Errorf("%s mounts the server's Secret", name)
			}
		}
		if !slices.Equal(mounted, []string{want}) {
			t.Errorf("%s mounts the password Secrets of %v, want %s's alone", name, mounted, want)
		}
		if !slices.ContainsFunc(c.VolumeMounts, func(vm corev1.VolumeMount) bool {
			return vm.Name == "nats-password" && vm.MountPath == passwordDir && vm.ReadOnly
		}) {
			t.Errorf("%s: nats-password not mounted read-only at %s: %+v", name, passwordDir, c.VolumeMounts)
		}
		sum := sha256.Sum256([]byte(pw[want]))
		if got := d.Spec.Template.Annotations["checksum/nats-password"]; got != hex.EncodeToString(sum[:]) {
			t.Errorf("%s: checksum/nats-password %q is not its password's", name, got)
		}
	}
	if _, ok := seen["client"]; ok {
		t.Error("a Deployment authenticates as client, the role for people")
	}
	if len(seen) != len(users)-1 {
		t.Errorf("Deployments are the users %v; want every user but client: %v", slices.Sorted(maps.Keys(seen)), slices.Sorted(maps.Keys(users)))
	}
	if !strings.Contains(m.notes, "get secret video-spool-nats-client -o jsonpath='{.data.password}'") {
		t.Errorf("NOTES.txt does not say how to read the client's password:\n%s", m.notes)
	}
}

// TestNATSTopologyKeeper checks the keeper: spoolctl from the dispatcher's
// image declaring every pool, and kept.
func TestNATSTopologyKeeper(t *testing.T) {
	m := mustRender(t, readValues(t, twoPoolsFile))
	d := m.deployments["video-spool-nats-topology"]
	if d == nil {
		t.Fatal("no Deployment video-spool-nats-topology")
	}
	c := container(t, d)
	if c.Image != "spool/dispatcher:0.1.0" || !slices.Equal(c.Command, []string{"/usr/local/bin/spoolctl"}) {
		t.Errorf("runs %s %v, want spoolctl of spool/dispatcher:0.1.0", c.Image, c.Command)
	}
	if want := []string{"nats", "declare", "--keep", "--pools", "h100,l40s", "--every", "10s", "--log-level", "info"}; !slices.Equal(c.Args, want) {
		t.Errorf("args %v, want %v", c.Args, want)
	}
	if *d.Spec.Replicas != 1 || d.Spec.Strategy.Type != appsv1.RecreateDeploymentStrategyType {
		t.Errorf("replicas %d, strategy %s; want 1, Recreate", *d.Spec.Replicas, d.Spec.Strategy.Type)
	}
	if plain, _ := envOf(c); plain["SPOOL_NATS_REPLICAS"] != "3" {
		t.Errorf("SPOOL_NATS_REPLICAS=%q: it declares the streams, so it needs the replicas", plain["SPOOL_NATS_REPLICAS"])
	}
	if m := mustRender(t, parseValues(t, "natsTopology: {enabled: false}")); m.deployments["video-spool-nats-topology"] != nil {
		t.Error("natsTopology.enabled=false still renders the keeper")
	}
}

// TestNATSTLS checks the TLS values: tls:// URLs, the CA and the client
// certificate mounted and named to every pod.
func TestNATSTLS(t *testing.T) {
	m := mustRender(t, parseValues(t, `
nats:
  url: nats://nats-0.nats:4222,nats://nats-1.nats:4222
  tls: {enabled: true, caSecret: nats-ca, caKey: root.pem, clientSecret: spool-nats-client}
`))
	for name, d := range m.deployments {
		c := container(t, d)
		plain, _ := envOf(c)
		for k, v := range map[string]string{
			"SPOOL_NATS_URL":      "tls://nats-0.nats:4222,tls://nats-1.nats:4222",
			"SPOOL_NATS_TLS_CA":   "/etc/spool/nats-tls/ca/ca.crt",
			"SPOOL_NATS_TLS_CERT": "/etc/spool/nats-tls/client/tls.crt",
			"SPOOL_NATS_TLS_KEY":  "/etc/spool/nats-tls/client/tls.key",
		} {
			if plain[k] != v {
				t.Errorf("%s: %s=%q, want %q", name, k, plain[k], v)
			}
		}
		vols := map[string]corev1.Volume{}
		for _, v := range d.Spec.Template.Spec.Volumes {
			vols[v.Name] = v
		}
		if v := vols["nats-tls-ca"]; v.Secret == nil || v.Secret.SecretName != "nats-ca" || len(v.Secret.Items) != 1 || v.Secret.Items[0] != (corev1.KeyToPath{Key: "root.pem", Path: "ca.crt"}) {
			t.Errorf("%s: volume nats-tls-ca %+v, want key root.pem of Secret nats-ca as ca.crt", name, v.Secret)
		}
		if v := vols["nats-tls-client"]; v.Secret == nil || v.Secret.SecretName != "spool-nats-client" {
			t.Errorf("%s: volume nats-tls-client %+v, want Secret spool-nats-client", name, v.Secret)
		}
		for _, want := range []corev1.VolumeMount{{Name: "nats-tls-ca", MountPath: "/etc/spool/nats-tls/ca", ReadOnly: true},
			{Name: "nats-tls-client", MountPath: "/etc/spool/nats-tls/client", ReadOnly: true}} {
			if !slices.ContainsFunc(c.VolumeMounts, func(vm corev1.VolumeMount) bool {
				return vm.Name == want.Name && vm.MountPath == want.MountPath && vm.ReadOnly
			}) {
				t.Errorf("%s: no mount %+v in %+v", name, want, c.VolumeMounts)
			}
		}
	}
	// Without TLS, none of it.
	for name, d := range mustRender(t, nil).deployments {
		plain, _ := envOf(container(t, d))
		if plain["SPOOL_NATS_TLS_CA"] != "" || !strings.HasPrefix(plain["SPOOL_NATS_URL"], "nats://") {
			t.Errorf("%s: TLS set without nats.tls: %v", name, plain)
		}
	}
}

// TestNATSValuesRefused checks the values that would deploy a broken
// NATS configuration.
func TestNATSValuesRefused(t *testing.T) {
	for _, tc := range []struct{ values, want string }{
		{"nats: {credsSecret: spool-creds}", "nats.credsSecret"},
		{"nats: {auth: {existingSecrets: {nobody: s}}}", "nobody"},
		{"nats: {auth: {existingSecrets: {worker@gpu: s}}}", "existingSecrets"},
		{"nats: {tls: {caSecret: ca}}", "nats.tls.enabled"},
		// Existing Secrets must be read to hash them: helm template cannot.
		{"nats: {auth: {existingSecrets: {dispatcher: my-dispatcher}}}", "cannot be read"},
	} {
		_, err := render(t, parseValues(t, tc.values))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("values %s: error %v, want one naming %q", tc.values, err, tc.want)
		}
	}
	// Operator mode: the credentials file, no users.
	m := mustRender(t, parseValues(t, "nats: {credsSecret: spool-creds, auth: {enabled: false}}"))
	for name, d := range m.deployments {
		plain, _ := envOf(container(t, d))
		if plain["SPOOL_NATS_CREDS"] != "/etc/spool/nats/nats.creds" || plain["SPOOL_NATS_USER"] != "" {
			t.Errorf("%s: creds %q user %q, want the credentials file alone", name, plain["SPOOL_NATS_CREDS"], plain["SPOOL_NATS_USER"])
		}
	}
	for name := range m.secrets {
		if strings.Contains(name, "-nats-") {
			t.Errorf("auth disabled, yet Secret %s", name)
		}
	}
}

// secretsCluster answers the chart's lookups from Secrets, as a cluster
// would on `helm upgrade`.
type secretsCluster struct{ objects []runtime.Object }

func (c *secretsCluster) GetClientFor(apiVersion, kind string) (dynamic.NamespaceableResourceInterface, bool, error) {
	gvr := schema.GroupVersionResource{Version: "v1", Resource: strings.ToLower(kind) + "s"}
	return fake.NewSimpleDynamicClient(runtime.NewScheme(), c.objects...).Resource(gvr), true, nil
}

// add stores the rendered Secrets as the API server would keep them:
// stringData folded into base64 data.
func (c *secretsCluster) add(m *manifests) {
	for _, s := range m.secrets {
		data := map[string]any{}
		for k, v := range s.StringData {
			data[k] = base64.StdEncoding.EncodeToString([]byte(v))
		}
		ns := s.Namespace
		if ns == "" {
			ns = releaseNSpace
		}
		c.objects = append(c.objects, &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "v1", "kind": "Secret",
			"metadata": map[string]any{"name": s.Name, "namespace": ns},
			"data":     data,
		}})
	}
}

// renderUpgrade renders as `helm upgrade` against cluster.
func renderUpgrade(t *testing.T, vals chartutil.Values, cluster *secretsCluster) (*manifests, error) {
	t.Helper()
	chrt, err := loader.Load(chartDir)
	if err != nil {
		t.Fatal(err)
	}
	opts := chartutil.ReleaseOptions{Name: releaseName, Namespace: releaseNSpace, Revision: 2, IsUpgrade: true}
	rv, err := chartutil.ToRenderValues(chrt, vals, opts, chartutil.DefaultCapabilities)
	if err != nil {
		return nil, err
	}
	out, err := engine.RenderWithClientProvider(chrt, rv, cluster)
	if err != nil {
		return nil, err
	}
	return decode(out)
}

// TestNATSPasswordsKept checks that an upgrade keeps every password and
// its hash (the server's block does not change), that a password changed
// in its Secret is hashed anew, that a deleted Secret gets a new password,
// and that existing Secrets are hashed into the block.
func TestNATSPasswordsKept(t *testing.T) {
	first := mustRender(t, nil)
	users := wantUsers(t, []string{"default"})
	pw := passwords(t, first, users)
	cluster := &secretsCluster{}
	cluster.add(first)
	again, err := renderUpgrade(t, nil, cluster)
	if err != nil {
		t.Fatal(err)
	}
	if got := passwords(t, again, users); !maps.Equal(got, pw) {
		t.Error("an upgrade changed passwords")
	}
	if a, b := first.secrets[serverSecret].StringData["auth.conf"], again.secrets[serverSecret].StringData["auth.conf"]; a != b {
		t.Error("an upgrade with the same passwords rewrote the server's block")
	}

	// Rotation: the gateway's password changed in its Secret (kubectl
	// edit), the stitcher's Secret deleted.
	cluster = &secretsCluster{}
	for name, s := range first.secrets {
		switch name {
		case userSecret("stitcher"):
			continue
		case userSecret("gateway"):
			s = s.DeepCopy()
			s.StringData["password"] = "rotated-by-hand-0123456789abcdefghij"
			first.secrets[name] = s
		}
		cluster.add(&manifests{secrets: map[string]*corev1.Secret{name: s}})
	}
	rotated, err := renderUpgrade(t, nil, cluster)
	if err != nil {
		t.Fatal(err)
	}
	got := passwords(t, rotated, users)
	for user := range users {
		changed := got[user] != pw[user]
		if changed != (user == "stitcher" || user == "gateway") {
			t.Errorf("%s: password changed %v", user, changed)
		}
	}
	if got["gateway"] != "rotated-by-hand-0123456789abcdefghij" {
		t.Errorf("gateway: the password edited in its Secret was not kept")
	}
	opts := serverOptions(t, rotated.secrets[serverSecret].StringData["auth.conf"])
	for _, u := range opts.Users {
		if err := bcrypt.CompareHashAndPassword([]byte(u.Password), []byte(got[u.Username])); err != nil {
			t.Errorf("after rotation, %s: the server's hash is not of its password: %v", u.Username, err)
		}
	}

	// An existing Secret of the operator's replaces the chart's.
	cluster.objects = append(cluster.objects, &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "v1", "kind": "Secret",
		"metadata": map[string]any{"name": "ops-dispatcher", "namespace": releaseNSpace},
		"data":     map[string]any{"password": base64.StdEncoding.EncodeToString([]byte("operators-own-password-0123456789"))},
	}})
	m, err := renderUpgrade(t, parseValues(t, "nats: {auth: {existingSecrets: {dispatcher: ops-dispatcher}}}"), cluster)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := m.secrets[userSecret("dispatcher")]; ok {
		t.Error("existingSecrets names the dispatcher's Secret, yet the chart renders its own")
	}
	d := m.deployments["video-spool-dispatcher"]
	if !slices.ContainsFunc(d.Spec.Template.Spec.Volumes, func(v corev1.Volume) bool {
		return v.Name == "nats-password" && v.Secret != nil && v.Secret.SecretName == "ops-dispatcher"
	}) {
		t.Error("the dispatcher does not mount the existing Secret ops-dispatcher")
	}
	for _, u := range serverOptions(t, m.secrets[serverSecret].StringData["auth.conf"]).Users {
		if u.Username == "dispatcher" {
			if err := bcrypt.CompareHashAndPassword([]byte(u.Password), []byte("operators-own-password-0123456789")); err != nil {
				t.Errorf("the server's dispatcher hash is not of the existing Secret's password: %v", err)
			}
		}
	}
}
