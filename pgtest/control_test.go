package pgtest_test

import (
	"context"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/pgxact/pgxact/pgtest"
)

// TestStopAfterAFailedRestartStopsTheServer: a Restart whose ctx ends during crash recovery has had pg_ctl launch
// the postmaster, which goes on starting. The cluster must not be left with a server nobody stops: Stop (or the
// failed Restart itself) stops it, and nothing listens on its port afterwards.
func TestStopAfterAFailedRestartStopsTheServer(t *testing.T) {
	bg := context.Background()
	c, err := pgtest.Start(bg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Stop() })
	cfg, err := pgx.ParseConfig(c.ConnString("postgres"))
	require.NoError(t, err)
	addr := net.JoinHostPort(cfg.Host, strconv.Itoa(int(cfg.Port)))
	require.NoError(t, c.Crash(bg))

	ctx, cancel := context.WithTimeout(bg, 50*time.Millisecond) // ends while the server recovers and starts
	defer cancel()
	require.Error(t, c.Restart(ctx), "a server restarted within 50 ms")
	require.NoError(t, c.Stop())
	time.Sleep(2 * time.Second) // a postmaster left behind would have finished starting by now
	conn, err := net.DialTimeout("tcp", addr, time.Second)
	if err == nil {
		_ = conn.Close()
	}
	require.Error(t, err, "a server still listens on %s after Stop", addr)
}
