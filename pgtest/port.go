package pgtest

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
)

// freePort returns a loopback TCP port that was free a moment ago. Another process may take it before the server
// binds it; the single server retries its start in that case.
//
// The port is drawn below the kernel's ephemeral range, not asked of the kernel with port 0: between this check and
// the server's bind (seconds, for an HA node that is made after its monitor), every outgoing connection of the
// machine takes its local port from the ephemeral range, and one that took this port would make the bind fail.
// Below that range only another listener's explicit choice can.
func freePort() (int, error) {
	hi := ephemeralLow()
	lo := max(hi-10_000, 1024)
	for range 100 {
		port := lo + rand.IntN(hi-lo)
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		if err != nil {
			continue // in use
		}
		l.Close()
		return port, nil
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("pgtest: find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// ephemeralLow is the first port of the kernel's ephemeral range (Linux's default when it cannot be read).
func ephemeralLow() int {
	const linuxDefault = 32768
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return linuxDefault
	}
	fields := strings.Fields(string(b))
	if len(fields) == 0 {
		return linuxDefault
	}
	low, err := strconv.Atoi(fields[0])
	if err != nil || low <= 1024+1000 {
		return linuxDefault
	}
	return low
}
