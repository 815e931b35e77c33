package devstack

import (
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"
)

// pgSystemUser is the system user Debian's postgresql package creates; the
// Postgres programs run as it when we are root, since they refuse root.
const pgSystemUser = "postgres"

// pgCredential returns the credential to run initdb and postgres with: nil
// when we are not root, else that of the postgres system user.
func pgCredential() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup(pgSystemUser)
	if err != nil {
		return nil, fmt.Errorf("running as root, postgres must run as the %q user: %w (run \"apt-get install -y postgresql\", which creates it)", pgSystemUser, err)
	}
	uid, err := strconv.ParseUint(u.Uid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("user %s: uid %q: %w", pgSystemUser, u.Uid, err)
	}
	gid, err := strconv.ParseUint(u.Gid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("user %s: gid %q: %w", pgSystemUser, u.Gid, err)
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), NoSetGroups: true}, nil
}

// handOver makes dir owned by cred's user and lets that user traverse every
// directory above it, adding only the search (x) bit for others where it is
// missing. Nothing is done when cred is nil.
func handOver(dir string, cred *syscall.Credential) error {
	if cred == nil {
		return nil
	}
	if err := os.Chown(dir, int(cred.Uid), int(cred.Gid)); err != nil {
		return fmt.Errorf("chown %s: %w", dir, err)
	}
	for p := filepath.Dir(dir); ; p = filepath.Dir(p) {
		st, err := os.Stat(p)
		if err != nil {
			return fmt.Errorf("stat %s: %w", p, err)
		}
		if st.Mode().Perm()&0o001 == 0 {
			if err := os.Chmod(p, st.Mode().Perm()|0o001); err != nil {
				return fmt.Errorf("let %s traverse %s: %w", pgSystemUser, p, err)
			}
		}
		if p == filepath.Dir(p) {
			return nil
		}
	}
}
