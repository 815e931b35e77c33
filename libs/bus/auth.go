package bus

import (
	"fmt"
	"os"
	"strings"

	"github.com/nats-io/nats.go"

	"github.com/spoolvideo/spool/libs/config"
)

// authOptions are the connect options of cfg's credentials and TLS:
//   - a user and password (the roles of PermissionsOf), whose replies come
//     on the user's own inbox prefix (InboxPrefix), the only one its
//     permissions let it subscribe to;
//   - or a .creds file, for servers in operator (JWT) mode;
//   - a CA file requires TLS and verifies the servers with it; a client
//     certificate and key authenticate the client to servers that verify
//     clients.
//
// A file that cannot be read is an error naming its variable.
func authOptions(cfg config.NATS) ([]nats.Option, error) {
	var opts []nats.Option
	if cfg.User != "" {
		if cfg.Creds != "" {
			return nil, fmt.Errorf("bus: %w: SPOOL_NATS_USER and SPOOL_NATS_CREDS are both set: want one way to authenticate", ErrInvalidOption)
		}
		password := cfg.Password.Reveal()
		if cfg.PasswordFile != "" {
			if password != "" {
				return nil, fmt.Errorf("bus: %w: SPOOL_NATS_PASSWORD and SPOOL_NATS_PASSWORD_FILE are both set: want one", ErrInvalidOption)
			}
			b, err := os.ReadFile(cfg.PasswordFile)
			if err != nil {
				return nil, fmt.Errorf("bus: SPOOL_NATS_PASSWORD_FILE: %w", err)
			}
			password = strings.TrimRight(string(b), "\r\n")
		}
		opts = append(opts, nats.UserInfo(cfg.User, password), nats.CustomInboxPrefix(InboxPrefix(cfg.User)))
	}
	if cfg.Creds != "" {
		if _, err := os.Stat(cfg.Creds); err != nil {
			return nil, fmt.Errorf("bus: SPOOL_NATS_CREDS: %w", err)
		}
		opts = append(opts, nats.UserCredentials(cfg.Creds))
	}
	if cfg.TLSCA != "" {
		if _, err := os.Stat(cfg.TLSCA); err != nil {
			return nil, fmt.Errorf("bus: SPOOL_NATS_TLS_CA: %w", err)
		}
		opts = append(opts, nats.RootCAs(cfg.TLSCA))
	}
	switch {
	case cfg.TLSCert != "" && cfg.TLSKey != "":
		opts = append(opts, nats.ClientCert(cfg.TLSCert, cfg.TLSKey))
	case cfg.TLSCert != "" || cfg.TLSKey != "":
		return nil, fmt.Errorf("bus: %w: SPOOL_NATS_TLS_CERT and SPOOL_NATS_TLS_KEY go together: set both or neither", ErrInvalidOption)
	}
	return opts, nil
}
