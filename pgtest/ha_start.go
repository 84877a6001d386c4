package pgtest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"

	"github.com/jackc/pgx/v5/pgxpool"
)

// haServerSettings go into the monitor's and node1's postgresql.conf after initdb, where they override what
// pg_autoctl includes at the top of the file; node2 gets node1's file with pg_basebackup. pg_autoctl sizes
// shared_buffers to a quarter of the machine's memory, three times over here. full_page_writes and
// synchronous_commit keep their defaults: pg_rewind needs the first, synchronous replication the second.
func (h *HA) serverSettings() []string {
	return []string{
		"unix_socket_directories = " + quoteSetting(h.socketDir()),
		"shared_buffers = 128MB",
		"work_mem = '4MB'",
		"maintenance_work_mem = '64MB'",
		"fsync = off",
		"max_connections = 200",
	}
}

// monitorSettings make the monitor notice a dead node within about two seconds (defaults: 5 s checks, 20 s
// before a node counts as unhealthy) and promote the standby about four seconds later. The demote timeout
// must exceed the keepers' network_partition_timeout (keeperSettings), after which a primary that lost
// the monitor and its standby demotes itself: that order is what keeps a partitioned primary from taking
// writes while the monitor promotes the standby.
var monitorSettings = []string{
	"pgautofailover.health_check_period = 1000",
	"pgautofailover.health_check_timeout = 1000",
	"pgautofailover.health_check_max_retries = 1",
	"pgautofailover.health_check_retry_delay = 500",
	"pgautofailover.node_considered_unhealthy_timeout = 3000",
	"pgautofailover.primary_demote_timeout = 4000",
	"pgautofailover.startup_grace_period = 2000",
}

// keeperSettings are pg_autoctl configuration values of each node, in seconds (default 20).
var keeperSettings = [][2]string{{"timeout.network_partition_timeout", "2"}}

// findAutoFailover returns a PostgreSQL binary directory whose version has the pgautofailover extension
// installed (the Debian packages put it in /usr/lib/postgresql/<version>/lib), and pg_autoctl.
func findAutoFailover() (binDir, autoctl string, err error) {
	if binDir, err = findAutoFailoverBinDir(); err != nil {
		return "", "", err
	}
	if autoctl, err = exec.LookPath("pg_autoctl"); err != nil {
		return "", "", ErrNoAutoFailover
	}
	return binDir, autoctl, nil
}

func findAutoFailoverBinDir() (string, error) {
	found := false
	for _, dir := range binDirCandidates() {
		if !isBinDir(dir) {
			continue
		}
		found = true
		if isFile(filepath.Join(dir, "..", "lib", "pgautofailover.so")) {
			return dir, nil
		}
	}
	if !found {
		return "", ErrNoPostgres
	}
	return "", ErrNoAutoFailover
}

func isFile(path string) bool {
	info, err := os.Stat(path)
	return err == nil && info.Mode().IsRegular()
}

func (h *HA) socketDir() string          { return filepath.Join(h.dir, "sock") }
func (h *HA) dataDir(name string) string { return filepath.Join(h.dir, name) }

// start brings the cluster up in order: the monitor; node1, which registers first and so becomes the
// primary; node2, which pg_autoctl clones from it.
func (h *HA) start(ctx context.Context) error {
	if err := os.Mkdir(h.socketDir(), 0o700); err != nil {
		return fmt.Errorf("pgtest: %w", err)
	}
	if err := chownTo(h.socketDir(), h.cred); err != nil {
		return err
	}
	if err := h.pickPorts(); err != nil {
		return err
	}
	if err := h.startWatchdog(); err != nil {
		return err
	}
	if err := h.startMonitor(ctx); err != nil {
		return err
	}
	for i := range h.nodes {
		if err := h.createNode(ctx, h.nodes[i], i == 0); err != nil {
			return err
		}
	}
	_, err := h.waitStable(ctx, h.nodes[0].Name)
	return err
}

// pickPorts chooses three distinct free ports: the monitor's, node1's and node2's.
func (h *HA) pickPorts() error {
	var ports []int
	for len(ports) < 3 {
		port, err := freePort()
		if err != nil {
			return err
		}
		if !slices.Contains(ports, port) {
			ports = append(ports, port)
		}
	}
	h.monitorPort = ports[0]
	h.nodes = [2]HANode{newHANode("node1", ports[1]), newHANode("node2", ports[2])}
	return nil
}

// startMonitor creates the monitor and runs it (create --run is one process), then waits until its
// pg_auto_failover database answers.
func (h *HA) startMonitor(ctx context.Context) error {
	pgdata := h.dataDir("monitor")
	if err := h.initdb(ctx, pgdata, slices.Concat(h.serverSettings(), monitorSettings)); err != nil {
		return err
	}
	_, err := h.spawn("monitor", "create", "monitor", "--pgdata", pgdata, "--pgport", strconv.Itoa(h.monitorPort),
		"--hostname", "127.0.0.1", "--listen", "127.0.0.1", "--auth", "trust", "--no-ssl",
		"--pgctl", filepath.Join(h.binDir, "pg_ctl"), "--run")
	if err != nil {
		return err
	}
	if h.monitor, err = pgxpool.New(ctx, h.MonitorConnString()); err != nil {
		return fmt.Errorf("pgtest: monitor: %w", err)
	}
	return h.poll(ctx, "wait for the monitor", func(ctx context.Context) error {
		_, err := h.monitor.Exec(ctx, "SELECT FROM pgautofailover.node")
		return err
	})
}

// createNode registers node with the monitor and runs its keeper. The primary's data directory is made
// here, with pgtest's settings; the standby's is left for pg_autoctl to clone, which needs the primary's
// keeper running. The keeper settings can only be set between create and run.
func (h *HA) createNode(ctx context.Context, node HANode, primary bool) error {
	pgdata := h.dataDir(node.Name)
	if primary {
		if err := h.initdb(ctx, pgdata, h.serverSettings()); err != nil {
			return err
		}
	}
	err := h.runToEnd(ctx, node.Name+"-create", "create", "postgres", "--pgdata", pgdata, "--pgport", strconv.Itoa(node.port),
		"--hostname", "127.0.0.1", "--listen", "127.0.0.1", "--name", node.Name,
		"--username", serverUser, "--dbname", "postgres", "--auth", "trust", "--no-ssl",
		"--pgctl", filepath.Join(h.binDir, "pg_ctl"), "--monitor", h.MonitorConnString(),
		"--replication-quorum", strconv.FormatBool(h.synchronous))
	if err != nil {
		return err
	}
	for _, kv := range keeperSettings {
		if err := h.runAutoctl(ctx, "config", "set", "--pgdata", pgdata, kv[0], kv[1]); err != nil {
			return err
		}
	}
	return h.runKeeper(node)
}

// runKeeper starts node's pg_autoctl run, which starts its Postgres, and after a crash rejoins it as a
// standby, rewinding it if needed.
func (h *HA) runKeeper(node HANode) error {
	_, err := h.spawn(node.Name, "run", "--pgdata", h.dataDir(node.Name))
	return err
}

// initdb makes a data directory for pg_autoctl to adopt, so pgtest's settings apply from the first start.
func (h *HA) initdb(ctx context.Context, pgdata string, settings []string) error {
	initdb, err := binary(h.binDir, "initdb")
	if err != nil {
		return err
	}
	err = runCommand(serverCommand(ctx, h.cred, h.dir, initdb, "-D", pgdata,
		"-A", "trust", "-U", serverUser, "--no-sync", "-E", "UTF8", "--locale=C"))
	if err != nil {
		return err
	}
	return appendSettings(pgdata, settings)
}
