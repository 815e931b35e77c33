//go:build !linux

package devstack

import "syscall"

// sysProcAttr puts a child in its own process group and runs it as cred when
// not nil. Outside Linux there is no parent-death signal.
func sysProcAttr(_ syscall.Signal, cred *syscall.Credential) *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Credential: cred}
}
