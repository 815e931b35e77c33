package bus

import (
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/spoolvideo/spool/libs/ident"
)

// Role is what a NATS user may do. The server is configured with one user
// per role (a worker's per pool, or per worker), each limited to the
// subjects of Permissions; libs/devstack and the Helm chart render the
// same lists.
type Role string

// The roles.
const (
	// RoleAdmin manages streams, consumers and buckets (Declare): the
	// only role that may create, update, purge or delete a stream.
	RoleAdmin Role = "admin"
	// RoleDispatcher consumes submissions and results, publishes tasks,
	// events, cancels and voids, declares pool consumers and answers the
	// "spool" micro service.
	RoleDispatcher Role = "dispatcher"
	// RoleStitcher consumes results and publishes events and results.
	RoleStitcher Role = "stitcher"
	// RoleGateway submits jobs, cancels them and follows their events.
	RoleGateway Role = "gateway"
	// RoleWorker pulls tasks from its pool's consumer only, publishes
	// results and writes only its pool's (or its own) registry key.
	RoleWorker Role = "worker"
	// RoleClient may publish job specs on spool.jobs.submit, and nothing
	// else: the role of users who submit with the nats CLI.
	RoleClient Role = "client"
)

// Roles lists every role, in a stable order.
var Roles = []Role{RoleAdmin, RoleDispatcher, RoleStitcher, RoleGateway, RoleWorker, RoleClient}

// Permissions are a NATS user's allow-lists; anything else is denied.
// Responses allows the user to answer requests sent to the subjects it
// subscribes to (the server's allow_responses), whatever their reply
// subject.
type Permissions struct {
	Publish   []string
	Subscribe []string
	Responses bool
}

// InboxPrefix is the prefix of user's reply subjects (nats.CustomInboxPrefix):
// _SPOOL.<user>. Each user may subscribe only below its own, so that no
// user reads the replies, or the pulled tasks, of another.
func InboxPrefix(user string) string { return "_SPOOL." + user }

// UserName is the NATS user of role: the role's name; for a worker,
// worker@<pool>, or worker@<pool>@<worker> for a user of one worker
// only. pool and worker must be valid tokens (ident.Rule), and are
// ignored for other roles.
func UserName(role Role, pool, worker string) (string, error) {
	if role != RoleWorker {
		if !slices.Contains(Roles, role) {
			return "", fmt.Errorf("bus: %w: role %q: want one of %s", ErrInvalidOption, role, roleList())
		}
		return string(role), nil
	}
	if !ValidToken(pool) {
		return "", fmt.Errorf("bus: %w: worker pool %q", ErrInvalidToken, pool)
	}
	if worker == "" {
		return "worker@" + pool, nil
	}
	if !ValidToken(worker) {
		return "", fmt.Errorf("bus: %w: worker id %q", ErrInvalidToken, worker)
	}
	return "worker@" + pool + "@" + worker, nil
}

// PermissionsOf returns the allow-lists of role's user (UserName). A
// worker's user pulls only from pool-<pool>, acknowledges only its
// messages, may create only that consumer, and writes only the registry
// keys <pool>.* (worker "") or <pool>.<worker>.
func PermissionsOf(role Role, pool, worker string) (Permissions, error) {
	user, err := UserName(role, pool, worker)
	if err != nil {
		return Permissions{}, err
	}
	return permissions(role, user, pool, worker), nil
}

// PoolPlaceholder stands for the pool in PermissionsTemplate's worker lists.
const PoolPlaceholder = "{pool}"

// PermissionsTemplate is PermissionsOf for every role, a worker's for the
// pool PoolPlaceholder (the user worker@{pool}): what the Helm chart
// renders for each pool, from the copy in
// deploy/helm/spool/files/nats-permissions.json that a test keeps equal.
func PermissionsTemplate() map[Role]Permissions {
	m := map[Role]Permissions{}
	for _, r := range Roles {
		user := string(r)
		if r == RoleWorker {
			user = "worker@" + PoolPlaceholder
		}
		m[r] = permissions(r, user, PoolPlaceholder, "")
	}
	return m
}

// permissions are role's lists for user, unchecked.
func permissions(role Role, user, pool, worker string) Permissions {
	if role == RoleAdmin {
		return Permissions{Publish: []string{">"}, Subscribe: []string{">"}}
	}
	inbox := InboxPrefix(user) + ".>"
	if role == RoleClient {
		// A PubAck comes back on the client's own inbox; the nats CLI's
		// default prefix is _INBOX, which no service uses.
		return Permissions{Publish: []string{SubjectJobSubmit}, Subscribe: []string{"_INBOX.>", inbox}}
	}
	p := Permissions{
		// What every service reads: account, stream and consumer
		// information (never messages), flow control replies.
		Publish:   []string{"$JS.API.INFO", "$JS.API.STREAM.INFO.*", "$JS.API.CONSUMER.INFO.*.*", "$JS.FC.>"},
		Subscribe: []string{inbox},
	}
	pull := func(stream, consumer string) {
		p.Publish = append(p.Publish, "$JS.API.CONSUMER.MSG.NEXT."+stream+"."+consumer, "$JS.ACK."+stream+"."+consumer+".>")
	}
	kvRead := func(bucket string) {
		s := "KV_" + bucket
		p.Publish = append(p.Publish, "$JS.API.DIRECT.GET."+s, "$JS.API.DIRECT.GET."+s+".>", "$JS.API.STREAM.MSG.GET."+s,
			"$JS.API.CONSUMER.CREATE."+s+".>", "$JS.API.CONSUMER.DELETE."+s+".>")
	}
	kvWrite := func(bucket, keys string) { p.Publish = append(p.Publish, "$KV."+bucket+"."+keys) }
	switch role {
	case RoleDispatcher:
		pull(StreamJobs, ConsumerDispatcher)
		pull(StreamResults, ConsumerDispatcher)
		kvRead(BucketWorkers)
		kvRead(BucketCancelled)
		kvWrite(BucketCancelled, ">")
		p.Publish = append(p.Publish, subjectSegments+">", subjectResults+">", subjectEvents+">", "spool.control.>",
			"$JS.API.CONSUMER.CREATE."+StreamSegments+".>", "$JS.API.CONSUMER.DURABLE.CREATE."+StreamSegments+".>")
		// the cancels of clients; the micro service "spool" (its
		// discovery subjects and endpoints), answered to any requester
		p.Subscribe = append(p.Subscribe, SubjectAllCancels, "$SRV.>", "jobs.>")
		p.Responses = true
	case RoleStitcher:
		pull(StreamResults, ConsumerStitcher)
		kvRead(BucketCancelled)
		p.Publish = append(p.Publish, subjectResults+">", subjectEvents+">")
		p.Subscribe = append(p.Subscribe, SubjectAllCancels)
	case RoleGateway:
		kvRead(BucketWorkers)
		kvRead(BucketCancelled)
		kvWrite(BucketCancelled, ">")
		p.Publish = append(p.Publish, SubjectJobSubmit, subjectCancel+">")
		p.Subscribe = append(p.Subscribe, SubjectAllEvents)
	case RoleWorker:
		consumer := "pool-" + pool
		pull(StreamSegments, consumer)
		kvRead(BucketCancelled)
		keys := pool + ".*"
		if worker != "" {
			keys = pool + "." + worker
		}
		kvWrite(BucketWorkers, keys)
		p.Publish = append(p.Publish, subjectResults+">",
			"$JS.API.CONSUMER.CREATE."+StreamSegments+"."+consumer+"."+subjectSegments+pool,
			"$JS.API.CONSUMER.DURABLE.CREATE."+StreamSegments+"."+consumer)
		p.Subscribe = append(p.Subscribe, SubjectAllCancels, SubjectAllVoids)
	}
	return p
}

// WorkerKey is a worker's key in spool_workers: <pool>.<worker>, so that a
// pool's user may write only its pool's keys. worker may hold what a KV
// key token may (letters, digits, '-', '_', '=' and '/'), not '.'.
func WorkerKey(pool, worker string) (string, error) {
	if !ValidToken(pool) || !workerKeyToken.MatchString(worker) {
		return "", fmt.Errorf("bus: %w: registry key of worker %q in pool %q: want a pool of %s and a worker id of 1..128 letters, digits, '-', '_', '=' or '/'",
			ErrInvalidToken, worker, pool, ident.Rule)
	}
	return pool + "." + worker, nil
}

var workerKeyToken = regexp.MustCompile(`^[-_=/a-zA-Z0-9]{1,128}$`)

func roleList() string {
	s := make([]string, len(Roles))
	for i, r := range Roles {
		s[i] = string(r)
	}
	return strings.Join(s, ", ")
}
