package pgtest

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// withHint adds the fix to a failure to get a server, so it is one copy-paste away.
func withHint(err error) error {
	return addHint(err, os.Geteuid() == 0)
}

// addHint is withHint for a process running as root or not. Only a missing PostgreSQL is fixed by installing it:
// any other failure gets a hint only when one is known to fit, since a wrong one sends the reader astray.
func addHint(err error, asRoot bool) error {
	switch {
	case errors.Is(err, ErrNoPostgres):
		return err // already says what to install
	case errors.Is(err, ErrNotLoopback):
		return fmt.Errorf("%w (unset DATABASE_URL to use an embedded server)", err)
	case asRoot && isPermissionError(err):
		// As root the server runs as another user, who may not be allowed into a TMPDIR under, say, /root.
		return fmt.Errorf("%w (the server runs as OS user %s, which must be able to reach the temporary "+
			"directory %s: let it search every directory on that path, or set TMPDIR to one it can, such as /tmp)",
			err, serverUser, os.TempDir())
	default:
		return err
	}
}

// isPermissionError reports whether err is a permission error of this process or says that a server program
// (initdb, pg_ctl), whose errors arrive as text, met one.
func isPermissionError(err error) bool {
	return errors.Is(err, fs.ErrPermission) || strings.Contains(strings.ToLower(err.Error()), "permission denied")
}

// ConnString returns a connection string for a new empty database private to t, dropped (with any sessions
// still connected) at t's cleanup. When no PostgreSQL server can be had, it fails t saying how to install
// one; it never skips. With PGXACT_TEST_POOLER=pgbouncer the string goes through pgbouncer (see the package
// documentation), and the test fails if pgbouncer cannot be started.
func ConnString(t testing.TB) string {
	t.Helper()
	c, err := Shared()
	if err != nil {
		t.Fatalf("pgtest: no PostgreSQL server for tests: %v", withHint(err))
	}
	name := generatedName()
	connString, err := c.CreateDatabase(t.Context(), name)
	if err != nil {
		t.Fatalf("%v", err)
	}
	t.Cleanup(func() { dropForTest(t, c, connString) })
	if !Pooled() {
		return connString
	}
	pooled, err := pooledConnString(c, name)
	if err != nil {
		t.Fatalf("%v", err)
	}
	return pooled
}

// dropForTest runs at cleanup, after t's context is cancelled, so it has its own deadline.
func dropForTest(t testing.TB, c *Cluster, connString string) {
	config, err := pgx.ParseConfig(connString)
	if err != nil {
		t.Errorf("pgtest: %v", err)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), stopTimeout)
	defer cancel()
	if err := c.DropDatabase(ctx, config.Database); err != nil {
		t.Errorf("%v", err)
	}
}

// Config returns a parsed pool configuration for a new private database (see [ConnString]), for tests that
// set MaxConns, DialFunc and the like. Pools built from it must be closed by the test; their sessions are
// terminated when the database is dropped.
func Config(t testing.TB) *pgxpool.Config {
	t.Helper()
	config, err := pgxpool.ParseConfig(ConnString(t))
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	return config
}

// Pool returns a pool on a new private database (see [ConnString]). At cleanup the pool is closed, then the
// database dropped.
func Pool(t testing.TB) *pgxpool.Pool {
	t.Helper()
	pool, err := pgxpool.NewWithConfig(context.Background(), Config(t))
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	t.Cleanup(pool.Close) // registered after the drop, so it runs before it
	return pool
}
