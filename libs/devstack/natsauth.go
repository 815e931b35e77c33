package devstack

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/nats-io/nats-server/v2/server"
	"golang.org/x/crypto/bcrypt"

	"github.com/spoolvideo/spool/libs/bus"
	"github.com/spoolvideo/spool/libs/config"
)

// natsAuth holds the users of a dev stack's NATS: one per role of
// bus.PermissionsOf, with passwords generated at start-up, and a worker's
// user per pool (and per worker) added when first asked for. Every
// connection must authenticate as one of them: authorization is on in dev
// and tests as in production.
type natsAuth struct {
	mu    sync.Mutex
	users map[string]*natsUser // by name
}

type natsUser struct {
	name, password string
	perms          bus.Permissions
}

// defaultWorkerPool is the pool whose worker user exists from the start.
const defaultWorkerPool = "default"

func newNATSAuth() (*natsAuth, error) {
	a := &natsAuth{users: map[string]*natsUser{}}
	for _, r := range bus.Roles {
		pool := ""
		if r == bus.RoleWorker {
			pool = defaultWorkerPool
		}
		if _, _, err := a.user(r, pool, ""); err != nil {
			return nil, err
		}
	}
	return a, nil
}

// user returns role's user (bus.UserName), adding it with a new password
// when it does not exist yet (added).
func (a *natsAuth) user(role bus.Role, pool, worker string) (u *natsUser, added bool, err error) {
	name, err := bus.UserName(role, pool, worker)
	if err != nil {
		return nil, false, fmt.Errorf("nats user: %w", err)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if u := a.users[name]; u != nil {
		return u, false, nil
	}
	perms, err := bus.PermissionsOf(role, pool, worker)
	if err != nil {
		return nil, false, fmt.Errorf("nats user: %w", err)
	}
	pw := make([]byte, 24)
	if _, err := rand.Read(pw); err != nil {
		return nil, false, fmt.Errorf("nats user: %w", err)
	}
	u = &natsUser{name: name, password: base64.RawURLEncoding.EncodeToString(pw), perms: perms}
	a.users[name] = u
	return u, true, nil
}

// names lists the users' names, sorted.
func (a *natsAuth) names() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	var n []string
	for k := range a.users {
		n = append(n, k)
	}
	slices.Sort(n)
	return n
}

func (a *natsAuth) get(name string) *natsUser {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.users[name]
}

// serverUsers are the users for an embedded server's options.
func (a *natsAuth) serverUsers() []*server.User {
	var out []*server.User
	for _, name := range a.names() {
		u := a.get(name)
		p := &server.Permissions{
			Publish:   &server.SubjectPermission{Allow: slices.Clone(u.perms.Publish)},
			Subscribe: &server.SubjectPermission{Allow: slices.Clone(u.perms.Subscribe)},
		}
		if u.perms.Responses {
			p.Response = &server.ResponsePermission{MaxMsgs: server.DEFAULT_ALLOW_RESPONSE_MAX_MSGS, Expires: server.DEFAULT_ALLOW_RESPONSE_EXPIRATION}
		}
		out = append(out, &server.User{Username: u.name, Password: u.password, Permissions: p})
	}
	return out
}

// conf is the authorization block of a nats-server config file, the
// passwords bcrypt-hashed, as the Helm chart renders it.
func (a *natsAuth) conf() (string, error) {
	var users []NATSUser
	for _, name := range a.names() {
		u := a.get(name)
		users = append(users, NATSUser{Name: u.name, Password: u.password, Permissions: u.perms})
	}
	return NATSAuthConf(users, 6) // dev: a cheap cost; the server takes any
}

// NATSUser is one user of a nats-server authorization block: its name
// (bus.UserName), its password in clear and its allow-lists.
type NATSUser struct {
	Name, Password string
	Permissions    bus.Permissions
}

// NATSAuthConf renders users, in their order, as the authorization block
// of a nats-server config file: each password bcrypt-hashed at cost (a
// cost below bcrypt.MinCost, 4, means bcrypt.DefaultCost, 10; above
// bcrypt.MaxCost, 31, is an error), each user limited to its publish and
// subscribe allow-lists, allow_responses where Responses is set. The Helm
// chart renders the same shape; `spoolctl nats auth` writes it for compose.
func NATSAuthConf(users []NATSUser, cost int) (string, error) {
	var b strings.Builder
	b.WriteString("authorization {\n  users = [\n")
	for _, u := range users {
		hash, err := bcrypt.GenerateFromPassword([]byte(u.Password), cost)
		if err != nil {
			return "", fmt.Errorf("nats user %s: %w", u.Name, err)
		}
		fmt.Fprintf(&b, "    {user: %s, password: %s, permissions: {publish: {allow: %s}, subscribe: {allow: %s}",
			strconv.Quote(u.Name), strconv.Quote(string(hash)), quoteList(u.Permissions.Publish), quoteList(u.Permissions.Subscribe))
		if u.Permissions.Responses {
			b.WriteString(", allow_responses: true")
		}
		b.WriteString("}}\n")
	}
	b.WriteString("  ]\n}\n")
	return b.String(), nil
}

func quoteList(s []string) string {
	q := make([]string, len(s))
	for i, v := range s {
		q[i] = strconv.Quote(v)
	}
	return "[" + strings.Join(q, ", ") + "]"
}

// config is the client configuration of role's user at url; tlsCA is the
// CA file when the server requires TLS.
func (a *natsAuth) config(url, tlsCA string, role bus.Role, pool, worker string) (config.NATS, bool, error) {
	u, added, err := a.user(role, pool, worker)
	if err != nil {
		return config.NATS{}, false, err
	}
	return config.NATS{URL: url, User: u.name, Password: config.Secret(u.password), TLSCA: tlsCA}, added, nil
}

// natsEnv is the SPOOL_NATS_* variables of c, as "NAME=value".
func natsEnv(c config.NATS) []string {
	env := []string{"SPOOL_NATS_URL=" + c.URL, "SPOOL_NATS_USER=" + c.User, "SPOOL_NATS_PASSWORD=" + c.Password.Reveal()}
	if c.TLSCA != "" {
		env = append(env, "SPOOL_NATS_TLS_CA="+c.TLSCA)
	}
	return env
}
