package dispatcher

import (
	"errors"

	"github.com/spoolvideo/spool/libs/blob"
)

// Option configures a Dispatcher beyond its environment.
type Option func(*Dispatcher) error

// WithBlob gives the dispatcher the object store. It needs one for jobs
// with media inputs (intake reads the uploads and writes what it derives
// from them) and for retention; without one such jobs are rejected as
// unavailable here. Main always gives it.
func WithBlob(b *blob.Store) Option {
	return func(d *Dispatcher) error {
		if b == nil {
			return errors.New("dispatcher: nil object store")
		}
		d.blob = b
		return nil
	}
}
