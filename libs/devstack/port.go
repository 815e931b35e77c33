package devstack

import (
	"fmt"
	"net"
)

// freePort asks the kernel for a free TCP port on 127.0.0.1. Another process
// may take it before the server binds it; the window is short.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// FreePort asks the kernel for a free TCP port on 127.0.0.1, for a service
// started with StartService to listen on. Another process may take it
// before the service binds it; the window is short. Errors: none but the
// kernel's.
func FreePort() (int, error) {
	p, err := freePort()
	if err != nil {
		return 0, fmt.Errorf("devstack: %w", err)
	}
	return p, nil
}

// portOrFree returns port, or a free port when it is 0.
func portOrFree(port int) (int, error) {
	if port != 0 {
		return port, nil
	}
	return freePort()
}

// freePorts returns n distinct free ports (see freePort).
func freePorts(n int) ([]int, error) {
	seen := map[int]bool{}
	ports := make([]int, 0, n)
	for len(ports) < n {
		p, err := freePort()
		if err != nil {
			return nil, err
		}
		if !seen[p] {
			seen[p] = true
			ports = append(ports, p)
		}
	}
	return ports, nil
}
