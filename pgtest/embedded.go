package pgtest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"
)

const (
	startTimeout = 60 * time.Second
	stopTimeout  = 30 * time.Second
	// startAttempts bounds retries when another process grabs the chosen port between freePort and bind.
	startAttempts = 3
)

// serverSettings trade durability for speed (the cluster is thrown away) and leave room for many pooled
// test connections, for streaming replicas and for a few prepared transactions.
var serverSettings = []string{
	"listen_addresses = '127.0.0.1'",
	"fsync = off",
	"synchronous_commit = off",
	"full_page_writes = off",
	"max_connections = 400",
	"wal_level = replica",
	"max_wal_senders = 10",
	"max_replication_slots = 10",
	"hot_standby = on",
	"shared_buffers = 128MB",
	"max_prepared_transactions = 20", // so that tests can see a PREPARE TRANSACTION in user SQL do what it does
}

// startEmbedded initialises a cluster in a new temporary directory and starts it on a free loopback port.
func startEmbedded(ctx context.Context) (*Cluster, error) {
	binDir, err := findBinDir()
	if err != nil {
		return nil, err
	}
	cred, dir, err := newServerHome()
	if err != nil {
		return nil, err
	}
	c := &Cluster{dir: dir, binDir: binDir, cred: cred}
	if err := c.initAndStart(ctx); err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	return c, nil
}

// newServerHome picks the unprivileged user a new server runs as and makes its directory: the first steps of every
// server or cluster pgtest starts.
func newServerHome() (*syscall.Credential, string, error) {
	cred, err := serverCredential()
	if err != nil {
		return nil, "", err
	}
	dir, err := newServerDir(cred)
	return cred, dir, err
}

// newServerDir makes the temporary directory holding data, log and unix socket, owned by the server user.
func newServerDir(cred *syscall.Credential) (string, error) {
	dir, err := os.MkdirTemp("", "pgtest-")
	if err != nil {
		return "", fmt.Errorf("pgtest: create temp dir: %w", err)
	}
	if err := chownTo(dir, cred); err != nil {
		_ = os.RemoveAll(dir)
		return "", err
	}
	return dir, nil
}

func (c *Cluster) initAndStart(ctx context.Context) error {
	initdb, err := binary(c.binDir, "initdb")
	if err != nil {
		return err
	}
	err = runCommand(serverCommand(ctx, c.cred, c.dir, initdb, "-D", c.dataDir(),
		"-A", "trust", "-U", serverUser, "--no-sync", "-E", "UTF8", "--locale=C"))
	if err != nil {
		return err
	}
	settings := slices.Concat(serverSettings, []string{"unix_socket_directories = " + quoteSetting(c.dir)})
	if err := appendSettings(c.dataDir(), settings); err != nil {
		return err
	}
	return c.startOnFreePort(ctx)
}

// startOnFreePort starts the server, retrying with a new port if the chosen one was taken meanwhile.
// The watchdog is started first so a server is never left without one.
func (c *Cluster) startOnFreePort(ctx context.Context) error {
	w, err := startWatchdog(c.dir, c.cred, stopClusterScript, filepath.Join(c.binDir, "pg_ctl"), c.dataDir(), c.dir)
	if err != nil {
		return err
	}
	c.watchdog = w
	for attempt := 1; ; attempt++ {
		err := c.startOnce(ctx)
		if err == nil || attempt == startAttempts || !strings.Contains(err.Error(), "already in use") {
			if err != nil {
				w.fire() // a failed pg_ctl start may still leave a server behind
			}
			return err
		}
	}
}

func (c *Cluster) startOnce(ctx context.Context) error {
	port, err := freePort()
	if err != nil {
		return err
	}
	if err := appendSettings(c.dataDir(), []string{fmt.Sprintf("port = %d", port)}); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	if err := runCommand(c.pgCtl(ctx, "start", "-l", c.logFile())); err != nil {
		return fmt.Errorf("%w\nlast lines of %s:\n%s", err, c.logFile(), logTail(c.logFile(), 20))
	}
	c.port = port
	return nil
}

func (c *Cluster) dataDir() string { return filepath.Join(c.dir, "data") }
func (c *Cluster) logFile() string { return filepath.Join(c.dir, "postgres.log") }

// pgCtl builds a pg_ctl command on the cluster's data directory; -w makes start and stop wait until done.
func (c *Cluster) pgCtl(ctx context.Context, action string, args ...string) *exec.Cmd {
	all := append([]string{action, "-w", "-t", fmt.Sprint(int(startTimeout.Seconds())), "-D", c.dataDir()}, args...)
	return serverCommand(ctx, c.cred, c.dir, filepath.Join(c.binDir, "pg_ctl"), all...)
}

// appendSettings appends to postgresql.conf, where a later line overrides an earlier one. Appending keeps
// the file's owner, so this works when running as root for a server run by the postgres user.
func appendSettings(dataDir string, settings []string) error {
	path := filepath.Join(dataDir, "postgresql.conf")
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return fmt.Errorf("pgtest: open %s: %w", path, err)
	}
	_, err = f.WriteString("\n# pgtest\n" + strings.Join(settings, "\n") + "\n")
	return errors.Join(err, f.Close())
}

// quoteSetting quotes a postgresql.conf string value.
func quoteSetting(s string) string {
	return "'" + strings.ReplaceAll(s, "'", "''") + "'"
}

// logTail returns up to n last lines of the server log, which is where a failed start explains itself.
func logTail(path string, n int) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(cannot read log: %v)", err)
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
