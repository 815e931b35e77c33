package bus_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"testing"

	"github.com/spoolvideo/spool/libs/bus"
)

var updatePermissions = flag.Bool("update-permissions", false, "rewrite "+permissionsFile+" from bus.PermissionsTemplate")

// permissionsFile is the copy of bus.PermissionsTemplate that the Helm
// chart renders NATS's users from.
const permissionsFile = "../../deploy/helm/spool/files/nats-permissions.json"

// The chart's permissions are the code's: the file equals
// bus.PermissionsTemplate (go test ./libs/bus -run TestPermissionsFile
// -args -update-permissions rewrites it).
func TestPermissionsFile(t *testing.T) {
	type entry struct {
		Publish        []string `json:"publish"`
		Subscribe      []string `json:"subscribe"`
		AllowResponses bool     `json:"allow_responses"`
	}
	roles := map[string]entry{}
	for r, p := range bus.PermissionsTemplate() {
		roles[string(r)] = entry{p.Publish, p.Subscribe, p.Responses}
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false) // subjects hold '>'
	enc.SetIndent("", "  ")
	if err := enc.Encode(map[string]any{
		"about": "NATS users' allow-lists by role, generated from libs/bus (PermissionsTemplate); " + bus.PoolPlaceholder +
			" stands for a worker's pool. Do not edit: go test ./libs/bus -run TestPermissionsFile -args -update-permissions",
		"roles": roles,
	}); err != nil {
		t.Fatal(err)
	}
	want := buf.Bytes()
	if *updatePermissions {
		if err := os.WriteFile(permissionsFile, want, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(permissionsFile)
	if err != nil {
		t.Fatalf("%v: run go test ./libs/bus -run TestPermissionsFile -args -update-permissions", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s differs from bus.PermissionsTemplate: run go test ./libs/bus -run TestPermissionsFile -args -update-permissions", permissionsFile)
	}
}
