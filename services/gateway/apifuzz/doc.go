// Package apifuzz fuzzes the gateway's HTTP API from its own OpenAPI
// document with schemathesis (PyPI, pinned in requirements.lock; `make
// fuzz-venv` builds it into .spool/apifuzz-venv). Its test starts the real
// stack (NATS, Postgres, MinIO), a dispatcher and the gateway, then runs
// `st run` against /openapi.yaml with the checks that every answer is no
// 5xx, has a status code, content type and body the document gives, and,
// when it is an error, is a JSON object with a code and a message
// (checks.py). `go test` runs the short form (a fixed seed, 50 examples an
// operation); `make fuzz` the long one (-long: 500, a seed of its own,
// stateful sequences too). The harness authenticates in one place,
// authorization().
package apifuzz
