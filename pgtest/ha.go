package pgtest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// ErrNoAutoFailover is returned by [StartHA] when pg_auto_failover (the pg_autoctl program and the
// pgautofailover extension of the installed PostgreSQL) cannot be found.
var ErrNoAutoFailover = errors.New("pgtest: pg_auto_failover not found " +
	"(install with: apt-get install -y postgresql-15-auto-failover pg-auto-failover-cli, matching the PostgreSQL major version)")

// HAOptions configures [StartHA]. The zero value asks for asynchronous replication.
type HAOptions struct {
	// Synchronous makes the standby synchronous (pg_auto_failover's replication-quorum true on both nodes): a
	// commit on the primary returns only once the standby has flushed it, except while the standby is down or
	// catching up, when the primary carries on alone (state wait_primary). When false, both nodes have
	// replication-quorum false: commits never wait for the standby, so a crash failover can lose the commits
	// the standby had not received yet. Either way the standby is a failover candidate.
	Synchronous bool
}

// An HA is a highly available PostgreSQL cluster run by pg_auto_failover on loopback: a monitor and two
// Postgres nodes, one primary and one streaming standby, each node a pg_autoctl keeper process that
// starts, stops, promotes and rewinds its Postgres as the monitor decides. It is obtained from [StartHA];
// there is no useful zero value. An HA is safe for concurrent use, but Switchover and CrashPrimary change
// the cluster and must not overlap each other.
//
// Authentication is trust and TLS is off (so a faultproxy can read the protocol); the superuser is
// "postgres". Node addresses never change: a failover swaps the roles, not the ports. On a two-core machine
// StartHA takes 10-20 s, a Switchover 5-10 s, and a CrashPrimary 8-15 s, of which 3-4 s without a primary;
// under load and the race detector, up to twice that.
type HA struct {
	dir         string
	binDir      string
	autoctlBin  string
	cred        *syscall.Credential
	synchronous bool

	monitorPort int
	nodes       [2]HANode
	monitor     *pgxpool.Pool // the monitor's pg_auto_failover database, as autoctl_node

	mu       sync.Mutex
	procs    map[string]*groupProc // running pg_autoctl processes by name: "monitor", "node1", "node2"
	watchdog *watchdog

	stopOnce sync.Once
	stopErr  error
	stopped  atomic.Bool
}

// An HANode is one Postgres node of an [HA] cluster: a primary or a standby, depending on the moment.
type HANode struct {
	Name string // pg_auto_failover's node name: "node1" or "node2"
	Addr string // the node's own loopback "host:port", which a test may put a proxy in front of
	port int
}

func newHANode(name string, port int) HANode {
	return HANode{Name: name, Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), port: port}
}

// ConnString returns a connection string for database dbname on this node only, whatever its role.
func (n HANode) ConnString(dbname string) string {
	return haURL([]string{n.Addr}, dbname, "")
}

const (
	// haStartTimeout bounds StartHA; haChangeTimeout bounds each switchover, failover and rejoin.
	haStartTimeout  = 2 * time.Minute
	haChangeTimeout = 3 * time.Minute // a switchover took 57 s once on a loaded 2-core machine
	// haConnectTimeout bounds each connection attempt in conn strings, so a node that accepts TCP but does
	// not answer (stopped, partitioned behind a proxy) costs a client seconds, not minutes.
	haConnectTimeout = 2
)

// StartHA starts a monitor and two nodes on free loopback ports in a new temporary directory, as the
// unprivileged "postgres" OS user when running as root, and returns once node1 is primary, node2 is its
// standby (both reported and assigned so by the monitor, both healthy) and the primary accepts writes. It
// waits at most two minutes. The monitor's health checks and timeouts are tuned down so that a crashed
// primary is replaced within seconds. The caller must call [HA.Stop]; should the process die first, a
// helper process kills the cluster and removes its directory. It returns an error for which
// errors.Is(err, ErrNoAutoFailover) is true when pg_auto_failover is not installed, and one matching
// ErrNoPostgres when PostgreSQL is not. DATABASE_URL plays no part.
func StartHA(ctx context.Context, opts HAOptions) (*HA, error) {
	binDir, autoctlBin, err := findAutoFailover()
	if err != nil {
		return nil, err
	}
	cred, dir, err := newServerHome()
	if err != nil {
		return nil, err
	}
	h := &HA{dir: dir, binDir: binDir, autoctlBin: autoctlBin, cred: cred, synchronous: opts.Synchronous, procs: map[string]*groupProc{}}
	ctx, cancel := context.WithTimeout(ctx, haStartTimeout)
	defer cancel()
	if err := h.start(ctx); err != nil {
		return nil, errors.Join(err, h.Stop())
	}
	return h, nil
}

// Nodes returns the two nodes, node1 then node2, whatever their roles.
func (h *HA) Nodes() []HANode { return h.nodes[:] }

// ConnString returns a multi-host connection string for database dbname listing both nodes with
// target_session_attrs=read-write, so a connection (and every new connection of a pgxpool) goes to whichever
// node is primary at the time. It also sets connect_timeout=2. It does not check that the database exists.
func (h *HA) ConnString(dbname string) string {
	return h.ConnStringVia(dbname, h.nodes[0].Addr, h.nodes[1].Addr)
}

// ConnStringVia is [HA.ConnString] with other addresses in place of the nodes', typically proxies in front of
// them, to cut a client off from a node that keeps running.
func (h *HA) ConnStringVia(dbname string, addrs ...string) string {
	return haURL(addrs, dbname, fmt.Sprintf("&target_session_attrs=read-write&connect_timeout=%d", haConnectTimeout))
}

// MonitorConnString returns the connection string of the monitor's pg_auto_failover database, where the
// table pgautofailover.node and the view of events pgautofailover.event tell what happened.
func (h *HA) MonitorConnString() string {
	return fmt.Sprintf("postgres://autoctl_node@127.0.0.1:%d/pg_auto_failover?sslmode=disable", h.monitorPort)
}

func haURL(addrs []string, dbname, query string) string {
	return "postgres://" + serverUser + "@" + strings.Join(addrs, ",") + "/" + dbname + "?sslmode=disable" + query
}

// CreateDatabase creates a new empty database on the primary, from which it replicates to the standby, and
// returns its [HA.ConnString]. An empty name asks for a generated unique one.
func (h *HA) CreateDatabase(ctx context.Context, name string) (connString string, err error) {
	if h.stopped.Load() {
		return "", ErrStopped
	}
	if name == "" {
		name = generatedName()
	}
	conn, err := pgx.Connect(ctx, h.ConnString("postgres"))
	if err != nil {
		return "", fmt.Errorf("pgtest: create database %s: %w", name, err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		return "", fmt.Errorf("pgtest: create database %s: %w", name, err)
	}
	return h.ConnString(name), nil
}

// Stop kills every process of the cluster at once (SIGKILL: nothing is kept) and removes its directory.
// Stop is idempotent; later calls return the first call's result.
func (h *HA) Stop() error {
	h.stopOnce.Do(func() {
		h.stopped.Store(true)
		if h.monitor != nil {
			h.monitor.Close()
		}
		h.killAll()
		killStragglers(h.dir)
		h.stopErr = removeDir(h.dir)
		if h.stopErr != nil {
			h.watchdog.fire()
		} else {
			h.watchdog.dismiss()
		}
	})
	return h.stopErr
}

// removeDir retries briefly: Postgres backends outlive a killed postmaster by a moment (they run in their
// own sessions and exit when they notice it died) and may still create files meanwhile.
func removeDir(dir string) error {
	var err error
	for range 20 {
		if err = os.RemoveAll(dir); err == nil {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("pgtest: remove %s: %w", dir, err)
}
