package spoolctl

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/url"
	"strconv"
	"text/tabwriter"
	"time"
)

// keysUsage is spoolctl keys -h.
const keysUsage = `Usage: spoolctl keys <create|list|revoke> [flags]

Manages the gateway's API keys, with an admin key ($SPOOL_API_KEY, or -key)
at $SPOOL_GATEWAY_URL (or -api). A key belongs to one tenant: the jobs,
uploads and batches it makes are that tenant's, and it sees no other
tenant's. An admin key acts for any tenant and manages keys.

  create --tenant <tenant> [--name <what it is for>] [--admin]
         prints the new key, spool_<id>_<secret>: the only time it is
         shown (the gateway keeps its hash alone)
  list   [--tenant <tenant>]   the keys, revoked ones too; never a secret
  revoke <key-id>              the key is refused from its next request on

'spoolctl keys <command> -h' shows a command's flags.
`

// runKeys is spoolctl keys.
func runKeys(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(stderr, keysUsage)
		if len(args) == 0 {
			return ErrUsage
		}
		return nil
	}
	switch args[0] {
	case "create":
		return keysCreate(ctx, args[1:], stdout, stderr)
	case "list":
		return keysList(ctx, args[1:], stdout, stderr)
	case "revoke":
		return keysRevoke(ctx, args[1:], stdout, stderr)
	}
	fmt.Fprint(stderr, keysUsage)
	return fmt.Errorf("spoolctl keys: unknown command %q", args[0])
}

// apiKey is a key as the gateway shows it.
type apiKey struct {
	ID         string     `json:"id"`
	Tenant     string     `json:"tenant"`
	Name       string     `json:"name"`
	Admin      bool       `json:"admin"`
	CreatedAt  time.Time  `json:"created_at"`
	RevokedAt  *time.Time `json:"revoked_at"`
	LastUsedAt *time.Time `json:"last_used_at"`
	Key        string     `json:"key"` // in the answer to its creation alone
}

func keysCreate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var tenant, name *string
	var admin *bool
	c, _, err := clientCommand("keys create", "--tenant <tenant> [--name <name>] [--admin]", args, stderr, 0, func(fs *flag.FlagSet) {
		tenant = fs.String("tenant", "", "the key's tenant (required): what it makes is that tenant's, and it sees no other's")
		name = fs.String("name", "", "what the key is for, for people (at most 200 bytes)")
		admin = fs.Bool("admin", false, "an admin key: it acts for any tenant and manages keys")
	})
	if err != nil {
		return helpIsOK(err)
	}
	if *tenant == "" {
		return fmt.Errorf("spoolctl keys create: --tenant is required")
	}
	body, _ := json.Marshal(map[string]any{"tenant": *tenant, "name": *name, "admin": *admin})
	var k apiKey
	if _, err := c.do(ctx, "POST", "/keys", bytes.NewReader(body), &k); err != nil {
		return err
	}
	kind := "key"
	if k.Admin {
		kind = "admin key"
	}
	fmt.Fprintf(stderr, "%s %s of tenant %s created; it is shown this once:\n", kind, k.ID, k.Tenant)
	fmt.Fprintln(stdout, k.Key)
	return nil
}

func keysList(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var tenant *string
	c, _, err := clientCommand("keys list", "[--tenant <tenant>]", args, stderr, 0, func(fs *flag.FlagSet) {
		tenant = fs.String("tenant", "", "only this tenant's keys")
	})
	if err != nil {
		return helpIsOK(err)
	}
	path := "/keys"
	if *tenant != "" {
		path += "?" + url.Values{"tenant": {*tenant}}.Encode()
	}
	var out struct {
		Keys []apiKey `json:"keys"`
	}
	if _, err := c.do(ctx, "GET", path, nil, &out); err != nil {
		return err
	}
	tw := tabwriter.NewWriter(stdout, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "id\ttenant\tname\tadmin\tcreated\tlast used\trevoked")
	for _, k := range out.Keys {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%v\t%s\t%s\t%s\n", k.ID, k.Tenant, k.Name, k.Admin, stamp(&k.CreatedAt), stamp(k.LastUsedAt), stamp(k.RevokedAt))
	}
	return tw.Flush()
}

func keysRevoke(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c, pos, err := clientCommand("keys revoke", "<key-id>", args, stderr, 1, nil)
	if err != nil {
		return helpIsOK(err)
	}
	var k apiKey
	if _, err := c.do(ctx, "DELETE", "/keys/"+url.PathEscape(pos[0]), nil, &k); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "key %s of tenant %s revoked at %s\n", k.ID, k.Tenant, stamp(k.RevokedAt))
	return nil
}

// stamp is t in RFC 3339, UTC; "-" for none.
func stamp(t *time.Time) string {
	if t == nil || t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

// runAudit is spoolctl audit: the audit log, newest first.
func runAudit(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var tenant, action, target *string
	var limit *int
	c, _, err := clientCommand("audit", "[--tenant <tenant>] [--action <action>] [--target <id>] [-n <entries>]", args, stderr, 0,
		func(fs *flag.FlagSet) {
			tenant = fs.String("tenant", "", "only this tenant's entries (an admin key's filter; a tenant's key reads its own alone)")
			action = fs.String("action", "", "only this action: job.submit, batch.submit, job.cancel, job.delete, key.create, key.revoke, ...")
			target = fs.String("target", "", "only entries about this job, batch or key id")
			limit = fs.Int("n", 100, "most entries shown (1..1000)")
		})
	if err != nil {
		return helpIsOK(err)
	}
	q := url.Values{"limit": {strconv.Itoa(*limit)}}
	for k, v := range map[string]string{"tenant": *tenant, "action": *action, "target": *target} {
		if v != "" {
			q.Set(k, v)
		}
	}
	var out struct {
		Entries []struct {
			Time   time.Time      `json:"time"`
			Tenant string         `json:"tenant"`
			KeyID  string         `json:"key_id"`
			Action string         `json:"action"`
			Target string         `json:"target"`
			Detail map[string]any `json:"detail"`
		} `json:"entries"`
	}
	if _, err := c.do(ctx, "GET", "/audit?"+q.Encode(), nil, &out); err != nil {
		return err
	}
	tw := tabwriter.NewWriter(stdout, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "time\ttenant\tkey\taction\ttarget\tdetail")
	for _, e := range out.Entries {
		detail := ""
		if len(e.Detail) > 0 {
			d, _ := json.Marshal(e.Detail)
			detail = string(d)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", stamp(&e.Time), e.Tenant, cmp.Or(e.KeyID, "-"), e.Action, e.Target, detail)
	}
	return tw.Flush()
}
