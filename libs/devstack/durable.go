package devstack

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// durableMarker is the file in a stack's directory that says its parts run
// durable (Options.Durable). The setting lives with the data, so that a part
// restarted on that data (Stack.Restart) comes back as it was.
const durableMarker = "durable"

// markDurable records in dir whether the stack's parts run durable.
func markDurable(dir string, durable bool) error {
	path := filepath.Join(dir, durableMarker)
	if !durable {
		if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("devstack: %w", err)
		}
		return nil
	}
	note := "Postgres with fsync, synchronous_commit and full_page_writes on; NATS JetStream with sync_interval: always\n"
	if err := os.WriteFile(path, []byte(note), 0o644); err != nil {
		return fmt.Errorf("devstack: %w", err)
	}
	return nil
}

// durableIn says whether the stack in dir runs durable.
func durableIn(dir string) bool {
	_, err := os.Stat(filepath.Join(dir, durableMarker))
	return err == nil
}

// Durable says whether the stack's Postgres and NATS run with their durable
// settings (Options.Durable) rather than the test settings.
func (s *Stack) Durable() bool {
	return durableIn(s.dir)
}
