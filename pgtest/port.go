package pgtest

import (
	"fmt"
	"net"
)

// freePort asks the kernel for an unused loopback TCP port. Another process may take it before the server
// binds it; callers retry the start in that case.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("pgtest: find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
