package devstack

import "syscall"

// sysProcAttr puts a child in its own process group (so a terminal's ^C
// reaches only us, and we stop it in order), runs it as cred when not nil,
// and sends it deathSig when we die.
func sysProcAttr(deathSig syscall.Signal, cred *syscall.Credential) *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: deathSig, Credential: cred}
}
