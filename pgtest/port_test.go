package pgtest_test

import (
	"net"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/pgxact/pgxact/pgtest"
)

// The servers' ports lie below the ephemeral range, where no outgoing connection takes its local port between the
// choice and the server's bind, and they are free when chosen.
func TestFreePortsLieBelowTheEphemeralRange(t *testing.T) {
	low := pgtest.EphemeralLow()
	for range 50 {
		port, err := pgtest.FreePort()
		require.NoError(t, err)
		require.Less(t, port, low)
		require.GreaterOrEqual(t, port, 1024)
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		require.NoError(t, err, "port %d was handed out in use", port)
		require.NoError(t, l.Close())
	}
}
