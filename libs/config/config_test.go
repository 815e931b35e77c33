package config_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/spoolvideo/spool/libs/config"
)

type testConfig struct {
	config.Service
	NATS     config.NATS     `envconfig:"NATS"`
	Postgres config.Postgres `envconfig:"PG"`
	S3       config.S3       `envconfig:"S3"`
}

func TestLoadDefaultsAndOverrides(t *testing.T) {
	t.Setenv("SPOOL_NATS_URL", "nats://example:4333")
	t.Setenv("SPOOL_PG_MAX_CONNS", "3")
	t.Setenv("SPOOL_S3_TLS", "true")
	var c testConfig
	if err := config.Load(&c); err != nil {
		t.Fatal(err)
	}
	if c.NATS.URL != "nats://example:4333" || c.Postgres.MaxConns != 3 || !c.S3.TLS {
		t.Fatalf("overrides not applied: %+v", c)
	}
	if c.S3.Bucket != "spool" || c.Service.LogLevel != "info" {
		t.Fatalf("defaults not applied: %+v", c)
	}
}

func TestLoadRejectsBadValue(t *testing.T) {
	t.Setenv("SPOOL_PG_MAX_CONNS", "many")
	var c testConfig
	err := config.Load(&c)
	if err == nil || !strings.Contains(err.Error(), "MAX_CONNS") {
		t.Fatalf("want an error naming MAX_CONNS, got %v", err)
	}
}

func TestSecretsNeverPrint(t *testing.T) {
	const pw = "hunter2-secret"
	t.Setenv("SPOOL_PG_DSN", "postgres://u:"+pw+"@h/db")
	t.Setenv("SPOOL_S3_SECRET_KEY", pw)
	var c testConfig
	if err := config.Load(&c); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(c.Postgres.DSN.Reveal(), pw) || c.S3.SecretKey.Reveal() != pw {
		t.Fatal("Reveal must return the value")
	}
	var logs bytes.Buffer
	slog.New(slog.NewJSONHandler(&logs, nil)).Info("cfg", "pg", c.Postgres.DSN, "s3", c.S3)
	js, _ := json.Marshal(c)
	for name, out := range map[string]string{
		"%v":   fmt.Sprintf("%v", c),
		"%+v":  fmt.Sprintf("%+v", c),
		"%#v":  fmt.Sprintf("%#v", c),
		"%s":   fmt.Sprintf("%s", c.S3.SecretKey),
		"json": string(js),
		"slog": logs.String(),
	} {
		if strings.Contains(out, pw) {
			t.Errorf("%s leaks the secret: %s", name, out)
		}
	}
}

func TestUsageListsEveryVariable(t *testing.T) {
	var buf bytes.Buffer
	if err := config.Usage(&buf, &testConfig{}); err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{"SPOOL_NATS_URL", "SPOOL_NATS_CREDS", "SPOOL_PG_DSN", "SPOOL_PG_MAX_CONNS",
		"SPOOL_S3_ENDPOINT", "SPOOL_S3_ACCESS_KEY", "SPOOL_S3_SECRET_KEY", "SPOOL_S3_BUCKET", "SPOOL_S3_TLS",
		"SPOOL_SERVICE_NAME", "SPOOL_LOG_LEVEL", "nats://127.0.0.1:4222"} {
		if !strings.Contains(buf.String(), v) {
			t.Errorf("usage lacks %s:\n%s", v, buf.String())
		}
	}
}
