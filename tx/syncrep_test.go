package tx_test

import (
	"bytes"
	"context"
	"net"
	osexec "os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/pgxact/pgxact/pgtest"
	"github.com/pgxact/pgxact/tx"
)

// nowhereConn reports a remote address nothing listens on, so that pgx's CancelRequest, sent when a read is
// interrupted, cannot reach the server, as in a network partition.
type nowhereConn struct{ net.Conn }

func (nowhereConn) RemoteAddr() net.Addr { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 9} }

// TestCommitWaitingForASynchronousStandbyIsNotForcedThrough: with a synchronous standby named that never connects,
// COMMIT waits in SyncRep after writing its record locally, and pg_xact_status says "in progress". The runner must
// not end that backend to settle the outcome: ending it makes the server report "committed" for a transaction no
// standby confirmed. The outcome stays unknown.
func TestCommitWaitingForASynchronousStandbyIsNotForcedThrough(t *testing.T) {
	bg := context.Background()
	cfg, err := pgxpool.ParseConfig("")
	require.NoError(t, err)
	cfg.ConnConfig = ghostStandbyServer(t)
	pool, err := pgxpool.NewWithConfig(bg, cfg)
	require.NoError(t, err)
	t.Cleanup(pool.Close)

	ctx, cancel := context.WithTimeout(bg, time.Second)
	defer cancel()
	_, err = tx.Run(ctx, pool, tx.Exec("INSERT INTO sr VALUES (1)"))
	require.ErrorIs(t, err, tx.ErrCommitUnknown)
	var waiting int
	require.NoError(t, pool.QueryRow(bg, "SELECT count(*) FROM pg_stat_activity WHERE wait_event = 'SyncRep'").
		Scan(&waiting))
	require.Equal(t, 1, waiting, "the committing backend still waits for a standby")
}

// TestCommitStalledBeforeItsSyncRepWaitIsNotForcedThrough: the server holds off a termination signal through the whole
// of COMMIT, so a backend signalled before it reaches its wait for the standbys (here held by gdb just after its
// commit record is written, as a stalled disk would hold it) commits locally, then skips the wait. The wait-event
// check cannot see that backend; the runner must not report "committed" after signalling it on a server that names
// synchronous standbys.
func TestCommitStalledBeforeItsSyncRepWaitIsNotForcedThrough(t *testing.T) {
	gdb, err := osexec.LookPath("gdb")
	require.NoError(t, err, "this test stops a backend with gdb; scripts/ensure-postgres.sh installs it")
	bg := context.Background()
	conn, err := pgx.ConnectConfig(bg, ghostStandbyServer(t))
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close(bg) })
	var pid int
	require.NoError(t, conn.QueryRow(bg, "SELECT pg_backend_pid()").Scan(&pid))
	stallCommit(t, gdb, pid, 3*time.Second)

	ctx, cancel := context.WithTimeout(bg, time.Second)
	defer cancel()
	_, err = tx.Run(ctx, conn, tx.Exec("INSERT INTO sr VALUES (1)"))
	require.ErrorIs(t, err, tx.ErrCommitUnknown, "no standby confirmed this commit")
	require.ErrorContains(t, err, "after its backend was ended")
}

// ghostStandbyServer starts a server of its own whose synchronous standby never connects, so that every COMMIT waits
// for it, and returns the configuration of connections to it whose cancel requests go nowhere.
func ghostStandbyServer(t *testing.T) *pgx.ConnConfig {
	t.Helper()
	bg := context.Background()
	c, err := pgtest.Start(bg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Stop() })
	cfg, err := pgx.ParseConfig(c.ConnString("postgres"))
	require.NoError(t, err)
	dial := cfg.DialFunc
	cfg.DialFunc = func(ctx context.Context, network, addr string) (net.Conn, error) {
		conn, err := dial(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return nowhereConn{conn}, nil
	}
	admin, err := pgx.ConnectConfig(bg, cfg)
	require.NoError(t, err)
	for _, sql := range []string{"CREATE TABLE sr (n int)", "CHECKPOINT",
		"ALTER SYSTEM SET synchronous_standby_names = 'ghost'", "ALTER SYSTEM SET synchronous_commit = on"} {
		_, err = admin.Exec(bg, sql)
		require.NoError(t, err)
	}
	require.NoError(t, admin.Close(bg))
	// Restarted rather than reloaded: a COMMIT waits only once the checkpointer has published that standbys are
	// named, in shared memory, and after a reload it may do so later than any backend sees the setting (a commit
	// went through unwaited so in a CI run). A checkpointer publishes it as it starts, alongside crash recovery,
	// which in practice is over long before the server takes connections.
	require.NoError(t, c.Crash(bg))
	require.NoError(t, c.Restart(bg))
	admin, err = pgx.ConnectConfig(bg, cfg)
	require.NoError(t, err)
	defer admin.Close(bg)
	var names string
	require.NoError(t, admin.QueryRow(bg, "SHOW synchronous_standby_names").Scan(&names))
	require.Equal(t, "ghost", names)
	return cfg
}

// stallCommit attaches gdb to the backend pid and has it stop the backend for d where a COMMIT has written its record
// and not yet marked the transaction committed (TransactionIdCommitTree), then detach. It returns once gdb is
// attached; gdb is killed at the test's end if it has not finished by then.
func stallCommit(t *testing.T, gdb string, pid int, d time.Duration) {
	t.Helper()
	var out syncBuffer
	cmd := osexec.Command(gdb, "-p", strconv.Itoa(pid), "-batch", "-nx",
		"-ex", "handle all nostop noprint pass", "-ex", "break TransactionIdCommitTree",
		"-ex", "shell echo ATTACHED", "-ex", "continue",
		"-ex", "shell sleep "+strconv.FormatFloat(d.Seconds(), 'f', 3, 64), "-ex", "delete", "-ex", "detach")
	cmd.Stdout, cmd.Stderr = &out, &out
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	require.Eventually(t, func() bool { return strings.Contains(out.String(), "ATTACHED") }, 30*time.Second,
		20*time.Millisecond, "gdb did not attach")
	require.Contains(t, out.String(), "Breakpoint 1 at", "gdb found no TransactionIdCommitTree in the server:\n%s",
		out.String())
}

// syncBuffer is a bytes.Buffer that a process writes while a test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}
