package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// A Cluster is a running PostgreSQL server: either embedded (started by pgtest in a temporary directory) or
// the external server named by DATABASE_URL. A Cluster is safe for concurrent use by multiple goroutines.
// It is obtained from [Start] or [Shared]; there is no useful zero value.
type Cluster struct {
	// Embedded clusters: dir holds the data directory, log and socket; port is the loopback TCP port.
	dir      string
	binDir   string
	cred     *syscall.Credential
	port     int
	watchdog *watchdog

	// external is the DATABASE_URL connection string; empty for embedded clusters.
	external string

	admin *pgxpool.Pool // connection to the maintenance database, for CREATE/DROP DATABASE

	stopOnce sync.Once
	stopErr  error
	stopped  atomic.Bool
	down     atomic.Bool // stopped by Crash, not yet restarted
}

// dbCounter makes generated database names unique within the process; the pid and a random tag made once per
// process make them unique across test binaries sharing one DATABASE_URL server, also across runs: a binary killed
// before its cleanup leaves its databases there, and a later one may get the same pid (containers start from 1).
var dbCounter atomic.Uint64

var processTag = func() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b) // crypto/rand does not fail on Linux; a zero tag still leaves the pid and the counter
	return hex.EncodeToString(b)
}()

func generatedName() string {
	return fmt.Sprintf("pgtest_%d_%s_%d", os.Getpid(), processTag, dbCounter.Add(1))
}

// ConnString returns a connection string for database dbname on the cluster. It does not check that the
// database exists.
func (c *Cluster) ConnString(dbname string) string {
	if c.external != "" {
		return withDatabase(c.external, dbname)
	}
	return loopbackURL(c.port, dbname)
}

// loopbackURL is the connection string of an embedded server. Authentication is trust, and only loopback
// is listened on, so there is no password.
func loopbackURL(port int, dbname string) string {
	u := url.URL{
		Scheme:   "postgres",
		User:     url.User(serverUser),
		Host:     net.JoinHostPort("127.0.0.1", strconv.Itoa(port)),
		Path:     "/" + dbname,
		RawQuery: "sslmode=disable",
	}
	return u.String()
}

// CreateDatabase creates a new empty database and returns its connection string. An empty name asks for a
// generated unique one (pgtest_<pid>_<n>); pgx.ParseConfig(connString).Database recovers it. The database
// stays until [Cluster.DropDatabase] or, for embedded clusters, [Cluster.Stop].
func (c *Cluster) CreateDatabase(ctx context.Context, name string) (connString string, err error) {
	if c.stopped.Load() {
		return "", ErrStopped
	}
	if name == "" {
		name = generatedName()
	}
	// template1 is cheap to copy and, in a throwaway cluster, as clean as template0.
	sql := "CREATE DATABASE " + pgx.Identifier{name}.Sanitize() + " TEMPLATE template1"
	if _, err := c.admin.Exec(ctx, sql); err != nil {
		return "", fmt.Errorf("pgtest: create database %s: %w", name, err)
	}
	return c.ConnString(name), nil
}

// DropDatabase drops database name, terminating any sessions still connected to it. Dropping a database
// that does not exist is not an error.
func (c *Cluster) DropDatabase(ctx context.Context, name string) error {
	if c.stopped.Load() {
		return ErrStopped
	}
	sql := "DROP DATABASE IF EXISTS " + pgx.Identifier{name}.Sanitize() + " WITH (FORCE)"
	if _, err := c.admin.Exec(ctx, sql); err != nil {
		return fmt.Errorf("pgtest: drop database %s: %w", name, err)
	}
	return nil
}

// Stop stops an embedded cluster immediately and removes its directory; for a DATABASE_URL server it only
// closes pgtest's own connections. Stop is idempotent; later calls return the first call's result.
func (c *Cluster) Stop() error {
	c.stopOnce.Do(func() {
		c.stopped.Store(true)
		if c.admin != nil {
			c.admin.Close()
		}
		if c.external == "" {
			c.stopErr = c.stopEmbedded()
		}
	})
	return c.stopErr
}

func (c *Cluster) stopEmbedded() error {
	ctx, cancel := context.WithTimeout(context.Background(), stopTimeout)
	defer cancel()
	var err error
	// A server Crash stopped may be running again all the same: a Restart that failed (its ctx ended during crash
	// recovery) leaves behind the postmaster pg_ctl launched. Its pid file says so.
	if !c.down.Load() || c.pidFileExists() {
		err = c.stopImmediate(ctx)
	}
	if err != nil {
		c.watchdog.fire() // before the directory goes: the watchdog stops the server through it
	}
	if rmErr := os.RemoveAll(c.dir); rmErr != nil {
		err = errors.Join(err, fmt.Errorf("pgtest: remove %s: %w", c.dir, rmErr))
	}
	if err == nil {
		c.watchdog.dismiss()
	}
	return err
}

// stopImmediate stops the server at once, as a crash would (pg_ctl stop -m immediate).
func (c *Cluster) stopImmediate(ctx context.Context) error {
	for {
		err := runCommand(c.pgCtl(ctx, "stop", "-m", "immediate"))
		// A postmaster that is starting (one a failed Restart left behind) creates its pid file before it writes its
		// pid into it, and pg_ctl then refuses: "the PID file ... is empty". A moment later it finds the pid.
		if err == nil || !strings.Contains(err.Error(), "is empty") {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// pidFileExists reports whether the data directory holds a postmaster.pid: a server runs on it, or died without
// removing it.
func (c *Cluster) pidFileExists() bool {
	_, err := os.Stat(filepath.Join(c.dataDir(), "postmaster.pid"))
	return err == nil
}

// openAdmin connects to the maintenance database, from which databases are created and dropped, and
// checks the server answers so a bad setup fails once, clearly, instead of in every test.
func (c *Cluster) openAdmin(ctx context.Context, connString string) error {
	pool, err := pgxpool.New(ctx, connString)
	if err != nil {
		return fmt.Errorf("pgtest: connect: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return fmt.Errorf("pgtest: connect: %w", err)
	}
	c.admin = pool
	return nil
}
