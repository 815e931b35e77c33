// Package quickstart holds the tests of what the docs tell a newcomer to
// run: `make build` writes every binary of the workspace to bin/ and prints
// no compiler warning, the docs run those binaries (never `go run`, which
// compiles without the project's cgo flags), and the commands they show
// work as written.
package quickstart
